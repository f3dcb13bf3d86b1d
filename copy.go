package tcpproxy

import (
	"net"

	"github.com/mholt/caddy-l4/layer4"
	"github.com/pires/go-proxyproto"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/evloop"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// proxy moves bytes between the client and the upstream connection until
// the connection ends (both directions done, a failure, a timeout, or a
// Close through the live set) and closes both. A direction that reaches
// EOF passes the half-close on and the other keeps flowing.
func (h *Handler) proxy(cx *layer4.Connection, up net.Conn, t *target, s *session) {
	if err := writePreamble(s, up, h.ppVersion); err != nil {
		_ = up.Close()
		s.reason = relay.TargetError
		return
	}
	if len(s.early) > 0 {
		if _, err := up.Write(s.early); err != nil {
			_ = up.Close()
			s.reason = relay.TargetError
			return
		}
		t.up.Add(float64(len(s.early))) // the metric and the history
	}
	client := h.clientConn(cx)
	relay.CountPath(client, up)
	if !h.managed {
		h.setClientOptions(client)
	}
	relay.InlineOOB(up)
	c := &liveConn{Conn: relay.New(client, up, h.timeouts, s.accepted, &t.up, &t.down), target: t}
	live.add(c)
	defer live.remove(c)
	s.reason = c.Run()
	s.bytesUp, s.bytesDown = c.Bytes()
	s.bytesUp += int64(len(s.early))
	h.logClosed(s) // before leaving the live set: a drain on exit waits for it
}

// setClientOptions sets, on a client socket from a listener that is not
// the app's, what the app's listening sockets pass on to theirs.
func (h *Handler) setClientOptions(client net.Conn) {
	relay.InlineOOB(client)
	if tc, ok := client.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(h.keepAlive)
	}
}

// clientConn returns the connection to copy from: the underlying socket
// when caddy-l4 has no buffered bytes left to replay, so that the copy
// can splice; otherwise the layer4 connection, which replays them first.
// A socket of the app's that no loop took becomes a *net.TCPConn (a
// dozen system calls: the rare case, see datapath.go), on which Go sets
// its own keepalive defaults: the app's are set again.
func (h *Handler) clientConn(cx *layer4.Connection) net.Conn {
	if len(cx.MatchingBytes()) != 0 {
		return cx
	}
	if ec, ok := cx.Conn.(*evloop.Conn); ok {
		tc, err := ec.TCPConn()
		if err != nil {
			return cx.Conn // closed: the relay fails on it at once
		}
		_ = tc.SetKeepAliveConfig(h.keepAlive)
		return tc
	}
	return cx.Conn
}

// writePreamble sends the PROXY protocol header of version (1 or 2; 0:
// none) before any payload, as the loop path does (appendProxyHeader). It
// carries the client's address: after an accepted PROXY header, the
// addresses that header gave.
func writePreamble(s *session, up net.Conn, version byte) error {
	if version == 0 {
		return nil
	}
	src, dst := s.client, s.dest
	if !dst.IsValid() {
		dst = addrPort(s.cx.LocalAddr())
	}
	if !src.IsValid() || !dst.IsValid() {
		// Not TCP addresses (a wrapped connection of a user's own
		// route): go-proxyproto says so in the header.
		_, err := proxyproto.HeaderProxyFromAddrs(version, s.cx.RemoteAddr(), s.cx.LocalAddr()).WriteTo(up)
		return err
	}
	var b [maxPreamble]byte
	_, err := up.Write(appendProxyHeader(b[:0], version, src, dst))
	return err
}
