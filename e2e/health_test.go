package e2e

import (
	"bufio"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 10's defects against the built binary, with default settings
// (down_interval 5s): a target that one failed dial marked down comes back
// within down_interval, and a dial that failed for a local reason never
// marks a target down. Each test logs the recovery time it measured.

// defaultDownInterval is down_interval's default with the default 30s
// interval.
const defaultDownInterval = 5 * time.Second

// TestRecoveryAfterFailedDialChecksDisabled: with health checks disabled,
// the first connection after down_interval reaches a target that is back.
// Before, 0 of 80 connections over 32s did: one failed dial kept the
// target down for good.
func TestRecoveryAfterFailedDialChecksDisabled(t *testing.T) {
	a := newEchoBackend(t, "A")
	port := freePort(t)
	cfg := proxyCfg{Apps: []appCfg{app("passive", []int{port}, a.addr)}}
	cfg.Apps[0].HealthChecks = &healthCfg{Disabled: true}
	startCaddy(t, cfg)
	if name, err := exchange(port, []byte("first")); err != nil || name != "A" {
		t.Fatalf("first connection: %q %v", name, err)
	}
	a.stop()
	if name, err := exchange(port, []byte("to-a-dead-target")); err == nil {
		t.Fatalf("served by %q while the only target is stopped", name)
	}
	failedAt := time.Now()
	a.restart()

	// As measured for the issue: a connection every 400ms, 80 at most.
	const tries, every = 80, 400 * time.Millisecond
	for i := 1; i <= tries; i++ {
		if name, err := exchange(port, []byte("back?")); err == nil && name == "A" {
			back := time.Since(failedAt)
			t.Logf("checks disabled: the target served again %s after the failed dial (connection %d of a connection every %s)",
				back.Round(10*time.Millisecond), i, every)
			if back > defaultDownInterval+every+2*time.Second {
				t.Errorf("back after %s, want within down_interval (%s) plus one connection", back, defaultDownInterval)
			}
			return
		}
		time.Sleep(every)
	}
	t.Fatalf("0 of %d connections over %s reached the target after it came back", tries, time.Since(failedAt).Round(time.Second))
}

// TestRecoveryAfterFailedDialChecksEvery30s: with the default checks
// (every 30s), a target that one failed dial marked down is probed again
// after down_interval and takes traffic again within about that, not at
// the next 30s round.
func TestRecoveryAfterFailedDialChecksEvery30s(t *testing.T) {
	a, b := newEchoBackend(t, "A"), newEchoBackend(t, "B")
	port := freePort(t)
	proc := startCaddy(t, proxyCfg{Apps: []appCfg{app("checked", []int{port}, a.addr, b.addr)}})
	if !waitFor(10*time.Second, func() bool { return a.accepted.Load() > 0 && b.accepted.Load() > 0 }) {
		t.Fatal("no first probe round")
	}

	b.stop() // briefly refusing
	for i := 0; ; i++ {
		name, err := exchange(port, []byte("while-b-refuses"))
		if err != nil || name != "A" {
			t.Fatalf("connection %d while B refuses: %q %v (A is up: the client must fail over)", i, name, err)
		}
		if st, ok := targetStatus(t, proc, "checked", b.addr); ok && !st.Healthy {
			break
		}
		if i == 20 {
			t.Fatal("B not marked down by a failed dial after 20 connections")
		}
	}
	failedAt := time.Now()
	b.restart()
	before := b.data.Load()
	for b.data.Load() == before {
		if time.Since(failedAt) > 40*time.Second {
			t.Fatalf("B got no connection within %s after it came back", time.Since(failedAt).Round(time.Second))
		}
		if _, err := exchange(port, []byte("where-to")); err != nil {
			t.Fatalf("client failed while A is up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	back := time.Since(failedAt)
	t.Logf("checks every 30s: B served again %s after the failed dial", back.Round(10*time.Millisecond))
	if back > defaultDownInterval+3*time.Second {
		t.Errorf("B back after %s, want about down_interval (%s), not the 30s interval", back, defaultDownInterval)
	}
}

// TestLocalDialFailureDoesNotMarkTargetDown: Caddy under a 64-descriptor
// limit, 100 clients at once. Dials fail with EMFILE ("socket: too many
// open files"): those clients are rejected, but the target is not marked
// down, so once the clients have left every new client is served.
// Before, the target was marked down and the app refused every new client
// (no_healthy_target) although its target was fine. Two apps share the
// target: one with the default checks, one probing every 200ms, whose
// probes also run out of descriptors.
func TestLocalDialFailureDoesNotMarkTargetDown(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skipf("prlimit (util-linux) not installed: %v", err)
	}
	be := newEchoBackend(t, "T")
	ports := freePorts(t, 2)
	cfg := proxyCfg{Apps: []appCfg{app("fd-default", ports[:1], be.addr), app("fd-probing", ports[1:], be.addr)}}
	cfg.Apps[1].HealthChecks = &healthCfg{Interval: "200ms", Timeout: "1s"}
	proc := startCaddyUnder(t, cfg, prlimit, "--nofile=64:64", "--")
	for _, p := range ports {
		if name, err := exchange(p, []byte("before")); err != nil || name != "T" {
			t.Fatalf("before the burst, port %d: %q %v", p, name, err)
		}
	}

	const clients = 100
	var served, rejected atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(port int) {
			defer wg.Done()
			c, err := dialProxy(port)
			if err != nil {
				rejected.Add(1)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := greeting(bufio.NewReader(c)); err != nil {
				rejected.Add(1)
				return
			}
			served.Add(1)
			time.Sleep(time.Second) // hold the descriptors a while
		}(ports[i%2])
	}
	wg.Wait()
	t.Logf("burst of %d clients under 64 descriptors: %d served, %d rejected", clients, served.Load(), rejected.Load())
	if !proc.logContains("too many open files") {
		t.Fatal("no dial or probe ran out of descriptors: the burst tested nothing")
	}

	// The clients have left: every app serves new clients at once.
	for _, p := range ports {
		start := time.Now()
		var last error
		if !waitFor(5*time.Second, func() bool {
			name, cerr := exchange(p, []byte("after"))
			if cerr != nil {
				last = cerr
			}
			return cerr == nil && name == "T"
		}) {
			t.Errorf("port %d: no client served within 5s after the burst (last: %v)", p, last)
			continue
		}
		t.Logf("port %d: served again %s after the clients left", p, time.Since(start).Round(time.Millisecond))
	}
	for _, a := range cfg.Apps {
		st, ok := targetStatus(t, proc, a.Name, be.addr)
		if !ok {
			t.Fatal("GET /tcpproxy/status not available")
		}
		if !st.Healthy || strings.Contains(st.LastError, "too many open files") {
			t.Errorf("app %s: target %+v: a local failure was blamed on it", a.Name, st)
		}
	}
	if proc.logContains(`"target down"`) {
		t.Error(`a "target down" line: a local failure marked the target down`)
	}
}
