package history

import (
	"testing"
	"time"
)

// t0 is the end of a slot: a sample at t0 + k×Interval lands in slot
// SlotOf(t0) + k.
var t0 = time.Unix(1_700_000_000, 0)

// at returns the time of the k-th slot after t0, plus an offset within it.
func at(k int, off time.Duration) time.Time {
	return t0.Add(time.Duration(k)*Interval + off)
}

// tail returns the last n points of a series (zeros for a nil series).
func tail(s []int64, n int) []int64 {
	if s == nil {
		return make([]int64, n)
	}
	return s[len(s)-n:]
}

func sum(s []int64) (total int64) {
	for _, v := range s {
		total += v
	}
	return total
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func wantTail(t *testing.T, name string, s []int64, want ...int64) {
	t.Helper()
	if got := tail(s, len(want)); !equal(got, want) {
		t.Errorf("%s: last %d points = %v, want %v", name, len(want), got, want)
	}
}

// fullTarget returns a target ring with every slot recorded and traffic in
// every series, the worst case for a snapshot.
func fullTarget(app *App) *Target {
	h := NewTarget()
	for k := range Slots {
		u := uint64(k+1) * 1000
		h.Record(at(k, 0), Sample{Connections: u, BytesUp: u << 20, BytesDown: u << 24, Rejections: u / 100, Active: int64(k)}, app)
	}
	return h
}
