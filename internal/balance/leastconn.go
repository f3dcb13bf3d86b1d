package balance

import "sync/atomic"

// leastConn takes the eligible node with the fewest active connections per
// unit of weight (Active/weight, compared cross-multiplied: no floats);
// ties are broken round-robin by the cursor, so equal nodes take turns.
func (v *view) leastConn(cursor *atomic.Uint64) *Node {
	var (
		first          *Node // first node of the least ratio
		leastA, leastW int64 = 0, 1
		ties           uint64
	)
	for i := range v.entries {
		e := &v.entries[i]
		if !e.node.Eligible() {
			continue
		}
		a := e.node.Active.Load()
		switch {
		case first == nil || a*leastW < leastA*e.weight:
			first, leastA, leastW, ties = e.node, a, e.weight, 1
		case a*leastW == leastA*e.weight:
			ties++
		}
	}
	if ties <= 1 {
		return first
	}
	// Counts move under us: take the n-th node still at the least ratio,
	// or the first one seen if they all moved.
	n := (cursor.Add(1) - 1) % ties
	for i := range v.entries {
		e := &v.entries[i]
		if e.node.Eligible() && e.node.Active.Load()*leastW == leastA*e.weight {
			if n == 0 {
				return e.node
			}
			n--
		}
	}
	return first
}
