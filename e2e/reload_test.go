package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadStats counts the short connections of the workers.
type loadStats struct {
	attempted atomic.Int64
	ok        atomic.Int64

	mu        sync.Mutex
	failures  map[string]int // by kind
	samples   []string       // first failures, for the log
	byBackend map[string]int // successful connections per backend
	afterLast map[string]int // connections dialed after the last reload
	lastAt    atomic.Int64   // unix nanos the last reload returned; 0 before
	perCfg    map[int]int    // successful connections per config generation
	gen       atomic.Int64   // config generation being loaded
}

func newLoadStats() *loadStats {
	return &loadStats{failures: map[string]int{}, byBackend: map[string]int{}, afterLast: map[string]int{}, perCfg: map[int]int{}}
}

func (s *loadStats) record(start time.Time, gen int64, backend string, cerr *connError) {
	s.attempted.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cerr != nil {
		s.failures[cerr.kind]++
		if len(s.samples) < 10 {
			s.samples = append(s.samples, fmt.Sprintf("%s (backend %q)", cerr, backend))
		}
		return
	}
	s.ok.Add(1)
	s.byBackend[backend]++
	s.perCfg[int(gen)]++
	if last := s.lastAt.Load(); last != 0 && start.UnixNano() > last {
		s.afterLast[backend]++
	}
}

func (s *loadStats) failedLocked() int {
	n := 0
	for _, v := range s.failures {
		n += v
	}
	return n
}

// runWorkers runs n workers that each open short connections in a loop,
// alternating over ports, until stop is closed, a cap on connections is
// reached or the deadline passes.
func runWorkers(n int, ports []int, stats *loadStats, stop <-chan struct{}, deadline time.Time) *sync.WaitGroup {
	const maxPerWorker = 50000
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			payload := []byte(fmt.Sprintf("worker-%02d-payload-0123456789abcdef", w))
			for i := 0; i < maxPerWorker && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				gen := stats.gen.Load()
				name, cerr := exchange(ports[(w+i)%len(ports)], payload)
				stats.record(start, gen, name, cerr)
			}
		}(w)
	}
	return &wg
}

// TestReloadUnderLoadDropsNothing: behaviour 5. While workers open short
// connections in a loop and long-lived streams push a known pattern, more
// than 50 reloads (admin API and CLI) alternate between two target lists.
// No connection may be refused, reset or fail, no stream may be corrupted
// or cut, and the target removed by the last reload gets no connection
// after it.
func TestReloadUnderLoadDropsNothing(t *testing.T) {
	a := newEchoBackend(t, "A")
	b := newEchoBackend(t, "B")
	c := newEchoBackend(t, "C")
	ports := freePorts(t, 2)
	health := &healthCfg{Interval: "30s", Timeout: "2s"}
	cfgAB := proxyCfg{Apps: []appCfg{app("reload", ports, a.addr, b.addr)}}
	cfgAB.Apps[0].HealthChecks = health
	cfgBC := proxyCfg{Apps: []appCfg{app("reload", ports, b.addr, c.addr)}}
	cfgBC.Apps[0].HealthChecks = health
	proc := startCaddy(t, cfgAB)

	// Long-lived streams, opened under {A,B}: they must outlive every
	// reload, including the ones that remove their target.
	var streams []*stream
	for i := 0; i < 4; i++ {
		streams = append(streams, openStream(t, ports[i%len(ports)], byte(i+1), 4096, 5*time.Millisecond))
	}

	stats := newLoadStats()
	stop := make(chan struct{})
	deadline := time.Now().Add(90 * time.Second)
	workers := runWorkers(8, ports, stats, stop, deadline)
	stopWorkers := sync.OnceFunc(func() { close(stop); workers.Wait() })
	t.Cleanup(stopWorkers)

	// Each config must carry real traffic: after a reload, wait until the
	// workers completed a few more connections before the next one.
	progress := func(min int64) bool {
		from := stats.attempted.Load()
		return waitFor(20*time.Second, func() bool { return stats.attempted.Load() >= from+min })
	}
	if !progress(50) {
		t.Fatal("workers made no progress before the first reload")
	}
	const reloads = 55 // odd: the last one loads {B,C}
	var viaCLI int
	begin := time.Now()
	var reloadTimes []time.Duration
	for i := 1; i <= reloads; i++ {
		cfg := cfgBC
		if i%2 == 0 {
			cfg = cfgAB
		}
		stats.gen.Store(int64(i))
		start := time.Now()
		var err error
		if i%10 == 5 { // 5, 15, 25, 35, 45, 55: the CLI, the last one included
			err = proc.reloadCLI(cfg)
			viaCLI++
		} else {
			err = proc.load(cfg)
		}
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		took := time.Since(start)
		reloadTimes = append(reloadTimes, took)
		// The streams never end by themselves: a reload that waited
		// for old connections would take the grace period (10s) or
		// forever.
		if took > 8*time.Second {
			t.Errorf("reload %d took %s: it must not wait for the open streams", i, took.Round(time.Millisecond))
		}
		if i == reloads {
			stats.lastAt.Store(time.Now().UnixNano())
		}
		if !progress(20) {
			t.Fatalf("workers stalled after reload %d", i)
		}
	}
	reloadSpan := time.Since(begin)
	attemptedDuring := stats.attempted.Load()

	// After the last reload: more traffic, all of it to B and C.
	if !progress(200) {
		t.Fatal("workers stalled after the last reload")
	}
	stopWorkers()
	for i, s := range streams {
		if err := s.finish(15 * time.Second); err != nil {
			t.Errorf("stream %d (backend %s): %v after %d bytes verified", i, s.backend, err, s.verified.Load())
		}
	}

	// A fresh sequential batch: A's backend sees none of it.
	aBefore := a.data.Load()
	var batch = map[string]int{}
	for i := 0; i < 100; i++ {
		name, cerr := exchange(ports[i%len(ports)], []byte("after-the-last-reload"))
		if cerr != nil {
			t.Errorf("connection %d after the reloads: %v", i, cerr)
			continue
		}
		batch[name]++
	}

	stats.mu.Lock()
	defer stats.mu.Unlock()
	sort.Slice(reloadTimes, func(i, j int) bool { return reloadTimes[i] < reloadTimes[j] })
	t.Logf("%d reloads (%d via `caddy reload`) in %s, reload time median %s max %s",
		reloads, viaCLI, reloadSpan.Round(time.Millisecond),
		reloadTimes[len(reloadTimes)/2].Round(time.Millisecond), reloadTimes[len(reloadTimes)-1].Round(time.Millisecond))
	t.Logf("short connections: %d attempted during the reloads, %d in all, %d ok, failures %v; per backend %v; dialed after the last reload %v",
		attemptedDuring, stats.attempted.Load(), stats.ok.Load(), stats.failures, stats.byBackend, stats.afterLast)
	var perStream []string
	for i, s := range streams {
		perStream = append(perStream, fmt.Sprintf("#%d via %s: %d bytes", i, s.backend, s.verified.Load()))
	}
	t.Logf("streams verified: %s", strings.Join(perStream, ", "))
	t.Logf("sequential batch after the reloads: %v; admin requests dropped by Caddy's admin server and sent again: %d", batch, proc.adminRetries.Load())

	if n := stats.failedLocked(); n > 0 || len(stats.samples) > 0 {
		t.Errorf("%d failed connections (%v); first: %s", n, stats.failures, strings.Join(stats.samples, "; "))
	}
	if n := stats.afterLast["A"]; n > 0 {
		t.Errorf("%d connections dialed after the last reload (to {B,C}) went to the removed target A", n)
	}
	if stats.afterLast["B"] == 0 || stats.afterLast["C"] == 0 {
		t.Errorf("after the last reload B and C should both get connections: %v", stats.afterLast)
	}
	if got := a.data.Load() - aBefore; got != 0 {
		t.Errorf("removed target A's backend received %d connections after the last reload", got)
	}
	if batch["A"] != 0 || batch["B"] != 50 || batch["C"] != 50 {
		t.Errorf("100 sequential connections after the reloads: %v, want B and C 50 each", batch)
	}
	for g := 0; g <= reloads; g++ {
		if stats.perCfg[g] == 0 {
			t.Errorf("no connection completed while config generation %d was being loaded", g)
		}
	}
}

// TestReloadMovesPortBetweenApps: a port that a reload moves from one app
// to another keeps its socket (the pool is keyed by address, not by app)
// and its new connections go to the new app's targets at once.
func TestReloadMovesPortBetweenApps(t *testing.T) {
	a := newEchoBackend(t, "A")
	b := newEchoBackend(t, "B")
	p := freePorts(t, 2)
	proc := startCaddy(t, proxyCfg{Apps: []appCfg{
		app("first", []int{p[0], p[1]}, a.addr),
		app("second", []int{freePort(t)}, b.addr),
	}})
	if name, cerr := exchange(p[1], []byte("before")); cerr != nil || name != "A" {
		t.Fatalf("before the move: backend %q, %v", name, cerr)
	}
	long := openStream(t, p[1], 3, 1024, 10*time.Millisecond)
	if err := proc.load(proxyCfg{Apps: []appCfg{
		app("first", []int{p[0]}, a.addr),
		app("second", []int{p[1]}, b.addr),
	}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if name, cerr := exchange(p[1], []byte("after")); cerr != nil || name != "B" {
			t.Fatalf("after the move, connection %d: backend %q, %v", i, name, cerr)
		}
		if name, cerr := exchange(p[0], []byte("after")); cerr != nil || name != "A" {
			t.Fatalf("after the move, connection %d on the kept port: backend %q, %v", i, name, cerr)
		}
	}
	if err := long.finish(10 * time.Second); err != nil {
		t.Errorf("stream opened before the move (to A): %v", err)
	}
}
