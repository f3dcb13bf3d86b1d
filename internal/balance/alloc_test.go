package balance

import (
	"net/netip"
	"testing"
)

// Pick allocates nothing in steady state, for every policy, and an
// eligibility change that leaves the app's active tier as it was (a target
// of another app, or a backup while primaries serve) costs no allocation
// either.
func TestPickAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("AllocsPerRun")
	}
	ip := netip.MustParseAddr("2001:db8::7")
	for _, policy := range Policies() {
		ns := newNodes(17)
		elsewhere := ns[16] // another app's target
		ms := make([]Member, 16)
		for i := range ms {
			ms[i] = Member{Node: ns[i], Weight: 1 + i%4, Backup: i >= 12}
		}
		b := newBalancer(t, policy, ms)
		if a := testing.AllocsPerRun(1000, func() { b.Pick(ip) }); a != 0 {
			t.Errorf("%s: %v allocs per Pick, want 0", policy, a)
		}
		up := false
		if a := testing.AllocsPerRun(1000, func() {
			elsewhere.SetEligible(up)
			up = !up
			b.Pick(ip)
		}); a != 0 {
			t.Errorf("%s: %v allocs per Pick after an unrelated eligibility change, want 0", policy, a)
		}
		if a := testing.AllocsPerRun(1000, func() {
			ns[13].SetEligible(up) // a backup, while primaries serve
			up = !up
			b.Pick(ip)
		}); a != 0 {
			t.Errorf("%s: %v allocs per Pick after a backup's eligibility change, want 0", policy, a)
		}
		ns[13].SetEligible(true)
	}
}
