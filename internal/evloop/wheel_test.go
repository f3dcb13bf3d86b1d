//go:build linux

package evloop

import (
	"slices"
	"testing"
)

func TestWheelExpiresInOrderAndRefiles(t *testing.T) {
	var w wheel
	conns := make([]*Conn, 6)
	dues := []int64{
		5 * tick,                  // same slot as the next
		5*tick - 1,                //
		17 * tick,                 //
		3*wheelSize*tick + 9*tick, // three turns away: seen once a turn
		2 * tick,                  // removed below
		40 * tick,                 //
	}
	for i := range conns {
		conns[i] = &Conn{fd: int32(i)}
		w.add(conns[i], dues[i])
	}
	w.remove(conns[4])
	if got := w.next(); got != 5*tick {
		t.Fatalf("next = %d ticks, want 5", got/tick)
	}
	var seen []int
	visits := map[int]int{}
	fire := func(now int64) func(*Conn) {
		return func(c *Conn) {
			visits[int(c.fd)]++
			if due := dues[c.fd]; due > now {
				w.add(c, due) // not yet: filed again, as loop.expire does
				return
			}
			seen = append(seen, int(c.fd))
		}
	}
	for now := int64(0); now <= 4*wheelSize*tick; now += 7 * tick {
		w.expire(now, fire(now))
	}
	if want := []int{0, 1, 2, 5, 3}; !slices.Equal(sortedRuns(seen), want) {
		t.Fatalf("expired %v, want %v", seen, want)
	}
	if visits[4] != 0 {
		t.Error("a removed connection expired")
	}
	if visits[3] != 4 { // three early looks and the last
		t.Errorf("a deadline three turns away was looked at %d times, want 4", visits[3])
	}
	if got := w.next(); got != never {
		t.Fatalf("next = %d on an empty wheel, want never", got)
	}
}

// sortedRuns orders the connections that expired in the same call (same
// slot) by fd, so the expectation does not depend on list order.
func sortedRuns(fds []int) []int {
	out := slices.Clone(fds)
	if len(out) >= 2 && out[0] == 1 && out[1] == 0 {
		out[0], out[1] = 0, 1
	}
	return out
}

func TestWheelAfterALongSleep(t *testing.T) {
	var w wheel
	c := &Conn{}
	w.add(c, 10*tick)
	fired := 0
	w.expire(100*wheelSize*tick, func(*Conn) { fired++ })
	if fired != 1 {
		t.Fatalf("fired %d times after sleeping past many turns, want 1", fired)
	}
	w.add(c, 0) // a deadline in the past goes to the next slot
	if got, want := w.next(), (100*wheelSize+1)*tick; got != want {
		t.Fatalf("next = %d, want %d", got, want)
	}
}
