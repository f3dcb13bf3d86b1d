package tcpproxy

import (
	"net"
	"sync"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
	"github.com/mholt/caddy-l4/layer4"
	"github.com/pires/go-proxyproto"
)

// proxy moves bytes between the client and the upstream connection until
// both directions are done, then closes the upstream (the layer4 server
// closes the client). A direction that reaches EOF passes the half-close on
// and the other keeps flowing; a direction that fails aborts both.
func proxy(cx *layer4.Connection, up net.Conn, t *target, proxyProtocol string) error {
	defer up.Close()
	if err := writePreamble(cx, up, proxyProtocol); err != nil {
		return err
	}
	p := &pipe{client: rawConn(cx), upstream: up, target: t}
	relay.CountPath(p.client, up)
	relay.InlineOOB(p.client)
	relay.InlineOOB(up)
	live.add(p)
	defer live.remove(p)

	var wg sync.WaitGroup
	wg.Add(1)
	go p.copyUpstream(&wg)
	p.finish(relay.CopyHalf(p.client, up, t.m.bytesDown))
	wg.Wait()
	return nil
}

// pipe is one proxied connection: the two sockets, so that a failed
// direction, or shutdown, can close both.
type pipe struct {
	client, upstream net.Conn
	target           *target
	once             sync.Once
}

// copyUpstream copies client to upstream. It runs on its own goroutine
// while the handler's goroutine copies the other way.
func (p *pipe) copyUpstream(wg *sync.WaitGroup) {
	defer wg.Done()
	p.finish(relay.CopyHalf(p.upstream, p.client, p.target.m.bytesUp))
}

// finish ends a direction: on an error it aborts both directions.
func (p *pipe) finish(err error) {
	if err != nil {
		p.abort()
	}
}

// abort closes both sockets; any copy still running returns.
func (p *pipe) abort() {
	p.once.Do(func() {
		_ = p.client.Close()
		_ = p.upstream.Close()
	})
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
