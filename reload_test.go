package tcpproxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
)

// In-process tests of SPEC.md behaviour 5; the real binary under load is
// driven by the tests in e2e/.

func TestReloadKeepsTargetHealthStateWithoutReprobing(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	b.stop()
	port := freePort(t)
	cfg := func(dialTimeout string, targets ...string) map[string]any {
		return proxyConfig(app{"name": "keep", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": targets, "dial_timeout": dialTimeout,
			"health_checks": map[string]any{"interval": "1h", "down_interval": "1h", "timeout": "1s"}})
	}
	loadConfig(t, cfg("2s", a.addr, b.addr))
	tb := lookupTarget(t, "keep", b.addr)
	waitFor(t, 10*time.Second, "the first round to mark b down", func() bool { return !tb.healthy.Load() })
	before := tb.status()

	// b comes back, but the next probe is an hour away: a reload that keeps
	// b must not probe it again at once (that would flap it up).
	b.restart()
	c := newBackend(t, "c")
	if err := tryLoad(cfg("3s", a.addr, b.addr, c.addr)); err != nil {
		t.Fatal(err)
	}
	tc := lookupTarget(t, "keep", c.addr)
	waitFor(t, 10*time.Second, "the new target c to be probed", func() bool { return !tc.status().LastCheck.IsZero() })
	if lookupTarget(t, "keep", b.addr) != tb {
		t.Fatal("the reload replaced b's shared state")
	}
	after := tb.status()
	if after.Healthy || after.LastCheck != before.LastCheck || after.ConsecutiveFailures != before.ConsecutiveFailures {
		t.Fatalf("b's health changed across the reload: before %+v, after %+v", before, after)
	}
	for i := 0; i < 6; i++ {
		if name := greeting(t, hostPort(port)); name == "b" {
			t.Fatal("a connection went to b, which is still marked down")
		}
	}
}

func TestReloadRemovedTargetGetsNoNewConnections(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	cfg := func(targets ...string) map[string]any {
		return proxyConfig(app{"name": "moved", "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": targets})
	}
	loadConfig(t, cfg(a.addr, b.addr))
	held := dial(t, hostPort(port)) // an established connection, to a or b
	defer held.Close()
	if err := tryLoad(cfg(b.addr)); err != nil {
		t.Fatal(err)
	}
	// (a's accept count is no measure here: the held connection's dial and
	// the old config's last probe may reach a just after the reload.)
	for i := 0; i < 10; i++ {
		if name := greeting(t, hostPort(port)); name != "b" {
			t.Fatalf("connection %d after the reload went to %s", i, name)
		}
	}
	// The connection established before the reload still flows.
	echoOn(t, held, "still here")
}

func TestConnectionReachingHandlerAfterCleanupIsStillProxied(t *testing.T) {
	// After a reload, a connection the old config accepted just before its
	// listener closed can reach the old handler after its Cleanup (seen in
	// the reload soak as a nil dereference and a reset connection).
	b := newBackend(t, "b")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{App: "late", Upstreams: Upstreams{Targets: []TargetConfig{{Address: b.addr}}}}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	client, server := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		cx := layer4.WrapConnection(server, make([]byte, 0, 1024), zap.NewNop())
		done <- h.Handle(cx, nil)
		server.Close()
	}()
	if name := echoOn(t, client, "late but fine"); name != "b" {
		t.Fatalf("answered by %q", name)
	}
	client.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client = dial(t, ln.Addr().String())
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return client, server
}
