package relay

import "time"

// acks is what each peer had acknowledged (see progress) when the timer
// last asked: up is the target's count, down the client's.
type acks struct {
	up, down int64
	at       time.Duration // when: a sample older than the last traffic says nothing
	seen     bool          // asked at least once
}

// stillQuiet is asked when the byte counts say that the connection has
// been quiet long enough for timeout r (idle or half-close). The counts
// are what the copy moved; bytes the proxy wrote earlier may still be
// leaving its socket buffers for a slow reader, and the copy sees none of
// that while it waits for the kernel to wake it (once a third of a full
// send buffer is free: minutes, for a reader of a few KiB/s). So before a
// connection is closed for want of traffic, the kernel is asked:
//
//   - sockets that hold no byte of ours unsent or unacknowledged have
//     nothing in flight: the connection is quiet;
//   - otherwise the peers' acknowledged byte counts are compared with the
//     previous look's; if they moved, that is traffic (seen now) and the
//     connection stays.
//
// The counts are read only here, never per byte or per connection. A
// look with no earlier sample to compare with, or only one older than the
// connection's last traffic, samples and looks again recheck later: a
// slow reader is thus closed at most two looks (2T/checksPerTimeout)
// after it stopped reading. The evloop package decides the same way.
func (c *Conn) stillQuiet(now time.Duration, r Reason) (quiet bool, recheck time.Duration) {
	up, upPending := progress(c.target)
	down, downPending := progress(c.client)
	if !upPending && !downPending {
		c.acks.seen = false
		return true, 0
	}
	prev := c.acks
	c.acks = acks{up: up, down: down, at: now, seen: true}
	if !prev.seen || prev.at < max(c.seen.lastUp, c.seen.lastDown) {
		t := c.timeouts.Idle
		if r == HalfCloseTimeout {
			t = c.timeouts.HalfClose
		}
		return false, max(t/checksPerTimeout, minCheck)
	}
	if up != prev.up {
		c.seen.lastUp = now
	}
	if down != prev.down {
		c.seen.lastDown = now
	}
	return up == prev.up && down == prev.down, 0
}
