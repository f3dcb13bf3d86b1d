package balance

import "sync/atomic"

// view is what Pick reads: the members and, derived from them at one
// epoch, the active tier. It is immutable once published except for its
// epoch, which a rebuild that finds the same tier moves forward in place
// (so an eligibility change elsewhere costs no allocation).
type view struct {
	epoch   atomic.Uint64
	members []Member // as configured, for the last-resort scan and rebuilds
	// entries is the active tier: the eligible non-backup members, or if
	// there are none the eligible backups, in member order.
	entries []entry
	// sched is round_robin's schedule: indexes into entries, Σweight/gcd
	// long, in smooth weighted round robin order; nil when all weights are
	// equal (the schedule is then 0, 1, ..., len(entries)-1).
	sched []uint32
}

type entry struct {
	node   *Node
	seed   uint64 // node.seed, here so ip_hash scans one array
	weight int64
	// invW is 1/weight, and invWLow a hair less, for ip_hash's score and
	// its cheap lower bound.
	invW, invWLow float64
}

// build derives the view of members at the current epoch. When old is not
// nil and has the same active tier, old is returned with its epoch moved
// forward. Called with b.mu held.
func (b *Balancer) build(members []Member, old *view) *view {
	// The epoch is read before any node: a change after this read moves
	// the epoch past e, so the view is rebuilt again at the next Pick.
	e := epoch.Load()

	// One snapshot of each node's eligibility, so the tier choice and the
	// tier's content agree even if a node flips during the build.
	if cap(b.scratch) < len(members) {
		b.scratch = make([]bool, len(members))
	}
	ok := b.scratch[:len(members)]
	backups := true // serve the backups unless a primary is eligible
	for i, m := range members {
		ok[i] = m.Node.Eligible()
		if ok[i] && !m.Backup {
			backups = false
		}
	}
	inTier := func(i int) bool { return ok[i] && members[i].Backup == backups }

	if old != nil && sameTier(old.entries, members, inTier) {
		old.epoch.Store(e)
		return old
	}

	v := &view{members: members}
	v.epoch.Store(e)
	n := 0
	for i := range members {
		if inTier(i) {
			n++
		}
	}
	v.entries = make([]entry, 0, n)
	for i, m := range members {
		if inTier(i) {
			w := float64(m.Weight)
			v.entries = append(v.entries, entry{
				node:    m.Node,
				seed:    m.Node.seed,
				weight:  int64(m.Weight),
				invW:    1 / w,
				invWLow: (1 - 0x1p-30) / w,
			})
		}
	}
	if b.kind == roundRobin {
		v.sched = schedule(v.entries)
	}
	return v
}

// sameTier reports whether the members for which inTier holds are, in
// order and with their weights, exactly es.
func sameTier(es []entry, members []Member, inTier func(int) bool) bool {
	j := 0
	for i, m := range members {
		if !inTier(i) {
			continue
		}
		if j == len(es) || es[j].node != m.Node || es[j].weight != int64(m.Weight) {
			return false
		}
		j++
	}
	return j == len(es)
}

// anyEligible returns the first eligible member, primaries first, or nil.
func (v *view) anyEligible() *Node {
	for _, backup := range [2]bool{false, true} {
		for _, m := range v.members {
			if m.Backup == backup && m.Node.Eligible() {
				return m.Node
			}
		}
	}
	return nil
}
