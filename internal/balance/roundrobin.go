package balance

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"
)

// roundRobin takes the schedule entry at the cursor. While the tier is
// stable, any len(sched) consecutive cursor values cover the schedule
// once, so every window of Σweight picks gives each node exactly its
// weight. A node that went down since the view was built is passed over
// for the next one in member order.
func (v *view) roundRobin(cursor *atomic.Uint64) *Node {
	k := len(v.entries)
	if k == 0 {
		return nil
	}
	c := cursor.Add(1) - 1
	var i int
	if v.sched == nil {
		i = int(c % uint64(k))
	} else {
		i = int(v.sched[c%uint64(len(v.sched))])
	}
	for range k {
		if n := v.entries[i].node; n.Eligible() {
			return n
		}
		if i++; i == k {
			i = 0
		}
	}
	return nil
}

// schedule returns the smooth weighted round robin order of es, nginx's
// algorithm: every step adds each node's weight to its current value,
// takes the node with the highest, first in member order on ties, and
// subtracts the total weight from it. Weights are first reduced by their
// GCD, so the schedule is Σweight/gcd entries of 4 bytes: at most 1 KiB
// per target (weight 256), e.g. 128 KiB for 256 targets of weights 1..256.
// It returns nil when all weights are equal: the order is then plain
// rotation, with no schedule.
//
// Nodes of equal weight are taken together: they all gain the same each
// step, so among them nginx's choice is always the next in member order,
// and only that one competes with the other weights. A step costs
// O(distinct weights), the build O(Σweight/gcd × distinct weights).
func schedule(es []entry) []uint32 {
	var g int64
	for _, e := range es {
		g = gcd(g, e.weight)
	}
	var total int64
	for _, e := range es {
		total += e.weight / g
	}
	if total == int64(len(es)) {
		return nil
	}

	// One group per distinct weight: members sorted by (weight, index),
	// so each group is a run of order holding its members in member order.
	order := make([]uint32, len(es))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortStableFunc(order, func(a, b uint32) int { return cmp.Compare(es[a].weight, es[b].weight) })
	var (
		w, cur     []int64    // per group: reduced weight, value of its next member
		runs       [][]uint32 // per group: its members
		next, head []uint32   // per group: position in runs of its next member, and that member
	)
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && es[order[j]].weight == es[order[i]].weight {
			j++
		}
		w = append(w, es[order[i]].weight/g)
		runs = append(runs, order[i:j])
		i = j
	}
	cur = make([]int64, len(w))
	next = make([]uint32, len(w))
	head = make([]uint32, len(w))
	for gi, r := range runs {
		head[gi] = r[0]
	}

	sched := make([]uint32, total)
	for s := range sched {
		best, bc, bh := 0, int64(math.MinInt64), uint32(0)
		for gi := range cur {
			cur[gi] += w[gi]
			if c := cur[gi]; c > bc || c == bc && head[gi] < bh {
				best, bc, bh = gi, c, head[gi]
			}
		}
		sched[s] = bh
		// The chosen member gives up total; the group's next member has
		// been picked one round less, so the group's value is that
		// member's: down by total only when a round completes.
		r := runs[best]
		if next[best]++; int(next[best]) == len(r) {
			next[best] = 0
			cur[best] -= total
		}
		head[best] = r[next[best]]
	}
	return sched
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
