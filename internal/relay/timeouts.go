package relay

import "time"

// Timeouts bound a proxied connection's life. A value ≤ 0 turns that
// timer off.
type Timeouts struct {
	// Idle closes a connection when no byte has moved in either
	// direction for this long.
	Idle time.Duration
	// HalfClose closes a connection one of whose directions has ended
	// when the other has moved no byte for this long.
	HalfClose time.Duration
	// MaxDuration closes a connection this long after it was accepted.
	MaxDuration time.Duration
}

// any reports whether a timer is on.
func (t Timeouts) any() bool { return t.Idle > 0 || t.HalfClose > 0 || t.MaxDuration > 0 }

// checksPerTimeout is how often, per idle or half-close period, the timer
// looks at the byte counts. Traffic is noticed at the next look, so a
// timeout fires between T and T + T/checksPerTimeout after the last byte
// (T + 2T/checksPerTimeout the first time a connection is found quiet: see
// Conn.stillQuiet). Reading the counts the data path keeps anyway costs the data path
// nothing: no clock read and no timer reset per byte.
const checksPerTimeout = 8

// minCheck keeps very short timeouts from spinning.
const minCheck = time.Millisecond

// activity is what the timer has seen of a connection: the byte counts at
// its last look and when (since accept) it last saw each of them move.
type activity struct {
	up, down         int64
	lastUp, lastDown time.Duration
}

// observe records the counts seen at now.
func (a *activity) observe(now time.Duration, up, down int64) {
	if up != a.up {
		a.up, a.lastUp = up, now
	}
	if down != a.down {
		a.down, a.lastDown = down, now
	}
}

// expired says whether a connection with the activity a, whose directions
// ended at upEnd and downEnd (since accept; 0 while flowing), must close
// at now, and if not, how long until the next look.
func (t Timeouts) expired(now time.Duration, a *activity, upEnd, downEnd time.Duration) (Reason, time.Duration) {
	if t.MaxDuration > 0 && now >= t.MaxDuration {
		return MaxDuration, 0
	}
	next := time.Duration(1<<63 - 1)
	if t.MaxDuration > 0 {
		next = t.MaxDuration - now
	}
	if t.HalfClose > 0 && (upEnd > 0) != (downEnd > 0) {
		since := max(upEnd, a.lastDown) // up ended: down must move
		if downEnd > 0 {
			since = max(downEnd, a.lastUp)
		}
		if now-since >= t.HalfClose {
			return HalfCloseTimeout, 0
		}
		next = min(next, since+t.HalfClose-now, t.HalfClose/checksPerTimeout)
	}
	if t.Idle > 0 {
		last := max(a.lastUp, a.lastDown, upEnd, downEnd)
		if now-last >= t.Idle {
			return IdleTimeout, 0
		}
		next = min(next, last+t.Idle-now, t.Idle/checksPerTimeout)
	}
	return 0, max(next, minCheck)
}
