package balance

import (
	"math"
	"net/netip"
	"slices"
	"testing"
)

// assign maps each IP to the node b picks for it.
func assign(t *testing.T, b *Balancer, ips []netip.Addr) []*Node {
	t.Helper()
	out := make([]*Node, len(ips))
	for i, ip := range ips {
		if out[i] = b.Pick(ip); out[i] == nil {
			t.Fatalf("nil pick for %v", ip)
		}
	}
	return out
}

func TestIPHashStable(t *testing.T) {
	ns := newNodes(8)
	b := newBalancer(t, "ip_hash", weighted(ns, 1, 2, 3, 4, 1, 2, 3, 4))
	ips := randomIPs(2000)
	first := assign(t, b, ips)
	for range 3 {
		if again := assign(t, b, ips); !slices.Equal(first, again) {
			t.Fatal("the same IPs got other nodes while the set was stable")
		}
	}
}

// Shares follow weights, for random clients and for clients packed in
// one subnet (only the low bits differ) or spread one per IPv6 /64 (only
// the high half differs). With 100,000 IPs the standard deviation of a
// share is at most 0.16 percentage points; the tolerance is 1 point
// (more than 6 deviations), so a wrong weighting (an error of a few points)
// fails and chance does not.
func TestIPHashSharesFollowWeights(t *testing.T) {
	for _, weights := range [][]int{
		{1, 1, 1, 1, 1, 1, 1, 1},
		{1, 2, 3, 4},
		{1, 9},
		{256, 1, 1, 50},
	} {
		ns := newNodes(len(weights))
		b := newBalancer(t, "ip_hash", weighted(ns, weights...))
		sum := 0
		for _, w := range weights {
			sum += w
		}
		for name, ips := range map[string][]netip.Addr{
			"random IPv4":          randomIPs(100_000),
			"consecutive IPv4":     consecutiveIPs(netip.MustParseAddr("10.20.0.0"), 100_000),
			"consecutive IPv6 /64": consecutiveIPs(netip.MustParseAddr("2001:db8:1:2::"), 100_000),
			"one IPv6 per /64":     sparseIPv6(100_000),
		} {
			c := countOf(assign(t, b, ips))
			for i, n := range ns {
				got := float64(c[n]) / float64(len(ips))
				want := float64(weights[i]) / float64(sum)
				if math.Abs(got-want) > 0.01 {
					t.Errorf("weights %v, %s: node %d has %.4f of the IPs, want %.4f ± 0.01", weights, name, i, got, want)
				}
			}
		}
	}
}

// A node leaving moves its own clients and no other; they all come back
// when it returns.
func TestIPHashMinimalDisruption(t *testing.T) {
	for _, weights := range [][]int{
		{1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{3, 1, 4, 1, 5, 9, 2, 6, 5, 3},
	} {
		ns := newNodes(len(weights))
		b := newBalancer(t, "ip_hash", weighted(ns, weights...))
		ips := randomIPs(100_000)
		before := assign(t, b, ips)
		gone := ns[3]
		gone.SetEligible(false)
		during := assign(t, b, ips)
		gone.SetEligible(true)
		after := assign(t, b, ips)

		moved := 0
		for i := range ips {
			switch {
			case before[i] == gone && during[i] == gone:
				t.Fatalf("weights %v: %v stayed on the ineligible node", weights, ips[i])
			case before[i] != gone && during[i] != before[i]:
				t.Fatalf("weights %v: %v moved from %s to %s though its node stayed", weights, ips[i], before[i].Addr(), during[i].Addr())
			case before[i] == gone:
				moved++
			}
		}
		sum := 0
		for _, w := range weights {
			sum += w
		}
		share := float64(moved) / float64(len(ips))
		if want := float64(weights[3]) / float64(sum); math.Abs(share-want) > 0.01 {
			t.Errorf("weights %v: %.4f of the IPs moved, want about the node's share %.4f", weights, share, want)
		}
		if !slices.Equal(before, after) {
			t.Errorf("weights %v: after the node returned the assignment differs from before", weights)
		}
	}
}

// Every instance and every reload agree: the choice depends on the
// address strings, not on member order or on the Node values.
func TestIPHashAgreesAcrossInstances(t *testing.T) {
	ns := newNodes(6)
	weights := []int{1, 2, 3, 1, 2, 3}
	b1 := newBalancer(t, "ip_hash", weighted(ns, weights...))

	other := make([]Member, len(ns)) // reversed order, fresh nodes
	for i := range ns {
		j := len(ns) - 1 - i
		other[i] = Member{Node: NewNode(ns[j].Addr()), Weight: weights[j]}
	}
	b2 := newBalancer(t, "ip_hash", other)
	for _, ip := range randomIPs(5000) {
		if a1, a2 := b1.Pick(ip).Addr(), b2.Pick(ip).Addr(); a1 != a2 {
			t.Fatalf("%v: %s in one instance, %s in the other", ip, a1, a2)
		}
	}
}

func TestIPHashMappedIPv4(t *testing.T) {
	ns := newNodes(16)
	b := newBalancer(t, "ip_hash", equal(ns))
	for _, ip := range randomIPs(2000) {
		mapped := netip.AddrFrom16(ip.As16())
		if !mapped.Is4In6() {
			t.Fatalf("%v is not IPv4-mapped", mapped)
		}
		if b.Pick(ip) != b.Pick(mapped) {
			t.Fatalf("%v and %v picked different nodes", ip, mapped)
		}
	}
}

// A fixed table for a fixed set: a change of the hash, the mixing or the
// scoring (which would move clients between versions of the proxy running
// side by side) fails here.
func TestIPHashDeterministic(t *testing.T) {
	var ms []Member
	for i, a := range []string{"db1.internal:5432", "10.0.0.2:5432", "[2001:db8::3]:5432", "db4.internal:6432"} {
		ms = append(ms, Member{Node: NewNode(a), Weight: i + 1})
	}
	b := newBalancer(t, "ip_hash", ms)
	for _, tc := range []struct{ ip, addr string }{
		{"192.0.2.1", "db4.internal:6432"},
		{"192.0.2.2", "db4.internal:6432"},
		{"198.51.100.7", "db4.internal:6432"},
		{"203.0.113.250", "[2001:db8::3]:5432"},
		{"10.1.2.3", "10.0.0.2:5432"},
		{"127.0.0.1", "[2001:db8::3]:5432"},
		{"8.8.8.8", "[2001:db8::3]:5432"},
		{"2001:db8::1", "db4.internal:6432"},
		{"2001:db8:ffff::42", "db1.internal:5432"},
		{"fe80::1", "[2001:db8::3]:5432"},
		{"::1", "[2001:db8::3]:5432"},
		{"100.64.0.9", "[2001:db8::3]:5432"},
	} {
		if got := b.Pick(netip.MustParseAddr(tc.ip)).Addr(); got != tc.addr {
			t.Errorf("%s picked %s, want %s", tc.ip, got, tc.addr)
		}
	}
}

// The shortcuts (comparing u between equal weights, the lower bound
// between others) never change the winner: compare with the plain
// rendezvous that scores every node, for distinct, few and equal weights.
func TestIPHashShortcutsMatchFullScoring(t *testing.T) {
	for name, weightOf := range map[string]func(i int) int{
		"distinct": func(i int) int { return 1 + (i*37)%MaxWeight },
		"1 to 3":   func(i int) int { return 1 + i%3 },
		"equal":    func(int) int { return 5 },
	} {
		ns := newNodes(64)
		weights := make([]int, len(ns))
		for i := range weights {
			weights[i] = weightOf(i)
		}
		b := newBalancer(t, "ip_hash", weighted(ns, weights...))
		for _, ip := range randomIPs(30_000) {
			h := hashIP(ip)
			var want *Node
			best := math.Inf(1)
			for i, n := range ns {
				if s := -math.Log(unit(mix(n.seed^h))) / float64(weights[i]); s < best {
					want, best = n, s
				}
			}
			if got := b.Pick(ip); got != want {
				t.Fatalf("%s weights, %v: picked %s, full scoring gives %s", name, ip, got.Addr(), want.Addr())
			}
		}
	}
}

// The zero Addr (no client address known) is a valid input: it gets a
// node, always the same one.
func TestIPHashZeroAddr(t *testing.T) {
	ns := newNodes(5)
	b := newBalancer(t, "ip_hash", equal(ns))
	first := b.Pick(netip.Addr{})
	if first == nil {
		t.Fatal("nil pick for the zero Addr")
	}
	for range 10 {
		if n := b.Pick(netip.Addr{}); n != first {
			t.Fatalf("the zero Addr picked %s, then %s", first.Addr(), nameOf(n))
		}
	}
}

// consecutiveIPs returns n addresses counting up from first.
func consecutiveIPs(first netip.Addr, n int) []netip.Addr {
	ips := make([]netip.Addr, n)
	for i, a := 0, first; i < n; i, a = i+1, a.Next() {
		ips[i] = a
	}
	return ips
}

// sparseIPv6 returns n addresses, host part ::1, in consecutive /64s from
// 2001:db8::/64 on.
func sparseIPv6(n int) []netip.Addr {
	ips := make([]netip.Addr, n)
	for i := range ips {
		b := netip.MustParseAddr("2001:db8::1").As16()
		b[6], b[7] = byte(i>>8), byte(i)
		b[5] = byte(i >> 16)
		ips[i] = netip.AddrFrom16(b)
	}
	return ips
}
