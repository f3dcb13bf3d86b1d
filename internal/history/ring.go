package history

import (
	"math"
	"sync"
)

// Columns of a ring's rows. Targets use the first targetCols; an app's
// ring also has one column per rejection reason after them.
const (
	colConnections = iota
	colBytesUp
	colBytesDown
	colRejections
	colActive // a gauge: the value sampled, not a delta
	targetCols

	appCols = targetCols + int(NumReasons)
)

// maxCounters is the most cumulative counters one ring tracks (an app's
// rejection reasons).
const maxCounters = int(NumReasons)

// ring is the storage shared by Target and App: Slots rows of cols int64
// values, allocated once, plus what turns cumulative counter readings into
// per-slot deltas. The mutex is taken by the sampler and by snapshots,
// never by the data path.
type ring struct {
	mu     sync.Mutex
	cols   int
	data   []int64 // Slots rows of cols; slot n is row n % Slots
	newest int64   // the newest open slot; 0 before the first
	opened int     // open slots still in the window, at most Slots

	// last is the slot of the last Record (0: none yet) and prev the
	// cumulative counters it read. A slot opened by an app's targets
	// (add) is not a Record of the app's own counters, so newest can be
	// ahead of last.
	last int64
	prev [maxCounters]uint64
}

func (r *ring) init(cols int) {
	r.cols = cols
	r.data = make([]int64, Slots*cols)
}

// row returns the values of slot n, which must be in the window.
func (r *ring) row(n int64) []int64 {
	i := int(n%Slots) * r.cols
	return r.data[i : i+r.cols : i+r.cols]
}

// open makes slot n the newest, zeroing the slots it passes over. A slot
// more than a window older than the newest means the wall clock was set
// back: the ring starts over rather than stop recording until the clock
// catches up. Slot n is in the window afterwards.
func (r *ring) open(n int64) {
	if r.newest != 0 && r.newest-n >= Slots {
		clear(r.data)
		r.newest, r.opened, r.last = 0, 0, 0
	}
	if n <= r.newest {
		return
	}
	from := r.newest + 1
	if r.newest == 0 {
		r.opened = 1 // the slots before the first hold no data
		from = n
	} else {
		r.opened = int(min(int64(r.opened)+n-r.newest, Slots))
	}
	from = max(from, n-Slots+1)
	for m := from; m <= n; m++ {
		clear(r.row(m))
	}
	r.newest = n
}

// begin starts the Record of slot n: it reports false when slot n was
// already recorded (by this or another config's sampler) or is not a
// slot, and otherwise
// opens it and returns how many slots the deltas since the last Record
// span (1 with no gap).
func (r *ring) begin(n int64) (span int64, ok bool) {
	if n <= 0 {
		return 0, false // a time before 1970 (a zero time.Time): no slot
	}
	if r.last != 0 && n <= r.last && r.last-n < Slots {
		return 0, false
	}
	r.open(n)
	if r.last == 0 {
		r.last = n - 1 // the baseline: counters start at zero with the ring
	}
	span = n - r.last
	r.last = n
	return span, true
}

// delta returns how much cumulative counter i grew since the last Record
// and remembers cur. A counter that went backwards (its state was
// recreated) counts 0 this time and grows from its new value on.
func (r *ring) delta(i int, cur uint64) uint64 {
	prev := r.prev[i]
	r.prev[i] = cur
	if cur < prev {
		return 0
	}
	return cur - prev
}

// spread adds delta to column col of the span slots ending with n: an
// equal share to each, the remainder to slot n. Slots already out of the
// window get nothing (their share is history older than 15 minutes).
func (r *ring) spread(n, span int64, col int, delta uint64) {
	if delta == 0 {
		return
	}
	share, rest := delta/uint64(span), delta%uint64(span)
	for m := max(n-span+1, r.newest-Slots+1); m <= n; m++ {
		v := share
		if m == n {
			v += rest
		}
		row := r.row(m)
		row[col] = satAdd(row[col], v)
	}
}

// gauge sets column col of the span slots ending with n to v: over a gap
// the gauge is shown at the value read at its end.
func (r *ring) gauge(n, span int64, col int, v int64) {
	for m := max(n-span+1, r.newest-Slots+1); m <= n; m++ {
		r.row(m)[col] = v
	}
}

// satAdd adds a counter delta to a slot value, saturating rather than
// wrapping to a negative number.
func satAdd(a int64, d uint64) int64 {
	if d > uint64(math.MaxInt64-a) {
		return math.MaxInt64
	}
	return a + int64(d)
}
