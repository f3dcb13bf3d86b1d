package balance

import (
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// epoch counts eligibility changes of every Node in the process. A view
// built at epoch e is current while epoch is still e; one counter for all
// apps keeps SetEligible free of any knowledge of the Balancers that use
// the node, at the price of an O(targets) re-check in every app when any
// target anywhere changes (rare: health and admin events).
//
// The padding keeps the counter, read on every Pick, off the cache line of
// anything written often.
var epoch struct {
	_ [64]byte
	atomic.Uint64
	_ [56]byte
}

// Node is the live state of one target that the policies read. The root's
// shared target state (kept across config reloads) holds one, so the
// eligibility and the connection count survive a reload.
type Node struct {
	addr string
	seed uint64 // hash of addr: the node's identity for ip_hash

	eligible atomic.Bool

	// Active is the number of connections being proxied to the target now.
	// The data path adds 1 when it dials and subtracts 1 when the
	// connection ends; least_conn reads it.
	Active atomic.Int64

	// Owner is the caller's object for this target (the root's target
	// state), so that the node Pick returns leads back to it without a
	// lookup. Set it before the node is shared; the package never reads it.
	Owner any
}

// NewNode returns the state of the target at addr, the address as
// configured (ip_hash hashes this string, so every process and every
// reload that configures the same string agrees). It starts eligible.
func NewNode(addr string) *Node {
	n := &Node{addr: addr, seed: xxhash.Sum64String(addr)}
	n.eligible.Store(true)
	return n
}

// Addr returns the address the node was created with.
func (n *Node) Addr() string { return n.addr }

// Eligible reports whether the node may take new connections.
func (n *Node) Eligible() bool { return n.eligible.Load() }

// SetEligible makes the node eligible for new connections or not (the
// caller computes healthy && state == ready) and reports whether that was a
// change. A change is visible to the next Pick of every Balancer: the
// node's flag is stored before the epoch moves, so a Pick that sees the new
// epoch also sees the flag.
func (n *Node) SetEligible(ok bool) (changed bool) {
	if !n.eligible.CompareAndSwap(!ok, ok) {
		return false
	}
	epoch.Add(1)
	return true
}
