package e2e

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Faults of the target: it black-holes SYNs, resets mid-stream, or dies.

// TestFaultBlackHoledTarget: fault 1. A target whose SYNs are dropped
// costs a client at most dial_timeout when another target is healthy
// (the dial fails over), and closes every client within dial_timeout + 1s
// when it is the only one. Active checks are off: this is the data path's
// own defence.
func TestFaultBlackHoledTarget(t *testing.T) {
	const dialTimeout = time.Second
	hole := blackHole(t)

	t.Run("with a healthy target", func(t *testing.T) {
		be := newEchoBackend(t, "H")
		port := freePort(t)
		a := faultApp("hole", port, hole, be.addr)
		a.DialTimeout = dialTimeout.String()
		proc := startCaddy(t, proxyCfg{Apps: []appCfg{a}})

		// Rounds of concurrent clients: the first round's share of the
		// black hole waits for the dial timeout, then fails over.
		const rounds, perRound = 4, 8
		var (
			mu     sync.Mutex
			delays []time.Duration
			failed []string
		)
		for r := 0; r < rounds; r++ {
			var wg sync.WaitGroup
			for i := 0; i < perRound; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					start := time.Now()
					name, cerr := exchange(port, []byte(fmt.Sprintf("round-%d-client-%d", r, i)))
					d := time.Since(start)
					mu.Lock()
					defer mu.Unlock()
					if cerr != nil || name != "H" {
						failed = append(failed, fmt.Sprintf("%v (backend %q)", cerr, name))
						return
					}
					delays = append(delays, d)
				}(i)
			}
			wg.Wait()
		}
		slices.Sort(delays)
		affected := 0
		for _, d := range delays {
			if d >= dialTimeout/2 {
				affected++
			}
		}
		maxDelay := delays[len(delays)-1]
		figure(t, "black hole + healthy target, dial_timeout %s: %d client connections, %d failed, %d delayed by the black hole, longest %s, median %s",
			dialTimeout, rounds*perRound, len(failed), affected, maxDelay.Round(time.Millisecond), delays[len(delays)/2].Round(time.Millisecond))
		if len(failed) > 0 {
			t.Errorf("%d client connections failed: %v", len(failed), failed)
		}
		if affected == 0 {
			t.Error("no connection went to the black hole first: the test proves nothing")
		}
		if maxDelay > dialTimeout+500*time.Millisecond {
			t.Errorf("a client waited %s, want at most dial_timeout (%s) and some scheduling", maxDelay, dialTimeout)
		}
		retried := 0
		for _, e := range accessLog(t, proc, "hole") {
			if e.Attempts > 1 && e.Target == be.addr {
				retried++
			}
		}
		if retried != affected {
			t.Errorf("access log: %d entries with a second attempt on the healthy target, %d clients delayed", retried, affected)
		}
	})

	t.Run("alone", func(t *testing.T) {
		port := freePort(t)
		a := faultApp("hole", port, hole)
		a.DialTimeout = dialTimeout.String()
		proc := startCaddy(t, proxyCfg{Apps: []appCfg{a}})

		// A burst of concurrent clients, then a few one after the other.
		const burst, after = 16, 4
		closedIn := func() (time.Duration, error) {
			conn, err := dialProxy(port)
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			start := time.Now()
			_ = conn.SetReadDeadline(start.Add(dialTimeout + 5*time.Second))
			n, err := conn.Read(make([]byte, 64))
			if kind := classify(err); n > 0 || (kind != kindCut && kind != kindReset) {
				return 0, fmt.Errorf("read %d bytes, %v: want the connection closed", n, err)
			}
			return time.Since(start), nil
		}
		var (
			mu    sync.Mutex
			times []time.Duration
			errs  []error
		)
		record := func(d time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			times = append(times, d)
		}
		var wg sync.WaitGroup
		for i := 0; i < burst; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				record(closedIn())
			}()
		}
		wg.Wait()
		for i := 0; i < after; i++ {
			record(closedIn())
		}
		for _, err := range errs {
			t.Error(err)
		}
		slices.Sort(times)
		longest := times[len(times)-1]
		figure(t, "black hole alone, dial_timeout %s: %d clients, all closed, longest after %s, shortest %s; access log reasons %v",
			dialTimeout, len(times), longest.Round(time.Millisecond), times[0].Round(time.Millisecond), reasons(accessLog(t, proc, "hole")))
		if longest > dialTimeout+time.Second {
			t.Errorf("a client was closed after %s, want within dial_timeout + 1s (%s)", longest, dialTimeout+time.Second)
		}
	})
}

// resetAll closes every connection the backend holds with SO_LINGER 0:
// the kernel sends a reset instead of a FIN. It returns how many.
func (b *echoBackend) resetAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for c := range b.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
		n++
	}
	return n
}

// waitStreamsEnd waits for every stream's reader to end and returns how
// long after `since` each ended, and how (the kind of its first failure).
func waitStreamsEnd(t *testing.T, streams []*stream, since time.Time, within time.Duration) ([]time.Duration, map[string]int) {
	t.Helper()
	var ends []time.Duration
	kinds := map[string]int{}
	deadline := time.After(within)
	for i, s := range streams {
		select {
		case <-s.readerDone:
		case <-deadline:
			t.Fatalf("stream %d of %d still open %s after the fault", i+1, len(streams), within)
		}
		err, at := s.failure()
		if err == nil {
			t.Errorf("stream %d ended without an error", i+1)
			continue
		}
		kind := classify(err)
		if ce, ok := err.(*connError); ok {
			kind = ce.kind
		}
		if kind == kindCorrupt {
			t.Errorf("stream %d: %v", i+1, err)
		}
		kinds[kind]++
		ends = append(ends, at.Sub(since))
	}
	slices.Sort(ends)
	return ends, kinds
}

// TestFaultTargetResetMidStream: fault 2. Targets that reset their
// connections (SO_LINGER 0) in the middle of streams in both directions:
// each client's connection ends at once (the reset passed on, or closed),
// and the proxy's goroutines and descriptors return to their baseline.
func TestFaultTargetResetMidStream(t *testing.T) {
	be := newEchoBackend(t, "R")
	port := freePort(t)
	proc := startCaddy(t, proxyCfg{Apps: []appCfg{faultApp("reset", port, be.addr)}})
	if _, cerr := exchange(port, []byte("warm-up")); cerr != nil {
		t.Fatal(cerr)
	}
	baseG, baseF := settledCounts(t, proc)

	const n = 20
	streams := openFlowingStreams(t, port, n, 8<<10, 2*time.Millisecond)
	resetAt := time.Now()
	if k := be.resetAll(); k != n {
		t.Fatalf("backend held %d connections, want %d", k, n)
	}
	ends, kinds := waitStreamsEnd(t, streams, resetAt, 10*time.Second)
	for _, s := range streams {
		s.conn.Close()
	}
	g, f, _ := backToBaseline(t, proc, baseG, baseF, 5, 20*time.Second)
	figure(t, "target reset mid-stream: %d streams, client side ended after %s (median) to %s (longest), as %v; goroutines %d -> %d, fds %d -> %d",
		n, ends[len(ends)/2].Round(time.Microsecond), ends[len(ends)-1].Round(time.Microsecond), kinds, baseG, g, baseF, f)
	if ends[len(ends)-1] > time.Second {
		t.Errorf("a client's connection ended %s after its target's reset, want within 1s", ends[len(ends)-1])
	}
	if got := reasons(accessLog(t, proc, "reset")); got["target_error"] != n {
		t.Errorf("access log reasons %v, want %d target_error", got, n)
	}
}

// TestFaultTargetKilledUnderBulkLoad: fault 4. The target process is
// killed (SIGKILL) under 100 concurrent bulk streams: every client's
// connection ends within seconds, and nothing leaks.
func TestFaultTargetKilledUnderBulkLoad(t *testing.T) {
	be := startEchoProcess(t, "K")
	port := freePort(t)
	proc := startCaddy(t, proxyCfg{Apps: []appCfg{faultApp("killed", port, be.addr)}})
	if name, cerr := exchange(port, []byte("warm-up")); cerr != nil || name != "K" {
		t.Fatalf("warm-up: %q, %v", name, cerr)
	}
	baseG, baseF := settledCounts(t, proc)

	const n = 100
	streams := openFlowingStreams(t, port, n, 16<<10, 10*time.Millisecond)
	var moved int64
	for _, s := range streams {
		moved += s.verified.Load()
	}
	killAt := time.Now()
	if err := be.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ends, kinds := waitStreamsEnd(t, streams, killAt, 15*time.Second)
	for _, s := range streams {
		s.conn.Close()
	}
	g, f, _ := backToBaseline(t, proc, baseG, baseF, 5, 20*time.Second)
	figure(t, "target SIGKILLed under %d bulk streams (%.0f MiB echoed before): client side ended after %s (median) to %s (longest), as %v; goroutines %d -> %d, fds %d -> %d; access log reasons %v",
		n, mib(moved), ends[len(ends)/2].Round(time.Millisecond), ends[len(ends)-1].Round(time.Millisecond), kinds,
		baseG, g, baseF, f, reasons(accessLog(t, proc, "killed")))
	if ends[len(ends)-1] > 3*time.Second {
		t.Errorf("a client's connection ended %s after the target was killed, want within 3s", ends[len(ends)-1])
	}
	if !proc.exited() {
		if _, cerr := exchange(port, []byte("after")); cerr == nil {
			t.Error("a connection was proxied with the only target dead")
		}
	}
}
