package history

import "time"

const (
	// Interval is the length of one slot of history.
	Interval = 10 * time.Second
	// Slots is how many slots a ring keeps: 15 minutes of Interval.
	Slots = 90
)

// SlotOf is the slot a sample taken at now is recorded in: slot n covers
// the Interval that ends at n×Interval after the Unix epoch, and a sample
// goes to the slot whose end is nearest. Samplers tick just after each
// multiple of Interval, so a sample lands in the slot that just ended and
// holds what happened during it; two samplers (an old and a new config
// during a reload) ticking in the same Interval get the same slot.
func SlotOf(now time.Time) int64 {
	return (now.UnixNano() + int64(Interval)/2) / int64(Interval)
}

// slotEnd is the wall-clock time at which slot n ends.
func slotEnd(n int64) time.Time {
	return time.Unix(0, n*int64(Interval)).UTC()
}
