package tcpproxy

import (
	"net"
	"net/netip"
	"time"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// session is what the access log says of one client connection, filled
// in as the handler goes. It lives on the handler's stack.
type session struct {
	cx                   *layer4.Connection
	client               netip.AddrPort // the client's address
	accepted             time.Time
	dialStart, connected time.Time // first dial attempt, and success
	attempts             int
	target               *target // nil if none was reached
	reason               relay.Reason
	bytesUp, bytesDown   int64 // client → target, target → client
}

// addrPort is a TCP address as a netip.AddrPort, an IPv4-mapped IPv6
// address as its IPv4 address; the zero AddrPort if a is not TCP.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// accessLogger returns the logger of an app's access log: named
// `tcpproxy.access.<app>`, so that Caddy's `logging` can route it with
// include and exclude. nil when the app has no access log.
func accessLogger(enabled bool, tcpproxyLogger *zap.Logger, app string) *zap.Logger {
	if !enabled {
		return nil
	}
	return tcpproxyLogger.Named("access." + app)
}

// logClosed writes the access log entry of a proxied connection.
func (h *Handler) logClosed(s *session) {
	if h.access == nil {
		return
	}
	if ce := h.access.Check(zapcore.InfoLevel, "connection closed"); ce != nil {
		h.writeEntry(ce, s, s.reason.String())
	}
}

// logRejected writes the access log entry of a client that was never
// proxied: WARN when no target could be reached, INFO otherwise.
func (h *Handler) logRejected(s *session, reason history.Reason) {
	if h.access == nil {
		return
	}
	level := zapcore.InfoLevel
	if reason == reasonNoHealthyTarget || reason == reasonDialFailed {
		level = zapcore.WarnLevel
	}
	if ce := h.access.Check(level, "connection closed"); ce != nil {
		h.writeEntry(ce, s, reason.String())
	}
}

// writeEntry writes the fields of SPEC.md's access log.
func (h *Handler) writeEntry(ce *zapcore.CheckedEntry, s *session, reason string) {
	var remoteIP string
	if s.client.IsValid() {
		remoteIP = s.client.Addr().String()
	}
	var localPort int
	if a, ok := s.cx.LocalAddr().(*net.TCPAddr); ok {
		localPort = a.Port
	}
	var target string
	var connect time.Duration
	if s.target != nil {
		target = s.target.addr
		connect = s.connected.Sub(s.dialStart)
	}
	ce.Write(
		zap.String("app", h.App),
		zap.String("remote_ip", remoteIP),
		zap.Int("remote_port", int(s.client.Port())),
		zap.Int("local_port", localPort),
		zap.String("target", target),
		zap.Int("attempts", s.attempts),
		zap.Duration("connect_duration", connect),
		zap.Duration("duration", time.Since(s.accepted)),
		zap.Int64("bytes_received", s.bytesUp),
		zap.Int64("bytes_sent", s.bytesDown),
		zap.String("reason", reason),
	)
}
