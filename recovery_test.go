package tcpproxy

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 10's recovery defects, in-process: a target marked down by one
// failed dial comes back within down_interval, with checks disabled and
// with checks every 30s.

// tryGreeting connects through the proxy and returns the greeting of the
// backend that answered, or "" when the proxy closed the connection
// without one (no target reached).
func tryGreeting(t *testing.T, addr string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	name, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("no greeting and no close within 5s through %s", addr)
		}
		return ""
	}
	return strings.TrimSpace(name)
}

// With checks disabled, a target that one failed dial marked down is
// tried again after down_interval: the first connection after it reaches
// the target, which is up again. Before, it stayed down for good.
func TestPassiveRecoveryChecksDisabled(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		a := newBackend(t, "a")
		port := freePort(t)
		const down = 300 * time.Millisecond
		loadConfig(t, proxyConfig(app{"name": "alone", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": []string{a.addr}, "health_checks": map[string]any{"disabled": true, "down_interval": "300ms"}}))
		ta := lookupTarget(t, "alone", a.addr)
		if got := tryGreeting(t, hostPort(port)); got != "a" {
			t.Fatalf("first connection: %q", got)
		}

		a.stop()
		if got := tryGreeting(t, hostPort(port)); got != "" {
			t.Fatalf("connection to a stopped target answered %q", got)
		}
		failedAt := time.Now()
		if ta.healthy.Load() || ta.node.Eligible() {
			t.Fatal("a failed dial did not mark the target down")
		}
		a.restart()
		// Within down_interval the target is not tried: rejected at once.
		if got := tryGreeting(t, hostPort(port)); got != "" && time.Since(failedAt) < down {
			t.Fatalf("target tried %s after the failed dial, before down_interval %s", time.Since(failedAt), down)
		}
		attempts := 0
		waitFor(t, 10*time.Second, "a connection to reach the target again", func() bool {
			attempts++
			return tryGreeting(t, hostPort(port)) == "a"
		})
		back := time.Since(failedAt)
		t.Logf("checks disabled, down_interval %s: back after %s, %d connection attempts", down, back.Round(time.Millisecond), attempts)
		if back < down {
			t.Errorf("back after %s, before down_interval %s", back, down)
		}
		if back > down+3*time.Second {
			t.Errorf("back after %s, want about down_interval %s", back, down)
		}
		if !ta.healthy.Load() {
			t.Error("target reached but still marked down")
		}
	})
}

// With every target hit once by a failed dial, the app recovers once they
// are back instead of refusing all clients forever; while one target is
// up, retries of a dead one fail no client: they fail over at once, and
// are paced by down_interval.
func TestPassiveRetryFailsOverAtOnce(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		alive, dead := newBackend(t, "alive"), newBackend(t, "dead")
		dead.stop()
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "retry", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": []string{dead.addr, alive.addr}, "health_checks": map[string]any{"disabled": true, "down_interval": "200ms"}}))
		td := lookupTarget(t, "retry", dead.addr)
		dialErrors := func() float64 { return testutilCounter(t, td.m.dialErrors) }
		before := dialErrors()
		start := time.Now()
		for i := 0; time.Since(start) < 1500*time.Millisecond; i++ {
			if got := tryGreeting(t, hostPort(port)); got != "alive" {
				t.Fatalf("connection %d answered %q: a retry of the dead target failed a client", i, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
		tries := dialErrors() - before
		// One dial at start, then one per down_interval at most.
		if most := 2 + time.Since(start).Seconds()/0.2; tries < 3 || tries > most {
			t.Errorf("%v dials of the dead target in %s, want 3..%.0f (one per 200ms down_interval)", tries, time.Since(start), most)
		}

		// Both hit once: back as soon as they are.
		alive.stop()
		waitFor(t, 10*time.Second, "both targets down", func() bool {
			return tryGreeting(t, hostPort(port)) == "" && !lookupTarget(t, "retry", alive.addr).healthy.Load()
		})
		alive.restart()
		dead.restart()
		seen := map[string]bool{}
		waitFor(t, 10*time.Second, "both targets to serve again", func() bool {
			seen[tryGreeting(t, hostPort(port))] = true
			return seen["alive"] && seen["dead"]
		})
	})
}

// With checks on every 30s, a target marked down by one failed dial is
// probed again after down_interval, not at the next round.
func TestPassiveFailureChecksOnRecoversWithinDownInterval(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "slow-checks", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(a, b), "health_checks": map[string]any{"interval": "30s", "down_interval": "500ms", "timeout": "1s"}}))
	tb := lookupTarget(t, "slow-checks", b.addr)
	waitFor(t, 10*time.Second, "the first round", func() bool { return !tb.status().LastCheck.IsZero() })

	b.stop()
	waitFor(t, 10*time.Second, "a failed dial to mark b down", func() bool {
		if got := tryGreeting(t, hostPort(port)); got != "a" {
			t.Fatalf("connection answered %q while a is up", got)
		}
		return !tb.healthy.Load()
	})
	failedAt := time.Now()
	b.restart()
	waitFor(t, 10*time.Second, "b to be probed up", func() bool { return tb.healthy.Load() })
	back := time.Since(failedAt)
	t.Logf("checks every 30s, down_interval 500ms: b up again %s after the failed dial", back.Round(time.Millisecond))
	if back > 5*time.Second {
		t.Errorf("b up after %s, want about down_interval (500ms), far from the 30s interval", back)
	}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		seen[tryGreeting(t, hostPort(port))] = true
	}
	if !seen["b"] {
		t.Errorf("b is up but got no connection: %v", seen)
	}
}

// A target down is probed every down_interval, one up every interval,
// and never twice at once, even when a probe takes longer than
// down_interval.
func TestProbeScheduleDownIntervalAndOneAtATime(t *testing.T) {
	up := newProbeServer(t, "OK\r\n", true)
	down := newProbeServer(t, "NO\r\n", false) // answers and hangs up: each probe fails at once
	slow := newProbeServer(t, "", true)        // never answers: each probe waits its timeout
	port := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "sched", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": []string{up.addr, down.addr, slow.addr},
		"health_checks": map[string]any{"interval": "1h", "down_interval": "100ms", "timeout": "400ms",
			"send": "HELLO\r\n", "expect": "OK"}}))
	start := time.Now()
	waitFor(t, 10*time.Second, "the down target to be probed 8 times", func() bool { return down.accepted.Load() >= 8 })
	waitFor(t, 10*time.Second, "the slow target to be probed 3 times", func() bool { return slow.accepted.Load() >= 3 })
	elapsed := time.Since(start)
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("the up target was probed %d times in %s with a 1h interval, want 1", n, elapsed)
	}
	if most := int64(elapsed/(100*time.Millisecond)) + 2; down.accepted.Load() > most {
		t.Errorf("the down target was probed %d times in %s, more than one per 100ms down_interval", down.accepted.Load(), elapsed)
	}
	// Each probe of the slow target lasts its 400ms timeout: probes one
	// at a time start at most every 400ms, where overlapping ones would
	// start every 100ms, four at once. (The server sees a probe's end a
	// moment after the next one connects: two at once at a hand-over.)
	if n, most := slow.accepted.Load(), int64(elapsed/(400*time.Millisecond))+2; n > most || slow.maxConcurrent.Load() > 2 {
		t.Errorf("the slow target had %d probes in %s (want at most %d) and up to %d at once: probes overlapped",
			n, elapsed, most, slow.maxConcurrent.Load())
	}
	if st := lookupTarget(t, "sched", down.addr).status(); st.Healthy || st.LastError != `connection closed before "OK" arrived, got "NO\r\n"` {
		t.Errorf("down target status %+v", st)
	}
}

// probeServer is a test target for probes: it answers the first line of
// each connection with answer ("" never answers), then keeps the
// connection open until the client closes it (hold) or closes it. It
// counts the connections it accepted and the most it had open at once.
type probeServer struct {
	addr          string
	accepted      atomic.Int64
	open          atomic.Int64
	maxConcurrent atomic.Int64
}

func newProbeServer(t *testing.T, answer string, hold bool) *probeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &probeServer{addr: ln.Addr().String()}
	backendPorts.Store(ln.Addr().(*net.TCPAddr).Port, true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			n := s.open.Add(1)
			for m := s.maxConcurrent.Load(); n > m && !s.maxConcurrent.CompareAndSwap(m, n); m = s.maxConcurrent.Load() {
			}
			go func() {
				defer s.open.Add(-1)
				defer c.Close()
				r := bufio.NewReader(c)
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if answer != "" {
					_, _ = c.Write([]byte(answer))
				}
				if hold {
					_, _ = r.ReadString('\n') // until the client closes
				}
			}()
		}
	}()
	return s
}

// A target that active probes marked down, kept by a reload to a config
// with checks disabled, is tried again after down_interval: no probe will
// bring it back, and its state survives the reload.
func TestReloadToChecksDisabledRetriesDownTarget(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	b.stop()
	port := freePort(t)
	cfg := func(hc map[string]any) map[string]any {
		return proxyConfig(app{"name": "switch", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": addrs(a, b), "health_checks": hc})
	}
	loadConfig(t, cfg(map[string]any{"interval": "1h", "down_interval": "1h", "timeout": "1s"}))
	tb := lookupTarget(t, "switch", b.addr)
	waitFor(t, 10*time.Second, "the probes to mark b down", func() bool { return !tb.healthy.Load() })
	b.restart()
	if err := tryLoad(cfg(map[string]any{"disabled": true, "down_interval": "200ms"})); err != nil {
		t.Fatal(err)
	}
	reloaded := time.Now()
	waitFor(t, 10*time.Second, "b to take connections again", func() bool {
		return tryGreeting(t, hostPort(port)) == "b"
	})
	t.Logf("b served again %s after the reload", time.Since(reloaded).Round(time.Millisecond))
	if !tb.healthy.Load() {
		t.Error("b served a connection but is not marked up")
	}
}

// On a reload Caddy starts the new config before it stops the old one, so
// the old config's probes can still report for a moment. When the new
// config has checks disabled and took over a down target with a retry, a
// late probe of the old config must not cancel that retry: the target
// would stay down for good (no probe, and no dial fails to re-arm it).
func TestLateProbeOfThePreviousConfigKeepsTheRetry(t *testing.T) {
	tg := acquireTarget("late-probe", "127.0.0.1:1")
	t.Cleanup(func() { releaseTargets([]*target{tg}) })
	start := time.Now()
	tg.probeResult(start, errors.New("connection refused"), 1, 1) // the old config's probes: down
	if tg.healthy.Load() {
		t.Fatal("a failed probe with fall 1 left the target up")
	}

	takeOver([]*target{tg}, 50*time.Millisecond)                       // the new config: checks disabled
	tg.probeResult(time.Now(), errors.New("connection refused"), 1, 1) // the old config's last probe

	deadline := time.Now().Add(10 * time.Second)
	for !tg.node.Eligible() {
		if time.Now().After(deadline) {
			t.Fatal("the retry of the config without checks never opened: the target stays down")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A config with checks decides by its probes alone: its first probe
	// cancels a retry left from a config without them.
	takeOver([]*target{tg}, 0)
	tg.probeResult(time.Now(), errors.New("connection refused"), 1, 1)
	if tg.node.Eligible() {
		t.Fatal("a probe of a config with checks left the earlier config's retry open")
	}
}
