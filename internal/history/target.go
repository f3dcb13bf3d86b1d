package history

import "time"

// Sample is what a sampler reads from a target: cumulative counters since
// the target state was created, and the active-connections gauge.
type Sample struct {
	Connections uint64 // connections opened
	BytesUp     uint64 // bytes from clients to the target
	BytesDown   uint64 // bytes from the target to clients
	Rejections  uint64 // connections that failed on this target (dial errors)
	Active      int64  // connections being proxied now
}

// Target is the history of one target. Create it with the counters it
// samples (both start at zero: the first Record counts everything since)
// and keep it in the state that outlives a config reload.
type Target struct{ r ring }

// NewTarget returns an empty target history of fixed size (about 3.6 KB).
func NewTarget() *Target {
	t := new(Target)
	t.r.init(targetCols)
	return t
}

// Record stores what s has grown since the last Record in the slot of now
// (SlotOf) and adds the connections and bytes to app's totals when app is
// not nil. It reports false, recording nothing, when that slot was already
// recorded (another config's sampler got there first). Call it with the
// same now for every target of a sampling round. It does not allocate.
func (t *Target) Record(now time.Time, s Sample, app *App) bool {
	n := SlotOf(now)
	r := &t.r
	r.mu.Lock()
	span, ok := r.begin(n)
	if !ok {
		r.mu.Unlock()
		return false
	}
	conns := r.delta(0, s.Connections)
	up := r.delta(1, s.BytesUp)
	down := r.delta(2, s.BytesDown)
	r.spread(n, span, colConnections, conns)
	r.spread(n, span, colBytesUp, up)
	r.spread(n, span, colBytesDown, down)
	r.spread(n, span, colRejections, r.delta(3, s.Rejections))
	r.gauge(n, span, colActive, s.Active)
	r.mu.Unlock()
	if app != nil {
		// Each slot of a target is recorded once, so adding its deltas
		// counts every connection in the app exactly once, whichever
		// config's sampler read it and whatever targets the configs have.
		app.addTarget(n, span, conns, up, down)
	}
	return true
}

// Snapshot returns the target's history for the status API.
func (t *Target) Snapshot() Snapshot { return t.r.snapshot(false) }

// Rates returns the target's rates over the newest recorded slot.
func (t *Target) Rates() Rates { return t.r.rates() }
