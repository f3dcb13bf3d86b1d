package balance

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNewRejectsUnknownPolicy(t *testing.T) {
	_, err := New("random", nil)
	if err == nil {
		t.Fatal("New accepted policy \"random\"")
	}
	for _, want := range []string{`"random"`, `"ip_hash", "least_conn", "round_robin"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %s", err, want)
		}
	}
	for _, p := range Policies() {
		if _, err := New(p, nil); err != nil {
			t.Errorf("New(%q): %v", p, err)
		}
	}
	if !slices.IsSorted(Policies()) {
		t.Errorf("Policies() = %v, not sorted", Policies())
	}
}

func TestCheckWeight(t *testing.T) {
	for w, ok := range map[int]bool{0: false, -3: false, 1: true, 256: true, 257: false} {
		err := CheckWeight(w)
		if (err == nil) != ok {
			t.Errorf("CheckWeight(%d) = %v, want ok %v", w, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "1 to 256") {
			t.Errorf("CheckWeight(%d) = %q: does not say what is valid", w, err)
		}
	}
}

// Weights out of range are clamped, nil nodes skipped.
func TestSetMembersSanitizes(t *testing.T) {
	ns := newNodes(2)
	b := newBalancer(t, "round_robin", []Member{{Node: ns[0], Weight: 0}, {Node: nil, Weight: 5}, {Node: ns[1], Weight: 1000}})
	c := countOf(picks(t, b, 257*2))
	if c[ns[0]] != 2 || c[ns[1]] != 512 {
		t.Fatalf("weights 0 and 1000 clamped to 1 and 256: got %d and %d of %d picks, want 2 and 512", c[ns[0]], c[ns[1]], 257*2)
	}
}

func TestSetEligibleReportsChange(t *testing.T) {
	n := NewNode("192.0.2.9:80")
	if !n.Eligible() {
		t.Fatal("a new node is not eligible")
	}
	steps := []struct{ set, changed bool }{{true, false}, {false, true}, {false, false}, {true, true}}
	for _, s := range steps {
		if got := n.SetEligible(s.set); got != s.changed {
			t.Fatalf("SetEligible(%v) = %v, want %v", s.set, got, s.changed)
		}
	}
}

// SetMembers takes effect for the next Pick, and a removed member gets
// no more picks.
func TestSetMembersReplaces(t *testing.T) {
	ns := newNodes(4)
	b := newBalancer(t, "round_robin", equal(ns[:2]))
	b.SetMembers(equal(ns[2:]))
	for _, n := range picks(t, b, 10) {
		if n == ns[0] || n == ns[1] {
			t.Fatalf("removed member %s picked", n.Addr())
		}
	}
	b.SetMembers(nil)
	if n := b.Pick(netip.Addr{}); n != nil {
		t.Fatalf("no members, picked %s", n.Addr())
	}
}

// Refresh rebuilds a stale view, so the next Pick finds it current.
func TestRefresh(t *testing.T) {
	ns := newNodes(3)
	b := newBalancer(t, "round_robin", weighted(ns, 1, 2, 3))
	ns[1].SetEligible(false)
	if b.view.Load().epoch.Load() == epoch.Load() {
		t.Fatal("the view is current right after an eligibility change")
	}
	b.Refresh()
	v := b.view.Load()
	if v.epoch.Load() != epoch.Load() {
		t.Fatal("the view is stale after Refresh")
	}
	for _, e := range v.entries {
		if e.node == ns[1] {
			t.Fatal("the refreshed view still holds the ineligible node")
		}
	}
}
