package balance

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
)

// newNodes returns n fresh nodes with distinct addresses.
func newNodes(n int) []*Node {
	ns := make([]*Node, n)
	for i := range ns {
		ns[i] = NewNode(fmt.Sprintf("10.0.%d.%d:5432", i/256, i%256))
	}
	return ns
}

// weighted pairs nodes with weights as primary members.
func weighted(ns []*Node, weights ...int) []Member {
	ms := make([]Member, len(ns))
	for i, n := range ns {
		ms[i] = Member{Node: n, Weight: weights[i]}
	}
	return ms
}

// equal makes every node a primary member of weight 1.
func equal(ns []*Node) []Member {
	ms := make([]Member, len(ns))
	for i, n := range ns {
		ms[i] = Member{Node: n, Weight: 1}
	}
	return ms
}

// newBalancer returns a Balancer of policy over ms with its own cursor.
func newBalancer(t testing.TB, policy string, ms []Member) *Balancer {
	t.Helper()
	b, err := New(policy, new(atomic.Uint64))
	if err != nil {
		t.Fatal(err)
	}
	b.SetMembers(ms)
	return b
}

// picks returns n picks in order, failing on a nil one.
func picks(t testing.TB, b *Balancer, n int) []*Node {
	t.Helper()
	out := make([]*Node, n)
	for i := range out {
		if out[i] = b.Pick(netip.Addr{}); out[i] == nil {
			t.Fatalf("pick %d: nil with eligible members", i)
		}
	}
	return out
}

func countOf(seq []*Node) map[*Node]int {
	c := make(map[*Node]int)
	for _, n := range seq {
		c[n]++
	}
	return c
}

func addrs(seq []*Node) []string {
	out := make([]string, len(seq))
	for i, n := range seq {
		if n == nil {
			out[i] = "<nil>"
		} else {
			out[i] = n.Addr()
		}
	}
	return out
}

// randomIPs returns n random IPv4 addresses, the same in every run.
func randomIPs(n int) []netip.Addr {
	r := rand.New(rand.NewPCG(1, 2))
	ips := make([]netip.Addr, n)
	for i := range ips {
		z := r.Uint32()
		ips[i] = netip.AddrFrom4([4]byte{byte(z >> 24), byte(z >> 16), byte(z >> 8), byte(z)})
	}
	return ips
}

// forEachPolicy runs f as a subtest for every policy.
func forEachPolicy(t *testing.T, f func(t *testing.T, policy string)) {
	for _, p := range Policies() {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}
