package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Faults of the proxy's own resources: file descriptors run out; many
// idle connections through many reloads.

// fdsSettled returns the process's descriptor count once it has not
// changed for half a second (read from /proc: no request to the process).
func fdsSettled(t *testing.T, proc *caddyProc) int {
	t.Helper()
	prev, _ := proc.fds()
	stable := time.Now()
	waitFor(10*time.Second, func() bool {
		n, err := proc.fds()
		if err != nil {
			t.Fatal(err)
		}
		if n != prev {
			prev, stable = n, time.Now()
		}
		return time.Since(stable) >= 500*time.Millisecond
	})
	return prev
}

// fdSlotsUsed counts the process's open descriptors numbered below n.
func fdSlotsUsed(t *testing.T, pid, n int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd < n {
			used++
		}
	}
	return used
}

// acceptLogLines counts the log lines of failed accepts on the proxy's
// listening sockets.
func acceptLogLines(t *testing.T, proc *caddyProc) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(readLog(t, proc), "\n") {
		if strings.Contains(line, `"logger":"tcpproxy"`) && strings.Contains(line, `"msg":"accept failed`) {
			n++
		}
	}
	return n
}

// floodOutcome is what became of the clients of a flood.
type floodOutcome struct {
	served, closed, waiting []net.Conn
	failedDial              int
}

// flood opens n connections at once, then waits up to wait for each
// one's greeting: served got it, closed were closed by the proxy, waiting
// got nothing yet (queued in the kernel's accept queue).
func flood(port, n int, wait time.Duration) *floodOutcome {
	out := &floodOutcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	conns := make(chan net.Conn, n)
	work := make(chan struct{})
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				conn, err := dialProxy(port)
				if err != nil {
					mu.Lock()
					out.failedDial++
					mu.Unlock()
					continue
				}
				conns <- conn
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	close(conns)
	deadline := time.Now().Add(wait)
	for conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = conn.SetReadDeadline(deadline)
			_, err := greeting(bufio.NewReader(conn))
			_ = conn.SetReadDeadline(time.Time{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out.served = append(out.served, conn)
			case classify(err) == kindTimeout:
				out.waiting = append(out.waiting, conn)
			default:
				out.closed = append(out.closed, conn)
			}
		}()
	}
	wg.Wait()
	return out
}

func (o *floodOutcome) closeAll() {
	for _, cs := range [][]net.Conn{o.served, o.closed, o.waiting} {
		for _, c := range cs {
			c.Close()
		}
	}
}

// TestFaultFileDescriptorsExhausted: fault 6. Caddy's RLIMIT_NOFILE is
// lowered to a little above what it uses idle, then three times that many
// connections arrive: the process does not crash or spin (< 0.2 cores
// while exhausted), the accept loop backs off and logs at most a line a
// second, and service resumes by itself once the connections close.
//
// Where the limit bites depends on its parity: each proxied connection
// takes two descriptors (client and target), so either the accept finds
// none left (the client waits in the kernel's accept queue), or the
// accept takes the last one and the dial to the target fails (the client
// is closed, and the target must not be taken for down: the fault is
// this machine's). Both are run: the limit is filled one connection at a
// time, so that which one happens is decided by the limit alone, then the
// rest arrive at once.
func TestFaultFileDescriptorsExhausted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra int    // descriptors left when the proxied connections have taken theirs
		first string // what becomes of the first connection beyond them
	}{
		{"accept fails", 0, "waiting"},
		{"dial fails", 1, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newEchoBackend(t, "F")
			port := freePort(t)
			a := app("fds", []int{port}, be.addr)
			a.AccessLog = true
			proc := startCaddy(t, proxyCfg{Apps: []appCfg{a}})
			if _, cerr := exchange(port, []byte("warm-up")); cerr != nil {
				t.Fatal(cerr)
			}
			settledCounts(t, proc)
			fdsSettled(t, proc)
			// A descriptor numbered at or above the limit takes no slot
			// below it (one inherited from the test runner may be).
			const proxied = 60
			base := fdSlotsUsed(t, proc.pid(), 1<<20)
			limit := fdSlotsUsed(t, proc.pid(), base+2*proxied+tc.extra) + 2*proxied + tc.extra
			base = fdSlotsUsed(t, proc.pid(), limit)
			if err := unix.Prlimit(proc.pid(), unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(limit), Max: uint64(limit)}, nil); err != nil {
				t.Skipf("cannot lower the process's RLIMIT_NOFILE: %v", err)
			}
			attempts := 3 * limit
			cpuBefore := mustCPU(t, proc.pid())
			floodAt := time.Now()

			// One at a time up to the limit.
			out := &floodOutcome{}
			defer out.closeAll()
			first := ""
			for i := 0; i < attempts && first == ""; i++ {
				o := flood(port, 1, time.Second)
				out.add(o)
				switch {
				case len(o.closed) > 0:
					first = "closed"
				case len(o.waiting) > 0:
					first = "waiting"
				case o.failedDial > 0:
					t.Fatalf("connection %d failed: the kernel's accept queue is full", i+1)
				}
			}
			if first != tc.first {
				t.Fatalf("with %d descriptors (%d in use idle), connection %d was %s, want %s: the process uses descriptors the test does not know of",
					limit, base, len(out.served)+1, first, tc.first)
			}
			// Then the rest at once.
			out.add(flood(port, attempts-len(out.served)-len(out.closed)-len(out.waiting), 2*time.Second))

			// Exhausted: hold every connection and watch the process.
			linesBefore := acceptLogLines(t, proc)
			holdFrom, cpuHold := time.Now(), mustCPU(t, proc.pid())
			const hold = 3 * time.Second
			time.Sleep(hold) // the measurement window, not a synchronization
			cores := (mustCPU(t, proc.pid()) - cpuHold).Seconds() / time.Since(holdFrom).Seconds()
			exhaustedFor := time.Since(floodAt)
			fds, _ := proc.fds()
			if proc.exited() {
				t.Fatalf("caddy exited with the descriptors exhausted: %v", proc.waitErr)
			}
			lines := acceptLogLines(t, proc)
			figure(t, "RLIMIT_NOFILE %d (%d used idle), %d connections (%s): %d served, %d closed by the proxy, %d waiting in the accept queue, %d failed to connect; "+
				"%d fds in use; %.3f cores while exhausted (%.2f CPU-s for the flood); %d accept-failure log lines in %s (%d in the %s hold)",
				limit, base, attempts, tc.name, len(out.served), len(out.closed), len(out.waiting), out.failedDial,
				fds, cores, (cpuHold - cpuBefore).Seconds(), lines, exhaustedFor.Round(100*time.Millisecond), lines-linesBefore, hold)
			if cores >= 0.2 {
				t.Errorf("the process used %.2f cores while exhausted, want < 0.2", cores)
			}
			if max := int(exhaustedFor/time.Second) + 1; lines > max {
				t.Errorf("%d accept-failure log lines in %s, want at most one a second", lines, exhaustedFor)
			}
			if len(out.waiting) > 0 && lines == 0 {
				t.Error("clients wait in the accept queue but the log says nothing of failed accepts")
			}
			if len(out.served) != proxied {
				t.Errorf("%d connections served before the limit, want %d", len(out.served), proxied)
			}

			// The connections close: service resumes by itself.
			out.closeAll()
			closedAt := time.Now()
			var resumed time.Duration
			tries := 0
			ok := waitFor(15*time.Second, func() bool {
				tries++
				name, cerr := exchange(port, []byte("after"))
				if cerr == nil && name == "F" {
					resumed = time.Since(closedAt)
					return true
				}
				time.Sleep(100 * time.Millisecond)
				return false
			})
			how := fmt.Sprintf("resumed %s after the connections closed", resumed.Round(time.Millisecond))
			if !ok {
				how = "did not resume within 15s of the connections closing"
			}
			figure(t, "RLIMIT_NOFILE %d (%s): service %s (%d tries); access log reasons %v",
				limit, tc.name, how, tries, reasons(accessLog(t, proc, "fds")))
			if !ok || resumed > 10*time.Second {
				t.Errorf("service %s, want it back within 10s", how)
				if proc.logContains(`"target down"`, "too many open files") {
					t.Error("a dial that failed for want of descriptors marked the target down: " +
						"SPEC Part 2 says a dial failing for a reason local to this machine never does")
				}
			}
		})
	}
}

// add merges o into f.
func (f *floodOutcome) add(o *floodOutcome) {
	f.served = append(f.served, o.served...)
	f.closed = append(f.closed, o.closed...)
	f.waiting = append(f.waiting, o.waiting...)
	f.failedDial += o.failedDial
}

func mustCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	d, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFaultIdleConnectionsThroughReloads: fault 7. 8,000 idle proxied
// connections held through 20 reloads: none is cut, the proxy's memory
// per connection is unchanged, and once they close the goroutines return
// to their baseline. The backend runs in a process of its own: this
// process holds the 8,000 client sockets, Caddy 16,000, both under the
// 20,000 descriptor limit. With TCPPROXY_FAULTS_LONG the reloads are 100.
func TestFaultIdleConnectionsThroughReloads(t *testing.T) {
	n, reloads := 8000, 20
	if longFaults {
		reloads = 100
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Caddy inherits this process's limit, and holds two per connection.
	if most := (int(lim.Cur) - 500) / 2; most < n {
		if most < 1000 {
			t.Fatalf("RLIMIT_NOFILE is %d: too low to hold even 1,000 connections through Caddy", lim.Cur)
		}
		t.Logf("RLIMIT_NOFILE is %d: %d connections instead of %d", lim.Cur, most, n)
		n = most
	}
	be := startEchoProcess(t, "I")
	port := freePort(t)
	cfg := func(i int) proxyCfg {
		a := app("idle", []int{port}, be.addr)
		a.DialTimeout = fmt.Sprintf("%ds", 2+i%2) // each reload changes the config
		return proxyCfg{Apps: []appCfg{a}}
	}
	proc := startCaddy(t, cfg(1))
	if err := proc.load(cfg(0)); err != nil { // warm-up reload
		t.Fatal(err)
	}
	if _, cerr := exchange(port, []byte("warm-up")); cerr != nil {
		t.Fatal(cerr)
	}
	baseG, baseF := settledCounts(t, proc)
	_, _, _ = proc.get("/debug/pprof/heap?gc=1")
	baseRSS := mustRSS(t, proc.pid())

	type held struct {
		conn net.Conn
		r    *bufio.Reader
	}
	conns := make([]held, n)
	defer func() {
		for _, h := range conns {
			if h.conn != nil {
				h.conn.Close()
			}
		}
	}()
	openStart := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				conn, err := dialProxy(port)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				r := bufio.NewReaderSize(conn, 64)
				conns[i] = held{conn, r}
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := greeting(r); err != nil {
					errs <- fmt.Errorf("connection %d: greeting: %w", i, err)
					return
				}
				_ = conn.SetReadDeadline(time.Time{})
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	opened := time.Since(openStart)
	g1, f1 := counts(t, proc)
	_, _, _ = proc.get("/debug/pprof/heap?gc=1")
	openRSS := mustRSS(t, proc.pid())

	reloadStart := time.Now()
	for i := 1; i <= reloads; i++ {
		if err := proc.load(cfg(i)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	reloading := time.Since(reloadStart)
	if n := strings.Count(readLog(t, proc), `"logger":"tcpproxy","msg":"started"`); n != reloads+2 {
		t.Errorf("%d configs started, want %d: the reloads did not all happen", n, reloads+2)
	}
	_, _, _ = proc.get("/debug/pprof/heap?gc=1")
	afterRSS := mustRSS(t, proc.pid())
	g2, f2 := counts(t, proc)

	// None cut: each still echoes, and had nothing to read meanwhile.
	cut := 0
	var firstCut error
	var mu sync.Mutex
	var ewg sync.WaitGroup
	for w := 0; w < 16; w++ {
		ewg.Add(1)
		go func(w int) {
			defer ewg.Done()
			for i := w; i < n; i += 16 {
				h := conns[i]
				if err := echoOnce(h.conn, h.r, []byte(fmt.Sprintf("still-%d", i))); err != nil {
					mu.Lock()
					cut++
					if firstCut == nil {
						firstCut = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	ewg.Wait()
	perOpen := float64(openRSS-baseRSS) / float64(n) / 1024
	perAfter := float64(afterRSS-baseRSS) / float64(n) / 1024
	for i := range conns {
		conns[i].conn.Close()
	}
	conns = nil
	g3, f3, _ := backToBaseline(t, proc, baseG, baseF, 5, 60*time.Second)
	figure(t, "%d idle connections (opened in %s) through %d reloads (%s): %d cut; RSS %.1f MiB idle, %.1f MiB with the connections (%.1f KiB each), %.1f MiB after the reloads (%.1f KiB each); "+
		"goroutines %d -> %d -> %d -> %d, fds %d -> %d -> %d -> %d (baseline, open, after reloads, closed)",
		n, opened.Round(time.Millisecond), reloads, reloading.Round(time.Millisecond), cut,
		mib(baseRSS), mib(openRSS), perOpen, mib(afterRSS), perAfter, baseG, g1, g2, g3, baseF, f1, f2, f3)
	if cut > 0 {
		t.Errorf("%d of %d connections cut by the reloads; first: %v", cut, n, firstCut)
	}
	if perAfter > perOpen*1.1+0.5 {
		t.Errorf("RSS per connection grew from %.1f KiB to %.1f KiB through the reloads", perOpen, perAfter)
	}
	if g2 > g1+5 || f2 > f1+5 {
		t.Errorf("the reloads added goroutines (%d -> %d) or fds (%d -> %d)", g1, g2, f1, f2)
	}
	if fi, err := os.Stat(proc.logPath); err == nil {
		t.Logf("caddy log: %d bytes", fi.Size())
	}
}
