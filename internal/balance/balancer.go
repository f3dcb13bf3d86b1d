package balance

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
)

// MinWeight and MaxWeight bound a Member's weight (the config's "weight").
const (
	MinWeight = 1
	MaxWeight = 256
)

// Member is one target of an app as the config has it.
type Member struct {
	Node *Node
	// Weight is the target's share, MinWeight..MaxWeight. SetMembers clamps
	// a value outside that range; validate config input with CheckWeight.
	Weight int
	// Backup targets are eligible only while no non-backup member is.
	Backup bool
}

type policyKind uint8

const (
	roundRobin policyKind = iota
	leastConn
	ipHash
)

var policyByName = map[string]policyKind{
	"ip_hash":     ipHash,
	"least_conn":  leastConn,
	"round_robin": roundRobin,
}

// Policies returns the names New accepts, sorted.
func Policies() []string { return []string{"ip_hash", "least_conn", "round_robin"} }

// CheckWeight returns an error unless w is a valid weight.
func CheckWeight(w int) error {
	if w < MinWeight || w > MaxWeight {
		return fmt.Errorf("weight %d is out of range: valid weights are %d to %d", w, MinWeight, MaxWeight)
	}
	return nil
}

// Balancer picks a node among the members of one app by one policy. Pick
// may run concurrently with itself and with SetMembers.
type Balancer struct {
	kind   policyKind
	cursor *atomic.Uint64
	view   atomic.Pointer[view]

	// mu serialises view builds. Pick only TryLocks it, so one Pick
	// rebuilds while the others go on with the previous view.
	mu      sync.Mutex
	scratch []bool // eligibility snapshot during a build; guarded by mu
}

// New returns a Balancer with no members for policy, one of Policies().
// cursor is the app's round-robin position (round_robin, and the
// tie-breaking of least_conn): share one by all of an app's Balancers and
// keep it across config reloads so the rotation goes on where it was. A nil
// cursor gives the Balancer one of its own.
func New(policy string, cursor *atomic.Uint64) (*Balancer, error) {
	kind, ok := policyByName[policy]
	if !ok {
		return nil, fmt.Errorf("unknown lb_policy %q: valid policies are %s", policy, quoteAll(Policies()))
	}
	if cursor == nil {
		cursor = new(atomic.Uint64)
	}
	b := &Balancer{kind: kind, cursor: cursor}
	v := &view{}
	v.epoch.Store(epoch.Load())
	b.view.Store(v)
	return b, nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// SetMembers replaces the members (at config load and on each DNS
// refresh). Their order is the rotation order. Members with a nil Node are
// ignored, and a Node should appear at most once. Picks that start after
// SetMembers returns choose among the new members only.
func (b *Balancer) SetMembers(ms []Member) {
	own := make([]Member, 0, len(ms))
	for _, m := range ms {
		if m.Node == nil {
			continue
		}
		m.Weight = min(max(m.Weight, MinWeight), MaxWeight)
		own = append(own, m)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.view.Store(b.build(own, nil))
}

// Pick returns the node for a new connection from client, or nil when no
// member is eligible. client matters to ip_hash only (the zero Addr is
// allowed: all such clients then hash alike). It takes no lock and
// allocates nothing unless the eligible set changed since the last Pick.
func (b *Balancer) Pick(client netip.Addr) *Node {
	v := b.view.Load()
	if v.epoch.Load() != epoch.Load() {
		v = b.refresh(v, false)
	}
	if n := b.pickFrom(v, client); n != nil {
		return n
	}
	return b.pickSlow(v, client)
}

// pickSlow runs when the view offered no eligible node: either it is
// stale (some node went down after it was built), or nothing is eligible.
// It waits for a current view, and as a last resort (eligibility still
// moving under it) takes any eligible member, primaries first, so that Pick
// returns nil only when no member was eligible.
func (b *Balancer) pickSlow(v *view, client netip.Addr) *Node {
	if v.epoch.Load() != epoch.Load() {
		v = b.refresh(v, true)
		if n := b.pickFrom(v, client); n != nil {
			return n
		}
	}
	return v.anyEligible()
}

func (b *Balancer) pickFrom(v *view, client netip.Addr) *Node {
	switch b.kind {
	case leastConn:
		return v.leastConn(b.cursor)
	case ipHash:
		return v.ipHash(client)
	default:
		return v.roundRobin(b.cursor)
	}
}

// Refresh brings the view up to date now if an eligibility change made
// it stale. Pick does this by itself, but the Pick that finds the view
// stale pays for the rebuild: microseconds, but for round_robin over many
// distinct weights up to milliseconds (the schedule costs Σweight/gcd ×
// distinct weights steps). Calling Refresh from the goroutine that called
// SetEligible takes that cost off the connections.
func (b *Balancer) Refresh() {
	if v := b.view.Load(); v.epoch.Load() != epoch.Load() {
		b.refresh(v, true)
	}
}

// refresh returns a view that is current, rebuilding it if need be; with
// wait false it returns stale at once when another goroutine is
// rebuilding.
func (b *Balancer) refresh(stale *view, wait bool) *view {
	if wait {
		b.mu.Lock()
	} else if !b.mu.TryLock() {
		return stale
	}
	defer b.mu.Unlock()
	v := b.view.Load()
	if v.epoch.Load() == epoch.Load() {
		return v // rebuilt while we waited
	}
	nv := b.build(v.members, v)
	if nv != v {
		b.view.Store(nv)
	}
	return nv
}
