package clientlimit

// slots is the length of an entry's rate ring. The ring holds the current
// slot and the slots-1 before it; those earlier ones span slots-1 widths,
// at least a Window, so the sum of the ring counts every admission of the
// last Window (and some up to one slot width older). Admitting only while
// that sum is below Rate therefore never lets more than Rate through in any
// Window, and refuses at most one width (Window/7) early. A power of two,
// so that a slot number maps to a ring index with a mask.
const slots = 8

// floorDiv is ⌊a/b⌋ for b > 0, also for a < 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// advance moves the ring to slot k, clearing the slots it passes. A k
// behind the ring (a clock that went back) keeps the ring where it is:
// admissions then count in its newest slot, which keeps them longest.
func (e *entry) advance(k int64) {
	if k <= e.last {
		return
	}
	if k-e.last >= slots {
		e.ring = [slots]uint32{}
	} else {
		for s := e.last + 1; s <= k; s++ {
			e.ring[s&(slots-1)] = 0
		}
	}
	e.last = k
}

// recent is the number of admissions the ring holds.
func (e *entry) recent() uint64 {
	var n uint64
	for _, c := range e.ring {
		n += uint64(c)
	}
	return n
}

// admit counts one admission in the newest slot.
func (e *entry) admit() { e.ring[e.last&(slots-1)]++ }

// hasHistory reports whether the ring may still count toward a limit:
// rate limiting is on, the ring was filled under the current slot width,
// and it holds an admission. Whether that admission is still inside the
// Window depends on the time, which the caller checks if it has it.
func (e *entry) hasHistory(p *params) bool {
	return p.rate > 0 && e.gen == p.gen && e.recent() > 0
}

// expired reports whether e holds nothing worth keeping at slot k: no
// open connection and no admission that counts any more.
func (e *entry) expired(p *params, k int64) bool {
	return e.conns == 0 && (!e.hasHistory(p) || k-e.last >= slots)
}
