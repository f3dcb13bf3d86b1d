package discovery

import (
	"context"
	"net"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultRefresh       = 30 * time.Second // dns_refresh
	DefaultLookupTimeout = 10 * time.Second // one lookup, all retries included
	firstRetry           = time.Second      // after a failure, doubling up to Refresh
)

// Config is what a Watcher watches.
type Config struct {
	Sources  []Source
	Resolver *net.Resolver // nil: NewResolver(nil, DefaultTimeout), the system's
	Refresh  time.Duration // between lookups of a source; 0: DefaultRefresh
	Timeout  time.Duration // the deadline of one lookup; 0: DefaultLookupTimeout
}

// Handler receives what a Watcher learns. Calls are serialised (never two
// at once, for all sources of the Watcher) and run on the Watcher's
// goroutines, so they should be quick. Nil funcs are skipped.
type Handler struct {
	// Change gets the new set of a source when it differs from the last
	// good one (always on the first success unless Seed gave an equal
	// set). recs is the Watcher's: do not modify it.
	Change func(source string, recs []Record)
	// Fail gets every failed lookup; streakStart is true for the first of
	// a streak of failures (log that one). The last good set stays.
	Fail func(source string, err error, streakStart bool)
	// Recover gets the first success after a streak, with the number of
	// failed lookups in it.
	Recover func(source string, failures int)
}

// Watcher keeps the record sets of an app's sources current: one lookup of
// each at once when Run starts, then one every Refresh. After a failure the
// source is retried sooner (1s, doubling, at most Refresh) so a set that
// could not be read at start does not wait a whole Refresh.
type Watcher struct {
	cfg     Config
	h       Handler
	sources []*watched
	ready   chan struct{}
	started bool

	mu sync.Mutex // guards watched.recs/known for Records and Seed
	cb sync.Mutex // serialises Handler calls
}

// watched is the state of one source.
type watched struct {
	src      Source
	recs     []Record // last good set
	known    bool     // recs comes from a lookup or Seed
	failures int      // of the current streak; the source's goroutine only
	scratch  []byte   // for sameRecords; the source's goroutine only
}

// NewWatcher returns a Watcher of cfg's sources (a spec listed twice is
// watched once) reporting to h. Nothing runs until Run.
func NewWatcher(cfg Config, h Handler) *Watcher {
	if cfg.Resolver == nil {
		cfg.Resolver = systemResolver
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultLookupTimeout
	}
	w := &Watcher{cfg: cfg, h: h, ready: make(chan struct{})}
	seen := make(map[string]bool, len(cfg.Sources))
	for _, s := range cfg.Sources {
		if !seen[s.Spec] {
			seen[s.Spec] = true
			w.sources = append(w.sources, &watched{src: s})
		}
	}
	return w
}

// Seed gives a source its last good set before Run, typically the set the
// previous config's Watcher had: a lookup failing at a reload then keeps
// it, and an equal first answer reports no Change. Unknown specs are
// ignored.
func (w *Watcher) Seed(spec string, recs []Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.sources {
		if s.src.Spec == spec {
			s.recs, s.known = recs, true
		}
	}
}

// Records returns the last good set of a source; ok is false for a source
// not watched or not resolved yet. The slice is shared: do not modify it.
func (w *Watcher) Records(spec string) (recs []Record, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.sources {
		if s.src.Spec == spec {
			return s.recs, s.known
		}
	}
	return nil, false
}

// Ready is closed once every source's first lookup has ended, successful
// or not (and when Run returns). Wait on it with a deadline of your own to
// serve with the initial sets when DNS answers quickly.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run watches until ctx ends, then returns once its goroutines (one per
// source) have ended and no lookup is left running; with no sources it
// returns at once. Call it once.
func (w *Watcher) Run(ctx context.Context) {
	if w.started {
		panic("discovery: Watcher.Run called twice")
	}
	w.started = true
	var wg, first sync.WaitGroup
	first.Add(len(w.sources))
	for _, s := range w.sources {
		wg.Go(func() { w.watch(ctx, s, first.Done) })
	}
	wg.Go(func() {
		first.Wait() // each watch calls Done after its first lookup or on exit
		close(w.ready)
	})
	wg.Wait()
}

// watch is the loop of one source.
func (w *Watcher) watch(ctx context.Context, s *watched, firstDone func()) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	first := true
	defer func() {
		if first {
			firstDone()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		ok := w.refresh(ctx, s)
		if first {
			first = false
			firstDone()
		}
		next := w.cfg.Refresh
		if !ok {
			next = min(next, firstRetry<<min(s.failures-1, 16))
		}
		timer.Reset(next)
	}
}

// refresh looks s up once and reports; false when the lookup failed.
func (w *Watcher) refresh(ctx context.Context, s *watched) bool {
	lctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	rs, err := s.src.resolve(lctx, w.cfg.Resolver)
	cancel()
	if ctx.Err() != nil {
		return true // stopping: a cancelled lookup is no failure to report
	}
	if err != nil {
		s.failures++
		w.call(func() {
			if w.h.Fail != nil {
				w.h.Fail(s.src.Spec, err, s.failures == 1)
			}
		})
		return false
	}
	if n := s.failures; n > 0 {
		s.failures = 0
		w.call(func() {
			if w.h.Recover != nil {
				w.h.Recover(s.src.Spec, n)
			}
		})
	}
	w.mu.Lock()
	same := s.known && sameRecords(s.recs, rs, &s.scratch)
	w.mu.Unlock()
	if same {
		return true
	}
	recs := toRecords(rs)
	w.mu.Lock()
	s.recs, s.known = recs, true
	w.mu.Unlock()
	w.call(func() {
		if w.h.Change != nil {
			w.h.Change(s.src.Spec, recs)
		}
	})
	return true
}

func (w *Watcher) call(f func()) {
	w.cb.Lock()
	defer w.cb.Unlock()
	f()
}
