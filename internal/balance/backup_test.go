package balance

import (
	"net/netip"
	"slices"
	"testing"
)

// Backups only, no primary configured: they are the tier.
func TestOnlyBackups(t *testing.T) {
	ns := newNodes(2)
	b := newBalancer(t, "round_robin", []Member{{Node: ns[0], Weight: 1, Backup: true}, {Node: ns[1], Weight: 1, Backup: true}})
	if c := countOf(picks(t, b, 10)); c[ns[0]] != 5 || c[ns[1]] != 5 {
		t.Fatalf("two backups, no primary: %d and %d of 10 picks, want 5 and 5", c[ns[0]], c[ns[1]])
	}
}

func TestNoMembers(t *testing.T) {
	for _, policy := range Policies() {
		b := newBalancer(t, policy, nil)
		if n := b.Pick(netip.MustParseAddr("192.0.2.1")); n != nil {
			t.Fatalf("%s with no members picked %s", policy, n.Addr())
		}
	}
}

func TestBackups(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, policy string) {
		ips := randomIPs(400)
		ns := newNodes(4)
		p1, p2, b1, b2 := ns[0], ns[1], ns[2], ns[3]
		b := newBalancer(t, policy, []Member{
			{Node: p1, Weight: 1}, {Node: b1, Weight: 1, Backup: true},
			{Node: p2, Weight: 1}, {Node: b2, Weight: 1, Backup: true},
		})
		spread := func() map[*Node]int {
			c := make(map[*Node]int)
			for _, ip := range ips {
				c[b.Pick(ip)]++
			}
			return c
		}
		expect := func(stage string, want ...*Node) {
			t.Helper()
			c := spread()
			for n, k := range c {
				if !slices.Contains(want, n) {
					t.Fatalf("%s: %d picks went to %s", stage, k, nameOf(n))
				}
			}
			for _, n := range want {
				if c[n] < len(ips)/len(want)/3 { // all share, roughly evenly
					t.Fatalf("%s: %s got %d of %d picks, want a fair share", stage, n.Addr(), c[n], len(ips))
				}
			}
		}

		expect("all eligible", p1, p2)
		p1.SetEligible(false)
		expect("one primary down", p2)
		p2.SetEligible(false)
		expect("all primaries down", b1, b2)
		b1.SetEligible(false)
		expect("one backup left", b2)

		// A primary coming back takes the very next pick.
		p2.SetEligible(true)
		if n := b.Pick(ips[0]); n != p2 {
			t.Fatalf("the pick after a primary returned went to %s, want %s", nameOf(n), p2.Addr())
		}
		expect("a primary back", p2)

		p2.SetEligible(false)
		b2.SetEligible(false)
		if n := b.Pick(ips[0]); n != nil {
			t.Fatalf("nothing eligible, picked %s", n.Addr())
		}
	})
}

func nameOf(n *Node) string {
	if n == nil {
		return "<nil>"
	}
	return n.Addr()
}
