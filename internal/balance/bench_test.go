package balance

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
)

// benchMembers returns n members with weights 1..4, the last quarter
// backups (idle while primaries serve, as in a real config).
func benchMembers(n int) ([]*Node, []Member) {
	ns := newNodes(n)
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Node: ns[i], Weight: 1 + i%4, Backup: n > 2 && i >= n*3/4}
	}
	return ns, ms
}

func BenchmarkPick(b *testing.B) {
	ips := randomIPs(1024)
	run := func(name, policy string, ms []Member) {
		b.Run(name, func(b *testing.B) {
			bal := newBalancer(b, policy, ms)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bal.Pick(ips[i&1023])
				i++
			}
		})
	}
	for _, policy := range Policies() {
		for _, n := range []int{2, 16, 256} {
			_, ms := benchMembers(n)
			run(fmt.Sprintf("%s/%d", policy, n), policy, ms)
		}
		// Equal weights (the default config): round_robin has no
		// schedule, ip_hash takes no logarithm.
		for _, n := range []int{2, 16, 256} {
			run(fmt.Sprintf("%s_equal/%d", policy, n), policy, equal(newNodes(n)))
		}
	}
}

// BenchmarkPickParallel shows the shared cursor under contention.
func BenchmarkPickParallel(b *testing.B) {
	for _, policy := range Policies() {
		b.Run(policy+"/16", func(b *testing.B) {
			_, ms := benchMembers(16)
			bal := newBalancer(b, policy, ms)
			ip := netip.MustParseAddr("192.0.2.1")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bal.Pick(ip)
				}
			})
		})
	}
}

// BenchmarkRebuild is one eligibility change of a primary at 256 targets
// and the Pick that rebuilds the view. "worst" is round_robin over 256
// distinct weights 1..256: a 32,896-entry schedule.
func BenchmarkRebuild(b *testing.B) {
	run := func(name, policy string, ns []*Node, ms []Member) {
		b.Run(name, func(b *testing.B) {
			bal := newBalancer(b, policy, ms)
			ip := netip.MustParseAddr("192.0.2.1")
			up := false
			b.ReportAllocs()
			for b.Loop() {
				ns[0].SetEligible(up)
				up = !up
				bal.Pick(ip)
			}
			ns[0].SetEligible(true)
		})
	}
	for _, policy := range Policies() {
		ns, ms := benchMembers(256)
		run(policy+"/256", policy, ns, ms)
	}
	ns := newNodes(256)
	run("round_robin_equal/256", "round_robin", ns, equal(ns))
	ws := make([]int, 256)
	for i := range ws {
		ws[i] = i + 1
	}
	ns = newNodes(256)
	run("round_robin_worst/256", "round_robin", ns, weighted(ns, ws...))
	// A change elsewhere: the tier is unchanged, only the epoch moves.
	ns, ms := benchMembers(256)
	other := NewNode("192.0.2.99:1")
	b.Run("unrelated_change/256", func(b *testing.B) {
		bal := newBalancer(b, "round_robin", ms)
		up := false
		b.ReportAllocs()
		for b.Loop() {
			other.SetEligible(up)
			up = !up
			bal.Pick(netip.Addr{})
		}
	})
	_ = ns
}

// BenchmarkBaseline is today's root policy (policy.go) in spirit, for a
// side-by-side figure: count the eligible targets, then walk to the
// cursor's one. O(targets) per pick, no weights.
func BenchmarkBaseline(b *testing.B) {
	for _, n := range []int{2, 16, 256} {
		b.Run(fmt.Sprintf("rotation_scan/%d", n), func(b *testing.B) {
			ns := newNodes(n)
			var cursor atomic.Uint64
			b.ReportAllocs()
			for b.Loop() {
				k := 0
				for _, t := range ns {
					if t.Eligible() {
						k++
					}
				}
				want := int((cursor.Add(1) - 1) % uint64(k))
				for _, t := range ns {
					if t.Eligible() {
						if want == 0 {
							break
						}
						want--
					}
				}
			}
		})
	}
}
