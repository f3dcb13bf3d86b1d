package tcpproxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// Tests of SPEC.md behaviours 1–4, one per behaviour, on real sockets.

func TestEveryPortOfEveryAppForwardsBothWays(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		a1, a2, b1 := newBackend(t, "a1"), newBackend(t, "a2"), newBackend(t, "b1")
		ports := freePorts(t, 5)
		loadConfig(t, proxyConfig(
			app{"name": "alpha", "ports": ports[:3], "bind": []string{"127.0.0.1"}, "targets": addrs(a1, a2)},
			app{"name": "beta", "ports": ports[3:], "bind": []string{"127.0.0.1"}, "targets": addrs(b1)},
		))
		for i, p := range ports {
			name := echo(t, hostPort(p), strings.Repeat("ping", 1000))
			want := map[bool][]string{true: {"a1", "a2"}, false: {"b1"}}[i < 3]
			if !contains(want, name) {
				t.Errorf("port %d answered by %q, want one of %v", p, name, want)
			}
		}
	})
}

func TestRoundRobinSharesConnectionsEvenlyAcrossAllPorts(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		bs := []*backend{newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")}
		ports := freePorts(t, 4)
		loadConfig(t, proxyConfig(app{"name": "rr", "ports": ports, "bind": []string{"127.0.0.1"}, "targets": addrs(bs...)}))
		const n = 100
		counts := map[string]int{}
		for i := 0; i < n; i++ {
			counts[greeting(t, hostPort(ports[i%len(ports)]))]++
		}
		lo, hi := n/len(bs), (n+len(bs)-1)/len(bs)
		for _, b := range bs {
			if c := counts[b.name]; c < lo || c > hi {
				t.Errorf("target %s got %d of %d connections, want %d or %d (all: %v)", b.name, c, n, lo, hi, counts)
			}
		}

		// With one target down the rotation is even over the other two.
		bs[1].stop()
		lookupTarget(t, "rr", bs[1].addr).dialFailed(io.EOF, 0)
		counts = map[string]int{}
		for i := 0; i < n; i++ {
			counts[greeting(t, hostPort(ports[i%len(ports)]))]++
		}
		if counts["a"] != n/2 || counts["c"] != n/2 || counts["b"] != 0 {
			t.Errorf("with b down, got %v, want a and c %d each", counts, n/2)
		}
	})
}

func TestLeastConnFollowsActiveConnectionCounts(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		a, b := newBackend(t, "a"), newBackend(t, "b")
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "lc", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": addrs(a, b), "lb_policy": "least_conn"}))
		addr := hostPort(port)

		// Hold three connections; least_conn must spread them 2/1 or 1/2, and
		// the next connections must go to the target with fewer.
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		open := func() string {
			c := dial(t, addr)
			held = append(held, c)
			name, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(name)
		}
		first, second := open(), open()
		if first == second {
			t.Fatalf("two connections both went to %s; want one each", first)
		}
		// Close the connection to `first`: now it has 0 active, second has 1.
		held[0].Close()
		held = held[1:]
		waitFor(t, 5*time.Second, "the proxy to see the closed connection", func() bool {
			return lookupTarget(t, "lc", map[string]string{"a": a.addr, "b": b.addr}[first]).node.Active.Load() == 0
		})
		for i := 0; i < 3; i++ {
			if got := open(); got != first && i == 0 {
				t.Fatalf("least_conn chose %s with 1 active over %s with 0", got, first)
			}
		}
		// Now 2 on each side at most differing by one.
		if d := a.active.Load() - b.active.Load(); d > 1 || d < -1 {
			t.Errorf("active a=%d b=%d, want them within one", a.active.Load(), b.active.Load())
		}
	})
}

func TestHealthCheckMarksDeadTargetDownWithinFallAndUpWithinRise(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	interval := 100 * time.Millisecond
	loadConfig(t, proxyConfig(app{"name": "hc", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(a, b), "health_checks": map[string]any{"interval": "100ms", "timeout": "500ms", "rise": 2, "fall": 3}}))
	tb := lookupTarget(t, "hc", b.addr)

	b.stop()
	start := time.Now()
	waitFor(t, 10*time.Second, "b to be marked down", func() bool { return !tb.healthy.Load() })
	// fall=3 rounds: the first failing round comes at most one interval
	// after the stop, so down within about 3 intervals; allow slack for a
	// busy machine but fail if it took far more rounds.
	if d := time.Since(start); d > 20*interval {
		t.Errorf("marked down after %s, want about 3 intervals of %s", d, interval)
	}
	if st := tb.status(); st.ConsecutiveFailures < 3 || st.LastError == "" {
		t.Errorf("down target status %+v: want ≥3 consecutive failures and a last error", st)
	}
	for i := 0; i < 6; i++ {
		if name := greeting(t, hostPort(port)); name != "a" {
			t.Fatalf("connection went to %s while b is down", name)
		}
	}

	b.restart()
	start = time.Now()
	waitFor(t, 10*time.Second, "b to be marked up", func() bool { return tb.healthy.Load() })
	if d := time.Since(start); d > 20*interval {
		t.Errorf("marked up after %s, want about 2 intervals of %s", d, interval)
	}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		seen[greeting(t, hostPort(port))] = true
	}
	if !seen["b"] {
		t.Errorf("b is healthy again but got no connection: %v", seen)
	}
}

func TestPassiveFailoverFailsNoClientConnection(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		alive := newBackend(t, "alive")
		dead := newBackend(t, "dead")
		dead.stop()
		port := freePort(t)
		// Active checks off: only the failed dial can notice the dead target.
		loadConfig(t, proxyConfig(app{"name": "failover", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": []string{dead.addr, alive.addr}, "health_checks": map[string]any{"disabled": true}}))
		for i := 0; i < 20; i++ {
			if name := echo(t, hostPort(port), "x"); name != "alive" {
				t.Fatalf("connection %d answered by %q", i, name)
			}
		}
		if lookupTarget(t, "failover", dead.addr).healthy.Load() {
			t.Error("dead target still marked healthy after a failed dial")
		}
	})
}

func TestNoHealthyTargetClosesClientWithinOneSecond(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		dead := newBackend(t, "dead")
		dead.stop()
		port := freePort(t)
		// Active checks off, so the first connection finds the dead target
		// still healthy and fails to dial it; the second finds none healthy.
		loadConfig(t, proxyConfig(app{"name": "none", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": []string{dead.addr}, "health_checks": map[string]any{"disabled": true}}))
		before := testutilCounter(t, rejectedTotal.WithLabelValues("none", reasonDialFailed.String()))
		for i, reason := range []history.Reason{reasonDialFailed, reasonNoHealthyTarget} {
			c := dial(t, hostPort(port))
			start := time.Now()
			closed, data := closedWithin(c, time.Second)
			c.Close()
			if !closed || data != "" {
				t.Fatalf("attempt %d (%s): closed=%v after %s, read %q; want closed within 1s with nothing read",
					i, reason, closed, time.Since(start), data)
			}
		}
		if got := testutilCounter(t, rejectedTotal.WithLabelValues("none", reasonDialFailed.String())) - before; got != 1 {
			t.Errorf("dial_failed rejections: got %v, want 1", got)
		}
		if got := testutilCounter(t, rejectedTotal.WithLabelValues("none", reasonNoHealthyTarget.String())); got < 1 {
			t.Errorf("no_healthy_target rejections: got %v, want ≥1", got)
		}
	})
}

func TestHalfCloseIsPassedOnAndReplyStillFlows(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		// The backend reads until EOF, then answers with the byte count and a
		// digest-like marker, so the reply can only come after the half-close.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func(c net.Conn) {
					defer c.Close()
					n, _ := io.Copy(io.Discard, c)
					_, _ = io.WriteString(c, "got "+itoa(n)+" bytes")
				}(c)
			}
		}()
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "half", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": []string{ln.Addr().String()}}))
		c := dial(t, hostPort(port))
		defer c.Close()
		payload := make([]byte, 1<<20)
		_, _ = rand.Read(payload)
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		reply, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := "got 1048576 bytes"; string(reply) != want {
			t.Fatalf("reply %q, want %q", reply, want)
		}
	})
}

func TestIPv6TargetAndBind(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		probe, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback on this machine: %v", err)
		}
		probe.Close()
		b := newBackendOn(t, "six", "tcp", "[::1]:0")
		ports := freePorts(t, 2)
		// A bind written in brackets is the same address.
		loadConfig(t, proxyConfig(app{"name": "v6", "ports": ports[:1], "bind": []string{"::1"}, "targets": []string{b.addr}},
			app{"name": "v6-brackets", "ports": ports[1:], "bind": []string{"[::1]"}, "targets": []string{b.addr}}))
		for _, port := range ports {
			addr := net.JoinHostPort("::1", itoa(int64(port)))
			if name := echo(t, addr, "over six"); name != "six" {
				t.Fatalf("answered by %q", name)
			}
		}
	})
}

func TestConcurrentConnectionsAllSucceed(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		a, b := newBackend(t, "a"), newBackend(t, "b")
		ports := freePorts(t, 2)
		loadConfig(t, proxyConfig(app{"name": "many", "ports": ports, "bind": []string{"127.0.0.1"}, "targets": addrs(a, b)}))
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					c, err := net.DialTimeout("tcp", hostPort(ports[(w+i)%2]), 5*time.Second)
					if err != nil {
						errs <- err
						return
					}
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					r := bufio.NewReader(c)
					_, err = r.ReadString('\n')
					msg := bytes.Repeat([]byte{byte(w)}, 4096)
					if err == nil {
						_, err = c.Write(msg)
					}
					got := make([]byte, len(msg))
					if err == nil {
						_, err = io.ReadFull(r, got)
					}
					c.Close()
					if err == nil && !bytes.Equal(got, msg) {
						err = io.ErrUnexpectedEOF
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
