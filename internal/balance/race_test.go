package balance

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many goroutines pick while others flip eligibility and replace the
// members. One node is always eligible (a primary in one member list, a
// backup in the other), so no pick may return nil, and every pick must be
// one of the members. Run with -race, this also checks the view's
// publication.
func TestConcurrentPickFlipReload(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, policy string) {
		ns := newNodes(5)
		keep, flip := ns[0], ns[1:]
		listA := []Member{
			{Node: flip[0], Weight: 3}, {Node: keep, Weight: 1}, {Node: flip[1], Weight: 2},
			{Node: flip[2], Weight: 1, Backup: true}, {Node: flip[3], Weight: 5, Backup: true},
		}
		listB := []Member{
			{Node: flip[0], Weight: 1}, {Node: flip[1], Weight: 7}, {Node: flip[2], Weight: 2},
			{Node: keep, Weight: 2, Backup: true}, {Node: flip[3], Weight: 1, Backup: true},
		}
		b := newBalancer(t, policy, listA)

		const pickers, perPicker = 6, 20_000
		deadline := time.Now().Add(10 * time.Second)
		var done atomic.Bool
		var bad atomic.Pointer[string]
		var wg, side sync.WaitGroup

		side.Add(2)
		go func() { // health and admin changes
			defer side.Done()
			r := rand.New(rand.NewPCG(1, 1))
			for i := 0; !done.Load(); i++ {
				if i%2 == 0 { // one node
					flip[r.IntN(len(flip))].SetEligible(r.IntN(2) == 0)
					continue
				}
				// All at once: the whole active tier leaves while
				// Picks may hold a view where it is all there is.
				up := r.IntN(2) == 0
				for _, n := range flip {
					n.SetEligible(up)
				}
			}
		}()
		go func() { // config reloads and DNS refreshes
			defer side.Done()
			for i := 0; !done.Load(); i++ {
				if i%2 == 0 {
					b.SetMembers(listB)
				} else {
					b.SetMembers(listA)
				}
				time.Sleep(50 * time.Microsecond) // pace, not a wait for a condition
			}
		}()
		for p := range pickers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ips := randomIPs(64)
				for i := range perPicker {
					if i%256 == 0 && time.Now().After(deadline) {
						return
					}
					n := b.Pick(ips[(i+p)%len(ips)])
					if n == nil {
						msg := "nil pick while a member was always eligible"
						bad.Store(&msg)
						return
					}
					if !slices.Contains(ns, n) {
						msg := "picked a node that is no member: " + n.Addr()
						bad.Store(&msg)
						return
					}
					n.Active.Add(1)
					n.Active.Add(-1)
				}
			}()
		}
		wg.Wait()
		done.Store(true)
		side.Wait()
		if msg := bad.Load(); msg != nil {
			t.Fatal(*msg)
		}
	})
}

// Once SetEligible(false) has returned, no later Pick returns that node,
// even from a Balancer whose view predates the change.
func TestIneligibleNeverPickedAfterward(t *testing.T) {
	for _, policy := range Policies() {
		ns := newNodes(3)
		b := newBalancer(t, policy, equal(ns))
		for i := range 30 {
			down := ns[i%3]
			down.SetEligible(false)
			for _, ip := range randomIPs(50) {
				if n := b.Pick(ip); n == down || n == nil {
					t.Fatalf("%s: picked %s right after %s went down", policy, nameOf(n), down.Addr())
				}
			}
			down.SetEligible(true)
		}
	}
}
