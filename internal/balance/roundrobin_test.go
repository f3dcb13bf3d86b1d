package balance

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
)

// nginx's documented example: weights 5, 1, 1 give a a b a c a a.
func TestRoundRobinNginxSequence(t *testing.T) {
	ns := newNodes(3)
	b := newBalancer(t, "round_robin", weighted(ns, 5, 1, 1))
	a, bb, c := ns[0].Addr(), ns[1].Addr(), ns[2].Addr()
	want := []string{a, a, bb, a, c, a, a}
	if got := addrs(picks(t, b, 7)); !slices.Equal(got, want) {
		t.Fatalf("sequence %v, want nginx's %v", got, want)
	}
}

func TestRoundRobinWeightedWindows(t *testing.T) {
	for _, weights := range [][]int{
		{5, 1, 1},
		{3, 2},
		{1, 2, 3, 4},
		{4, 6, 10},   // gcd 2
		{256, 1},     // extreme ratio
		{7, 7, 7, 1}, // equal majority
		{1, 256, 13, 97, 2, 64, 5, 200},
	} {
		ns := newNodes(len(weights))
		b := newBalancer(t, "round_robin", weighted(ns, weights...))
		sum := 0
		for _, w := range weights {
			sum += w
		}
		const rounds = 3
		seq := picks(t, b, rounds*sum)
		for i, n := range ns {
			if got := countOf(seq)[n]; got != rounds*weights[i] {
				t.Errorf("weights %v: node %d got %d of %d picks, want exactly %d", weights, i, got, len(seq), rounds*weights[i])
			}
		}
		// Every window of Σweight consecutive picks, not only aligned ones.
		for start := 0; start+sum <= len(seq); start++ {
			c := countOf(seq[start : start+sum])
			for i, n := range ns {
				if c[n] != weights[i] {
					t.Fatalf("weights %v: window at %d gives node %d %d picks, want %d", weights, start, i, c[n], weights[i])
				}
			}
		}
	}
}

// The schedule interleaves rather than sending each node its whole weight
// in a row: with weights 4 and 1 every window of 5 picks (checked above)
// holds the light node, and with weights 3 and 3 the two alternate.
func TestRoundRobinSmooth(t *testing.T) {
	ns := newNodes(2)
	b := newBalancer(t, "round_robin", weighted(ns, 3, 3))
	seq := picks(t, b, 20)
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Fatalf("equal weights: %s twice in a row at %d: %v", seq[i].Addr(), i, addrs(seq))
		}
	}
	// 4,2 reduces to 2,1: a b a, never a a a.
	b = newBalancer(t, "round_robin", weighted(ns, 4, 2))
	seq = picks(t, b, 30)
	for i := 2; i < len(seq); i++ {
		if seq[i] == seq[i-1] && seq[i] == seq[i-2] {
			t.Fatalf("weights 4,2: three in a row at %d: %v", i, addrs(seq))
		}
	}
}

func TestRoundRobinEqualWeightsIsRotation(t *testing.T) {
	for _, w := range []int{1, 3, 256} {
		ns := newNodes(5)
		b := newBalancer(t, "round_robin", weighted(ns, w, w, w, w, w))
		seq := picks(t, b, 23)
		for i, n := range seq {
			if n != ns[i%5] {
				t.Fatalf("weight %d: pick %d is %s, want %s (member order): %v", w, i, n.Addr(), ns[i%5].Addr(), addrs(seq))
			}
		}
	}
}

// With k eligible targets, N picks give each ⌊N/k⌋ or ⌈N/k⌉ whichever are
// down, and none to the ineligible ones.
func TestRoundRobinSomeIneligible(t *testing.T) {
	ns := newNodes(7)
	b := newBalancer(t, "round_robin", equal(ns))
	ns[1].SetEligible(false)
	ns[4].SetEligible(false)
	ns[6].SetEligible(false)
	const N, k = 1001, 4
	c := countOf(picks(t, b, N))
	for i, n := range ns {
		want := []int{N / k, (N + k - 1) / k}
		if !n.Eligible() {
			want = []int{0}
		}
		if !slices.Contains(want, c[n]) {
			t.Errorf("node %d (eligible %v): %d of %d picks, want one of %v", i, n.Eligible(), c[n], N, want)
		}
	}

	// Weighted, with one down: the others keep exact windows.
	ns2 := newNodes(4)
	b = newBalancer(t, "round_robin", weighted(ns2, 1, 2, 3, 4))
	ns2[2].SetEligible(false)
	seq := picks(t, b, 2*7)
	for start := 0; start+7 <= len(seq); start++ {
		cw := countOf(seq[start : start+7])
		if cw[ns2[0]] != 1 || cw[ns2[1]] != 2 || cw[ns2[3]] != 4 || cw[ns2[2]] != 0 {
			t.Fatalf("weights 1,2,(3 down),4: window at %d gives %d/%d/%d/%d", start, cw[ns2[0]], cw[ns2[1]], cw[ns2[2]], cw[ns2[3]])
		}
	}
}

// All ports of an app share the cursor, and a reload (a new Balancer over
// new member values with the same cursor) goes on with the rotation.
func TestRoundRobinSharedCursor(t *testing.T) {
	var cursor atomic.Uint64
	ns := newNodes(3)
	port1, _ := New("round_robin", &cursor)
	port2, _ := New("round_robin", &cursor)
	port1.SetMembers(equal(ns))
	port2.SetMembers(equal(ns))
	var seq []*Node
	for i := range 9 {
		p := port1
		if i%3 == 2 {
			p = port2
		}
		seq = append(seq, p.Pick(netip.Addr{}))
	}
	reloaded, _ := New("round_robin", &cursor)
	reloaded.SetMembers(equal(ns))
	seq = append(seq, reloaded.Pick(netip.Addr{}), reloaded.Pick(netip.Addr{}))
	for i, n := range seq {
		if n != ns[i%3] {
			t.Fatalf("pick %d across ports and a reload: %v, want rotation in member order", i, addrs(seq))
		}
	}
}

func TestScheduleLength(t *testing.T) {
	es := func(ws ...int64) []entry {
		out := make([]entry, len(ws))
		for i, w := range ws {
			out[i] = entry{weight: w}
		}
		return out
	}
	if s := schedule(es(4, 4, 4)); s != nil {
		t.Errorf("equal weights: schedule %v, want nil (plain rotation)", s)
	}
	if s := schedule(es(4, 6, 10)); len(s) != 10 {
		t.Errorf("weights 4,6,10: schedule of %d entries, want Σweight/gcd = 10", len(s))
	}
}

// nginxSWRR is nginx's loop, one node at a time, as the reference for the
// grouped schedule.
func nginxSWRR(weights []int64, steps int) []uint32 {
	cur := make([]int64, len(weights))
	var total int64
	for _, w := range weights {
		total += w
	}
	out := make([]uint32, steps)
	for s := range out {
		best := 0
		for i, w := range weights {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out[s] = uint32(best)
	}
	return out
}

func TestScheduleIsNginx(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		k := 1 + r.IntN(40)
		distinct := 1 + r.IntN(6) // few distinct weights: groups of several
		choices := make([]int64, distinct)
		for i := range choices {
			choices[i] = 1 + r.Int64N(MaxWeight)
		}
		es := make([]entry, k)
		ws := make([]int64, k)
		for i := range es {
			ws[i] = choices[r.IntN(distinct)]
			es[i] = entry{weight: ws[i]}
		}
		var g, total int64
		for _, w := range ws {
			g = gcd(g, w)
		}
		for i := range ws {
			ws[i] /= g
			total += ws[i]
		}
		got := schedule(es)
		if got == nil { // equal weights: rotation
			for i := range ws {
				got = append(got, uint32(i))
			}
		}
		want := nginxSWRR(ws, int(total))
		if len(got) != len(want) {
			t.Fatalf("trial %d, reduced weights %v: schedule of %d entries, want %d", trial, ws, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("trial %d, reduced weights %v: step %d takes node %d, nginx takes %d", trial, ws, i, got[i], want[i])
			}
		}
	}
}
