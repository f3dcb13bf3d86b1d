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

	// dest is the destination of an accepted PROXY header, passed on in
	// the one sent to the target; zero otherwise (ours is passed on).
	dest netip.AddrPort
	// early are client bytes read along with its PROXY header: they go
	// to the target before the relay starts.
	early []byte
	// headerRead: the PROXY header was read (the connection is no longer
	// a bare socket a loop can take).
	headerRead bool
	// localPort is the port the client connected to, when there is no
	// cx to ask (a connection from the accept loop, acceptDirect).
	localPort int
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
		h.writeEntry(ce, s.fields(s.reason.String()))
	}
}

// logRejected writes the access log entry of a client that was never
// proxied: WARN when no target could be reached, INFO otherwise.
func (h *Handler) logRejected(s *session, reason history.Reason) {
	if h.access == nil {
		return
	}
	if ce := h.access.Check(rejectionLevel(reason), "connection closed"); ce != nil {
		h.writeEntry(ce, s.fields(reason.String()))
	}
}

// rejectionLevel is the level of a rejected client's entry.
func rejectionLevel(reason history.Reason) zapcore.Level {
	if reason == reasonNoHealthyTarget || reason == reasonDialFailed {
		return zapcore.WarnLevel
	}
	return zapcore.InfoLevel
}

// entry is what the access log says of one client connection, gathered
// from either data path's record of it.
type entry struct {
	client             netip.AddrPort
	localPort          int
	target             *target // nil if none was reached
	attempts           int
	connect, duration  time.Duration
	bytesUp, bytesDown int64
	reason             string
}

// fields gathers the entry of a connection of the goroutine path.
func (s *session) fields(reason string) *entry {
	e := &entry{client: s.client, target: s.target, attempts: s.attempts, duration: time.Since(s.accepted),
		bytesUp: s.bytesUp, bytesDown: s.bytesDown, reason: reason}
	if s.cx == nil {
		e.localPort = s.localPort
	} else if a, ok := s.cx.LocalAddr().(*net.TCPAddr); ok {
		e.localPort = a.Port
	}
	if s.target != nil {
		e.connect = s.connected.Sub(s.dialStart)
	}
	return e
}

// writeEntry writes the fields of SPEC.md's access log.
func (h *Handler) writeEntry(ce *zapcore.CheckedEntry, e *entry) {
	var remoteIP string
	if e.client.IsValid() {
		remoteIP = e.client.Addr().String()
	}
	var target string
	if e.target != nil {
		target = e.target.addr
	}
	ce.Write(
		zap.String("app", h.App),
		zap.String("remote_ip", remoteIP),
		zap.Int("remote_port", int(e.client.Port())),
		zap.Int("local_port", e.localPort),
		zap.String("target", target),
		zap.Int("attempts", e.attempts),
		zap.Duration("connect_duration", e.connect),
		zap.Duration("duration", e.duration),
		zap.Int64("bytes_received", e.bytesUp),
		zap.Int64("bytes_sent", e.bytesDown),
		zap.String("reason", e.reason),
	)
}
