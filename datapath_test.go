package tcpproxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/sys/unix"
)

// Tests of the data path: which copy path a connection takes, that bytes
// arrive intact on each, urgent data, and what an idle connection holds.

// roundTrip sends n random bytes through addr to an echo backend (after
// its greeting) and checks that the same bytes come back.
func roundTrip(t *testing.T, c net.Conn, n int) {
	t.Helper()
	payload := make([]byte, n)
	_, _ = rand.Read(payload)
	go func() {
		_, _ = c.Write(payload)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("echoed %d bytes, want the same %d bytes back", len(got), n)
	}
}

// skipGreeting reads the backend's greeting line byte by byte, so that no
// echoed byte is consumed.
func skipGreeting(t *testing.T, c net.Conn) {
	t.Helper()
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			t.Fatal(err)
		}
		if b[0] == '\n' {
			return
		}
	}
}

func TestPlainTCPConnectionIsSplicedAndIntact(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		b := newBackend(t, "b")
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "splice", "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(b)}))
		before := countPaths()
		c := dial(t, hostPort(port))
		defer c.Close()
		skipGreeting(t, c)
		const size = 8 << 20
		roundTrip(t, c, size)
		d := countPaths().since(before)
		// Short bursts go through a buffer; the bulk of a large transfer
		// (both directions: 2 × size) must be spliced.
		if d.spliced() < size {
			t.Errorf("%d of %d bytes spliced, want most", d.spliced(), 2*size)
		}
		wantLoop, wantSplice := uint64(1), uint64(0)
		if !onLoops() {
			wantLoop, wantSplice = 0, 1
		}
		if d.loop != wantLoop || d.splice != wantSplice || d.generic != 0 {
			t.Errorf("paths taken: %+v, want loop %d, relay splice %d", d, wantLoop, wantSplice)
		}
	})
}

func TestWrappedConnectionTakesGenericPathIntact(t *testing.T) {
	// A user's own layer4 route: the proxy_protocol handler wraps the
	// connection before the tcpproxy handler, so there is no raw socket to
	// splice from.
	b := newBackend(t, "b")
	port := freePort(t)
	cfg := fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},
		"logging":{"logs":{"default":{"level":"ERROR"}}},
		"apps":{"layer4":{"servers":{"pp":{"listen":["127.0.0.1:%d"],"routes":[{"handle":[
			{"handler":"proxy_protocol"},
			{"handler":"tcpproxy","app":"wrapped","targets":[%q]}]}]}}}}}`, port, b.addr)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	before := countPaths()
	c := dial(t, hostPort(port))
	defer c.Close()
	if _, err := fmt.Fprintf(c, "PROXY TCP4 192.0.2.1 127.0.0.1 4000 %d\r\n", port); err != nil {
		t.Fatal(err)
	}
	skipGreeting(t, c)
	roundTrip(t, c, 4<<20)
	if d := countPaths().since(before); d.generic != 1 || d.splice != 0 || d.loop != 0 {
		t.Errorf("paths taken: %+v, want the generic copy once", d)
	}
}

func TestUrgentDataIsForwardedInOrder(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		// The backend reads everything until EOF and sends it back.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		received := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			data, _ := io.ReadAll(c)
			received <- data
		}()
		port := freePort(t)
		// No health probe: the backend takes one connection only.
		loadConfig(t, proxyConfig(app{"name": "oob", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": []string{ln.Addr().String()}, "health_checks": map[string]any{"disabled": true}}))
		c := dial(t, hostPort(port))
		defer c.Close()
		send := func(data string, flags int) {
			rc, err := c.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var serr error
			if err := rc.Write(func(fd uintptr) bool {
				serr = unix.Sendto(int(fd), []byte(data), flags, nil)
				return true
			}); err != nil || serr != nil {
				t.Fatalf("send %q: %v %v", data, err, serr)
			}
		}
		send("before-", 0)
		send("!", unix.MSG_OOB)
		send("-after", 0)
		_ = c.(*net.TCPConn).CloseWrite()
		select {
		case got := <-received:
			if want := "before-!-after"; string(got) != want {
				t.Fatalf("backend received %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("backend received nothing: the urgent byte stalled the stream")
		}
	})
}

func TestIdleConnectionHoldsOnlyItsSockets(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		b := newBackend(t, "b")
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "idle", "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(b)}))
		// Warm up, so that lazily created descriptors (epoll, pipe pool) exist.
		echo(t, hostPort(port), "warm")
		const k = 50
		before := openFDs(t)
		var conns []net.Conn
		for i := 0; i < k; i++ {
			c := dial(t, hostPort(port))
			defer c.Close()
			skipGreeting(t, c)
			conns = append(conns, c)
		}
		// Every connection has moved bytes both ways and is now idle.
		waitFor(t, 5*time.Second, "backends to see all connections", func() bool { return b.active.Load() >= k })
		// In this one process each proxied connection is four sockets: the
		// client's, the proxy's two and the backend's. A pipe held per
		// direction would add four more. Pipes returned to Go's pool are closed
		// once the pool is collected, hence the GC.
		limit := 4*k + 4
		deadline := time.Now().Add(10 * time.Second)
		for d := openFDs(t) - before; d > limit; d = openFDs(t) - before {
			if time.Now().After(deadline) {
				t.Fatalf("%d idle connections hold %d file descriptors, want at most %d (4 sockets each)", k, d, limit)
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range conns {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 1)
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, []byte("x")) {
				t.Fatalf("idle connection no longer echoes: %q %v", got, err)
			}
		}
	})
}

func openFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(entries)
}

func TestStandaloneHandlerRunsItsOwnHealthChecks(t *testing.T) {
	// In a layer4 route of the user's own, no tcpproxy app runs the active
	// checks: the handler does, so a target marked down by a failed dial
	// comes back once it answers again.
	a, b := newBackend(t, "a"), newBackend(t, "b")
	b.stop()
	port := freePort(t)
	cfg := fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},
		"logging":{"logs":{"default":{"level":"ERROR"}}},
		"apps":{"layer4":{"servers":{"own":{"listen":["127.0.0.1:%d"],"routes":[{"handle":[
			{"handler":"tcpproxy","app":"standalone","targets":[%q,%q],
			 "health_checks":{"interval":"100ms","timeout":"500ms"}}]}]}}}}}`, port, a.addr, b.addr)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	for i := 0; i < 4; i++ {
		if name := greeting(t, hostPort(port)); name != "a" {
			t.Fatalf("connection %d went to %q while b is dead", i, name)
		}
	}
	tb := lookupTarget(t, "standalone", b.addr)
	waitFor(t, 10*time.Second, "b to be marked down", func() bool { return !tb.healthy.Load() })
	b.restart()
	waitFor(t, 10*time.Second, "the handler's own checks to mark b up", func() bool { return tb.healthy.Load() })
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		seen[greeting(t, hostPort(port))] = true
	}
	if !seen["b"] {
		t.Errorf("b is up again but got no connection: %v", seen)
	}
}
