package tcpproxy

import (
	"net"

	"github.com/mholt/caddy-l4/layer4"
	"github.com/pires/go-proxyproto"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// proxy moves bytes between the client and the upstream connection until
// the connection ends (both directions done, a failure, a timeout, or a
// Close through the live set) and closes both. A direction that reaches
// EOF passes the half-close on and the other keeps flowing.
func (h *Handler) proxy(cx *layer4.Connection, up net.Conn, t *target, s *session) {
	if err := writePreamble(cx, up, h.cfg.ProxyProtocol); err != nil {
		_ = up.Close()
		s.reason = relay.TargetError
		return
	}
	client := rawConn(cx)
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
	h.logClosed(s) // before leaving the live set: a drain on exit waits for it
}

// setClientOptions sets, on a client socket from a listener that is not
// the app's, what the app's listening sockets pass on to theirs.
func (h *Handler) setClientOptions(client net.Conn) {
	relay.InlineOOB(client)
	if tc, ok := client.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(h.cfg.Keepalive.keepAliveConfig())
	}
}

// rawConn returns the connection to copy from: the underlying socket when
// caddy-l4 has no buffered bytes left to replay, so that the copy can
// splice; otherwise the layer4 connection, which replays them first.
func rawConn(cx *layer4.Connection) net.Conn {
	if len(cx.MatchingBytes()) == 0 {
		return cx.Conn
	}
	return cx
}

// writePreamble sends the PROXY protocol header, if configured, before any
// payload.
func writePreamble(cx *layer4.Connection, up net.Conn, version string) error {
	var v byte
	switch version {
	case "v1":
		v = 1
	case "v2":
		v = 2
	default:
		return nil
	}
	h := proxyproto.HeaderProxyFromAddrs(v, cx.RemoteAddr(), cx.LocalAddr())
	_, err := h.WriteTo(up)
	return err
}
