package tcpproxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// The status page's history (internal/history): the data path keeps
// cumulative counters in the target and app state (target.total,
// target.up ...; appState.rejected), and one goroutine per config reads
// them every history.Interval into rings that live in that same state, so
// the last 15 minutes survive a reload. Handlers in layer4 routes of the
// user's own have no sampler (they have no Start and are not in the status
// API): their targets' rings are recorded only while a tcpproxy app of the
// same name samples them.

// byteCounter counts one direction of a target's bytes as the relay moves
// them: in the target's Prometheus counter, which cannot be read cheaply,
// and in a plain atomic that the sampler reads. That is one more atomic
// add per burst (BenchmarkByteCounterPerBurst). Padded to a cache line so
// that the two directions of a target, counted by different goroutines,
// never share one.
type byteCounter struct {
	n      atomic.Uint64
	metric prometheus.Counter
	_      [64 - 8 - 16]byte
}

// Add counts v bytes; the relay calls it once per burst.
func (c *byteCounter) Add(v float64) {
	c.n.Add(uint64(v))
	c.metric.Add(v)
}

// sample reads the target's counters for its history.
func (t *target) sample() history.Sample {
	return history.Sample{
		Connections: t.total.Load(),
		BytesUp:     t.up.n.Load(),
		BytesDown:   t.down.n.Load(),
		Rejections:  t.dialErrors.Load(),
		Active:      t.node.Active.Load(),
	}
}

// historyTicks, when a test sets it before a config starts, drives that
// config's sampler instead of the wall clock: each time received is one
// sampling round (history.Sampler.Ticks).
var historyTicks <-chan time.Time

// startSampler starts the config's sampler: one goroutine that records
// every target and app of the config every history.Interval, until ctx
// ends. Stop waits for it with the health checks (a.wg).
func (a *App) startSampler(ctx context.Context) {
	s := history.Sampler{Sample: a.sample, Ticks: historyTicks}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		s.Run(ctx)
	}()
}

// sample is one sampling round: it records each app's targets, then the
// app (its active connections and rejections), all at the same now. It
// does not allocate.
func (a *App) sample(now time.Time) {
	for _, r := range a.running {
		for _, t := range r.set.current() {
			t.hist.Record(now, t.sample(), r.state.hist)
		}
		r.state.hist.Record(now, r.state.active.Load(), r.state.rejectionCounts())
	}
	a.sampled.Store(history.SlotOf(now))
}

// historyEnd is when the newest slot this config sampled ended, RFC 3339
// in UTC like a snapshot's End; "" before its first round. The page
// fetches the history again only when it changes.
func (a *App) historyEnd() string {
	n := a.sampled.Load()
	if n == 0 {
		return ""
	}
	return time.Unix(0, n*int64(history.Interval)).UTC().Format(time.RFC3339)
}
