//go:build linux

package evloop

import (
	"math"
	"math/bits"
	"time"
)

// The timer wheel: each loop files every connection that has a timeout
// under the 10 ms slot of its earliest deadline. Traffic never touches it:
// moving bytes only stamps the connection with the loop's clock, and when
// the slot comes up the deadline is computed again from the stamps, and
// the connection either ends or is filed again further on. A connection
// is in the wheel at most once (an intrusive list, no allocation), and a
// deadline further away than a turn of the wheel (about 10 s) is looked
// at once a turn.
const (
	tick      = int64(10 * time.Millisecond)
	wheelSize = 1024 // slots, a power of two
	never     = int64(math.MaxInt64)
)

type wheel struct {
	heads [wheelSize]*Conn
	used  [wheelSize / 64]uint64 // a bit per non-empty slot
	cur   int64                  // the last tick expired
}

// timer is a connection's place in the wheel.
type timer struct {
	next, prev *Conn
	slot       int32 // -1: not filed
	due        int64 // the deadline it is filed for
}

// add files c for due, which must be later than the last tick expired
// (an earlier one is filed in the next slot).
func (w *wheel) add(c *Conn, due int64) {
	t := max((due+tick-1)/tick, w.cur+1)
	s := int32(t & (wheelSize - 1))
	c.p.tm = timer{next: w.heads[s], slot: s, due: due}
	if n := w.heads[s]; n != nil {
		n.p.tm.prev = c
	}
	w.heads[s] = c
	w.used[s>>6] |= 1 << (s & 63)
}

// remove takes c out of the wheel, if it is in.
func (w *wheel) remove(c *Conn) {
	tm := &c.p.tm
	if tm.slot < 0 {
		return
	}
	if tm.prev != nil {
		tm.prev.p.tm.next = tm.next
	} else {
		w.heads[tm.slot] = tm.next
	}
	if tm.next != nil {
		tm.next.p.tm.prev = tm.prev
	}
	if w.heads[tm.slot] == nil {
		w.used[tm.slot>>6] &^= 1 << (tm.slot & 63)
	}
	*tm = timer{slot: -1}
}

// expire takes out the connections of every slot up to now and calls fn
// for each; fn may file it again.
func (w *wheel) expire(now int64, fn func(*Conn)) {
	end := now / tick
	w.cur = max(w.cur, end-wheelSize) // after a long sleep, one turn sees all
	for w.cur < end {
		w.cur++
		s := int32(w.cur & (wheelSize - 1))
		if w.used[s>>6]&(1<<(s&63)) == 0 {
			continue
		}
		list := w.heads[s]
		w.heads[s] = nil
		w.used[s>>6] &^= 1 << (s & 63)
		for c := list; c != nil; c = c.p.tm.next {
			c.p.tm.slot = -1 // out of the wheel before any fn runs
		}
		for c := list; c != nil; {
			next := c.p.tm.next
			c.p.tm = timer{slot: -1}
			fn(c)
			c = next
		}
	}
}

// next returns the time of the next slot that holds a connection, or
// never.
func (w *wheel) next() int64 {
	for i := int64(0); i < wheelSize; {
		t := w.cur + 1 + i
		s := t & (wheelSize - 1)
		if word := w.used[s>>6] >> (s & 63); word != 0 {
			return (t + int64(bits.TrailingZeros64(word))) * tick
		}
		i += 64 - s&63
	}
	return never
}
