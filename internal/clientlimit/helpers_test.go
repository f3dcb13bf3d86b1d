package clientlimit

import (
	"net/netip"
	"testing"
)

// ipN is a distinct address for each n: IPv4 for even n, IPv6 for odd.
func ipN(n int) netip.Addr {
	if n%2 == 0 {
		return netip.AddrFrom4([4]byte{10, byte(n >> 17), byte(n >> 9), byte(n >> 1)})
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(n >> 24), 13: byte(n >> 16), 14: byte(n >> 8), 15: byte(n)})
}

func newT(t testing.TB, l Limits) *Limiter {
	t.Helper()
	lim, err := New(l)
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

// newSmall is a one-shard Limiter of the given capacity, so that tests
// know which entries compete for room.
func newSmall(t testing.TB, l Limits, capacity int) *Limiter {
	t.Helper()
	lim, err := newLimiter(l, capacity, 0)
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

func expect(t testing.TB, lim *Limiter, ip netip.Addr, now int64, want Verdict) {
	t.Helper()
	if v := lim.Acquire(ip, now); v != want {
		t.Fatalf("Acquire(%s, %d) = %v, want %v", ip, now, v, want)
	}
}

// checkShards verifies every shard's table: each entry found through the
// index at its own position, the index holding exactly the entries, and
// the list holding exactly the entries without connections, linked both
// ways.
func checkShards(t testing.TB, lim *Limiter) {
	t.Helper()
	for si := range lim.shards {
		s := &lim.shards[si]
		s.mu.Lock()
		indexed := 0
		for _, i := range s.index {
			if i != noEntry {
				indexed++
			}
		}
		if indexed != int(s.n) {
			t.Fatalf("shard %d: %d indexed, %d entries", si, indexed, s.n)
		}
		for i := range s.n {
			e := &s.entries[i]
			if got := s.find(e.key, s.seed.sum(e.key)); got != i {
				t.Fatalf("shard %d: entry %d found at %d", si, i, got)
			}
			if (e.conns == 0) != s.listed(i) {
				t.Fatalf("shard %d: entry %d has %d connections, listed %v", si, i, e.conns, s.listed(i))
			}
		}
		listed, prev := int32(0), int32(noEntry)
		for i := s.head; i != noEntry; i = s.entries[i].next {
			if s.entries[i].prev != prev || i >= s.n {
				t.Fatalf("shard %d: broken list at %d", si, i)
			}
			prev = i
			listed++
		}
		if s.tail != prev {
			t.Fatalf("shard %d: tail %d, list ends at %d", si, s.tail, prev)
		}
		for i := range s.n {
			if s.entries[i].conns == 0 {
				listed--
			}
		}
		if listed != 0 {
			t.Fatalf("shard %d: list and entries without connections differ by %d", si, listed)
		}
		s.mu.Unlock()
	}
}
