package balance

import (
	"net/netip"
	"testing"
)

// Connections that never end pile up in proportion to the weights: after
// 6m picks over weights 1, 2, 3 the nodes hold exactly m, 2m and 3m.
func TestLeastConnWeightedFill(t *testing.T) {
	ns := newNodes(3)
	b := newBalancer(t, "least_conn", weighted(ns, 1, 2, 3))
	for m := 1; m <= 50; m++ {
		for range 6 {
			n := b.Pick(netip.Addr{})
			if n == nil {
				t.Fatal("nil pick")
			}
			n.Active.Add(1)
		}
		for i, n := range ns {
			if got, want := n.Active.Load(), int64(m*(i+1)); got != want {
				t.Fatalf("after %d picks node %d (weight %d) has %d active, want %d", 6*m, i, i+1, got, want)
			}
		}
	}
}

func TestLeastConnPicksLeastPerWeight(t *testing.T) {
	ns := newNodes(3)
	b := newBalancer(t, "least_conn", weighted(ns, 1, 4, 2))
	ns[0].Active.Store(1) // 1/1
	ns[1].Active.Store(3) // 3/4: least
	ns[2].Active.Store(2) // 2/2
	for range 5 {
		if n := b.Pick(netip.Addr{}); n != ns[1] {
			t.Fatalf("picked %s, want %s (3 active / weight 4 is the least ratio)", n.Addr(), ns[1].Addr())
		}
	}
	ns[1].SetEligible(false)
	// Now 1/1 and 2/2 tie: round-robin between them.
	seq := picks(t, b, 6)
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Fatalf("ties 1/1 and 2/2 not taken in turn: %v", addrs(seq))
		}
	}
	if c := countOf(seq); c[ns[0]] != 3 || c[ns[2]] != 3 {
		t.Fatalf("ties 1/1 and 2/2: %d and %d of 6 picks, want 3 and 3", c[ns[0]], c[ns[2]])
	}
}

// With equal counts and weights, least_conn is plain rotation in member
// order (the old behaviour).
func TestLeastConnTiesRotate(t *testing.T) {
	ns := newNodes(4)
	b := newBalancer(t, "least_conn", equal(ns))
	seq := picks(t, b, 12)
	for i, n := range seq {
		if n != ns[i%4] {
			t.Fatalf("pick %d: %v, want rotation in member order", i, addrs(seq))
		}
	}
}
