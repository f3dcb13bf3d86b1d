package tcpproxy

import (
	"sync/atomic"
	"time"
)

// everySecond lets a repeated warning through at most once per second,
// counting the ones held back.
type everySecond struct {
	last    atomic.Int64 // unix nanoseconds of the last one let through
	skipped atomic.Int64
}

// allow reports whether to log this event now, and if so how many events
// there were since the last one logged, this one included.
func (e *everySecond) allow() (events int64, ok bool) {
	now, last := time.Now().UnixNano(), e.last.Load()
	if now-last < int64(time.Second) || !e.last.CompareAndSwap(last, now) {
		e.skipped.Add(1)
		return 0, false
	}
	return e.skipped.Swap(0) + 1, true
}
