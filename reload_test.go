package tcpproxy

import (
	"testing"
	"time"
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
			"health_checks": map[string]any{"interval": "1h", "timeout": "1s"}})
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
	acceptedA := a.accepted.Load()
	for i := 0; i < 10; i++ {
		if name := greeting(t, hostPort(port)); name != "b" {
			t.Fatalf("connection %d after the reload went to %s", i, name)
		}
	}
	if a.accepted.Load() != acceptedA {
		t.Error("the removed target accepted new connections")
	}
	// The connection established before the reload still flows.
	echoOn(t, held, "still here")
}
