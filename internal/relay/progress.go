package relay

import "time"

// acks is what each peer had acknowledged (see acked) when the timer last
// asked: up is the target's count, down the client's.
type acks struct {
	up, down int64
	seen     bool // asked at least once
}

// stillQuiet is asked when the byte counts say that the connection has
// been quiet long enough for timeout r (idle or half-close). The counts
// are what the copy moved; bytes the proxy wrote earlier may still be
// leaving its socket buffers for a slow reader, and the copy sees none of
// that while it waits for the kernel to wake it (once a third of a full
// send buffer is free: minutes, for a reader of a few KiB/s). So before a
// connection is closed for want of traffic, the peers' acknowledged byte
// counts are read and compared with the previous look; if they moved,
// that is traffic (seen now) and the connection stays.
//
// The counts are read only here, never per byte or per connection: the
// first time a connection looks quiet there is nothing to compare with,
// so it is looked at again recheck later. A connection quiet from the
// start is thus closed up to two looks (2T/checksPerTimeout) after T.
func (c *Conn) stillQuiet(now time.Duration, r Reason) (quiet bool, recheck time.Duration) {
	up, down := acked(c.target), acked(c.client)
	prev := c.acks
	c.acks = acks{up: up, down: down, seen: true}
	if !prev.seen {
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
