package discovery

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// events records what a Watcher reports.
type events struct {
	mu       sync.Mutex
	changes  map[string][][]Record
	fails    map[string]int
	streaks  map[string]int
	recovers map[string][]int
	lastErr  error
}

func newEvents() *events {
	return &events{changes: map[string][][]Record{}, fails: map[string]int{}, streaks: map[string]int{}, recovers: map[string][]int{}}
}

func (e *events) handler() Handler {
	return Handler{
		Change: func(src string, recs []Record) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.changes[src] = append(e.changes[src], recs)
		},
		Fail: func(src string, err error, start bool) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.fails[src]++
			e.lastErr = err
			if start {
				e.streaks[src]++
			}
		},
		Recover: func(src string, failures int) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.recovers[src] = append(e.recovers[src], failures)
		},
	}
}

func (e *events) get(f func(e *events) bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return f(e)
}

func (e *events) changeCount(src string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.changes[src])
}

func (e *events) last(src string) []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.changes[src]
	if len(c) == 0 {
		return nil
	}
	return c[len(c)-1]
}

func addrs(recs []Record) string {
	var b strings.Builder
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.Addr)
	}
	return b.String()
}

// runWatcher runs w until the test ends and checks Run returned.
func runWatcher(t *testing.T, w *Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10s after its context was cancelled")
		}
	})
}

const refresh = 20 * time.Millisecond

func TestWatcherReportsChanges(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "db.test.", "db.test. 60 IN A 10.0.0.2", "db.test. 60 IN A 10.0.0.1")
	ev := newEvents()
	src := mustParse(t, "dns:db.test:80")
	w := NewWatcher(Config{Sources: []Source{src, src}, Resolver: NewResolver([]string{srv.Addr}, testTimeout), Refresh: refresh}, ev.handler())
	runWatcher(t, w)

	select {
	case <-w.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("Ready not closed after the first lookup")
	}
	if got := addrs(ev.last(src.Spec)); got != "10.0.0.1:80 10.0.0.2:80" {
		t.Fatalf("first set %q; want 10.0.0.1:80 10.0.0.2:80", got)
	}
	if recs, ok := w.Records(src.Spec); !ok || addrs(recs) != "10.0.0.1:80 10.0.0.2:80" {
		t.Fatalf("Records = %v, %v", recs, ok)
	}

	// Unchanged answers: several refreshes, no report.
	q := srv.Queries()
	waitFor(t, "5 more refreshes", func() bool { return srv.Queries() >= q+10 })
	if n := ev.changeCount(src.Spec); n != 1 {
		t.Fatalf("%d changes reported for an unchanged set; want 1 (the first)", n)
	}

	// Records added between refreshes: reported, order stable (by address).
	srv.Set(t, "db.test.", "db.test. 60 IN A 10.0.0.3", "db.test. 60 IN A 10.0.0.1", "db.test. 60 IN A 10.0.0.2", "db.test. 60 IN AAAA fd00::9")
	waitFor(t, "the added records", func() bool { return ev.changeCount(src.Spec) == 2 })
	if got := addrs(ev.last(src.Spec)); got != "10.0.0.1:80 10.0.0.2:80 10.0.0.3:80 [fd00::9]:80" {
		t.Fatalf("after adding: %q", got)
	}
	// Removed.
	srv.Set(t, "db.test.", "db.test. 60 IN A 10.0.0.3")
	waitFor(t, "the removal", func() bool { return ev.changeCount(src.Spec) == 3 })
	if got := addrs(ev.last(src.Spec)); got != "10.0.0.3:80" {
		t.Fatalf("after removing: %q", got)
	}
	q = srv.Queries()
	waitFor(t, "5 more refreshes", func() bool { return srv.Queries() >= q+10 })
	if n := ev.changeCount(src.Spec); n != 3 {
		t.Fatalf("%d changes; want 3", n)
	}

	// A successful answer with no record empties the set.
	srv.Set(t, "db.test.")
	waitFor(t, "the empty set", func() bool { return ev.changeCount(src.Spec) == 4 })
	if got := ev.last(src.Spec); got == nil || len(got) != 0 {
		t.Fatalf("after emptying: %v; want an empty set", got)
	}
	if ev.get(func(e *events) bool { return e.fails[src.Spec] != 0 }) {
		t.Fatalf("failures reported for good answers: %v", ev.lastErr)
	}
}

// A failure streak (SERVFAIL, no answer, NXDOMAIN) keeps the last good set
// and is reported once as a streak, then as one recovery.
func TestWatcherFailureStreaks(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(s *testServer)
		fix  func(s *testServer)
	}{
		{"servfail", func(s *testServer) { s.SetMode(servfail) }, func(s *testServer) { s.SetMode(answer) }},
		{"timeout", func(s *testServer) { s.SetMode(drop) }, func(s *testServer) { s.SetMode(answer) }},
		{"nxdomain", func(s *testServer) { s.Remove("_pg._tcp.db.test.") }, func(s *testServer) {
			s.SetRRs("_pg._tcp.db.test.", nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, "127.0.0.1")
			srv.Set(t, "_pg._tcp.db.test.", "_pg._tcp.db.test. 60 IN SRV 1 1 5432 a.db.test.")
			srv.Set(t, "a.db.test.", "a.db.test. 60 IN A 10.0.0.1")
			ev := newEvents()
			src := mustParse(t, "srv:_pg._tcp.db.test")
			w := NewWatcher(Config{Sources: []Source{src}, Resolver: NewResolver([]string{srv.Addr}, 50*time.Millisecond), Refresh: refresh, Timeout: time.Second}, ev.handler())
			runWatcher(t, w)
			waitFor(t, "the first set", func() bool { return ev.changeCount(src.Spec) == 1 })

			tc.fail(srv)
			waitFor(t, "3 failed refreshes", func() bool { return ev.get(func(e *events) bool { return e.fails[src.Spec] >= 3 }) })
			ev.mu.Lock()
			streaks, changes := ev.streaks[src.Spec], len(ev.changes[src.Spec])
			ev.mu.Unlock()
			if streaks != 1 || changes != 1 {
				t.Fatalf("during the failure: %d streaks, %d changes; want 1 streak, no new change", streaks, changes)
			}
			if recs, _ := w.Records(src.Spec); addrs(recs) != "10.0.0.1:5432" {
				t.Fatalf("last good set lost: %v", recs)
			}

			tc.fix(srv)
			waitFor(t, "the recovery", func() bool { return ev.get(func(e *events) bool { return len(e.recovers[src.Spec]) == 1 }) })
			ev.mu.Lock()
			defer ev.mu.Unlock()
			if n := ev.recovers[src.Spec][0]; n < 3 || n != ev.fails[src.Spec] {
				t.Errorf("recovery after %d failures; %d were reported", n, ev.fails[src.Spec])
			}
			if tc.name == "nxdomain" {
				// Fixed as "exists, no record": now the set empties.
				if len(ev.changes[src.Spec]) != 2 || len(ev.changes[src.Spec][1]) != 0 {
					t.Errorf("changes %v; want the first set then an empty one", ev.changes[src.Spec])
				}
			} else if len(ev.changes[src.Spec]) != 1 {
				t.Errorf("changes %v after recovering to the same set; want none new", ev.changes[src.Spec])
			}
			if ev.streaks[src.Spec] != 1 {
				t.Errorf("%d streaks; want 1", ev.streaks[src.Spec])
			}
		})
	}
}

// Seed: a reload's new Watcher keeps the old set while DNS fails, and an
// equal first answer is no change.
func TestWatcherSeed(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "db.test.", "db.test. 60 IN A 10.0.0.1")
	src := mustParse(t, "dns:db.test:80")
	seed := []Record{{Addr: "10.0.0.1:80", Weight: 1}}

	ev := newEvents()
	w := NewWatcher(Config{Sources: []Source{src}, Resolver: NewResolver([]string{srv.Addr}, testTimeout), Refresh: refresh}, ev.handler())
	w.Seed(src.Spec, seed)
	runWatcher(t, w)
	<-w.Ready()
	q := srv.Queries()
	waitFor(t, "more refreshes", func() bool { return srv.Queries() >= q+6 })
	if n := ev.changeCount(src.Spec); n != 0 {
		t.Fatalf("%d changes for an answer equal to the seed; want 0", n)
	}

	srv.SetMode(servfail)
	ev2 := newEvents()
	w2 := NewWatcher(Config{Sources: []Source{src}, Resolver: NewResolver([]string{srv.Addr}, testTimeout), Refresh: refresh}, ev2.handler())
	w2.Seed(src.Spec, seed)
	runWatcher(t, w2)
	<-w2.Ready()
	if recs, ok := w2.Records(src.Spec); !ok || !Equal(recs, seed) || ev2.changeCount(src.Spec) != 0 {
		t.Fatalf("failing first lookup after Seed: Records %v %v, %d changes; want the seed kept", recs, ok, ev2.changeCount(src.Spec))
	}
}

// Run ends with its context and leaves no goroutine behind, even with
// lookups waiting on a silent server.
func TestWatcherRunEndsWithContext(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "db.test.", "db.test. 60 IN A 10.0.0.1")
	silent := startServer(t, "127.0.0.2")
	silent.SetMode(drop)
	var sources []Source
	for i := range 5 {
		sources = append(sources, mustParse(t, fmt.Sprintf("dns:db.test:%d", 80+i)))
	}
	base := runtime.NumGoroutine()

	ev := newEvents()
	w := NewWatcher(Config{Sources: sources, Resolver: NewResolver([]string{srv.Addr}, testTimeout), Refresh: refresh}, ev.handler())
	w2 := NewWatcher(Config{Sources: sources, Resolver: NewResolver([]string{silent.Addr}, time.Minute), Refresh: refresh, Timeout: time.Hour}, Handler{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	wg.Go(func() { w2.Run(ctx) })
	waitFor(t, "every source resolved", func() bool {
		return ev.get(func(e *events) bool { return len(e.changes) == 5 })
	})
	waitFor(t, "queries waiting on the silent server", func() bool { return silent.Queries() >= 5 })
	if n := runtime.NumGoroutine(); n <= base {
		t.Fatalf("%d goroutines while running, %d before: the watchers run none?", n, base)
	}
	cancel()
	wg.Wait()
	select {
	case <-w2.Ready():
	default:
		t.Error("Ready not closed after Run returned")
	}
	waitFor(t, fmt.Sprintf("goroutines back to %d", base), func() bool { return runtime.NumGoroutine() <= base })
}
