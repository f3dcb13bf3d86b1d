package clientlimit

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// The memory figures in the package doc assume this size.
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n != 72 {
		t.Fatalf("entry is %d bytes; update the package doc's 80 bytes an entry", n)
	}
	if n := unsafe.Sizeof(shard{}); n%128 != 0 {
		t.Fatalf("shard is %d bytes, not a multiple of 128", n)
	}
}

func TestFullShardDropsLeastRecentlyUsed(t *testing.T) {
	lim := newSmall(t, Limits{Rate: 1, Window: 10 * time.Second}, 4)
	ips := []netip.Addr{ipN(0), ipN(1), ipN(2), ipN(3), ipN(4), ipN(5)}
	for _, ip := range ips[:4] {
		expect(t, lim, ip, 0, OK)
		lim.Release(ip)
	}
	expect(t, lim, ips[0], sec, RateLimited) // ips[0] is active again: ips[1] is now the oldest
	expect(t, lim, ips[4], sec, OK)          // takes ips[1]'s place
	lim.Release(ips[4])
	if lim.Tracked() != 4 || lim.Evictions() != 1 {
		t.Fatalf("Tracked %d, Evictions %d; want 4, 1", lim.Tracked(), lim.Evictions())
	}
	expect(t, lim, ips[0], sec, RateLimited) // kept its history
	expect(t, lim, ips[1], sec, OK)          // forgotten: served afresh, taking ips[2]'s place
	lim.Release(ips[1])
	expect(t, lim, ips[3], sec, RateLimited)

	// Once histories have run out, a new IP takes an expired place, which
	// is no eviction.
	expect(t, lim, ips[5], 100*sec, OK)
	if lim.Evictions() != 2 {
		t.Fatalf("Evictions %d, want 2", lim.Evictions())
	}
	checkShards(t, lim)
}

// Entries with open connections are never dropped: a shard full of them
// grows, and gives the room back as they end.
func TestOpenConnectionsNeverDropped(t *testing.T) {
	const capacity, clients = 16, 1000
	lim := newSmall(t, Limits{MaxConcurrent: 1, Rate: 5, Window: time.Second}, capacity)
	for i := range clients {
		expect(t, lim, ipN(i), 0, OK)
	}
	if lim.Tracked() != clients || lim.Evictions() != 0 {
		t.Fatalf("Tracked %d, Evictions %d; want %d, 0", lim.Tracked(), lim.Evictions(), clients)
	}
	for i := range clients {
		expect(t, lim, ipN(i), 0, ClientLimit) // every count kept
	}
	checkShards(t, lim)
	for i := range clients {
		lim.Release(ipN(i))
	}
	s := &lim.shards[0]
	if lim.Tracked() > capacity || len(s.entries) > 2*capacity {
		t.Fatalf("after all closed: Tracked %d, %d slots; want at most %d, %d", lim.Tracked(), len(s.entries), capacity, 2*capacity)
	}
	checkShards(t, lim)
}

// TestTableAgainstReference runs random Acquires and Releases of a few
// dozen IPs through a one-shard table too small for them, checking the
// connection counts against a plain map and the table's structure after
// every step.
func TestTableAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		limits := Limits{MaxConcurrent: 1 + r.IntN(3)}
		if round%2 == 0 {
			limits.Rate, limits.Window = 1+r.IntN(5), time.Duration(1+r.IntN(1000))
		}
		capacity := 1 + r.IntN(10)
		lim := newSmall(t, limits, capacity)
		open := map[netip.Addr]int{}
		now := int64(0)
		for range 3000 {
			now += r.Int64N(50)
			ip := ipN(r.IntN(40))
			if open[ip] > 0 && r.IntN(2) == 0 {
				lim.Release(ip)
				open[ip]--
			} else if v := lim.Acquire(ip, now); v == OK {
				open[ip]++
			} else if v == ClientLimit && open[ip] < limits.MaxConcurrent {
				t.Fatalf("round %d: %s refused with %d of %d open", round, ip, open[ip], limits.MaxConcurrent)
			}
			if got := lim.Active(ip); got != open[ip] {
				t.Fatalf("round %d: Active(%s) = %d, want %d", round, ip, got, open[ip])
			}
			holding := 0
			for _, n := range open {
				if n > 0 {
					holding++
				}
			}
			if n := lim.Tracked(); n > max(capacity, holding) {
				t.Fatalf("round %d: Tracked %d > max(capacity %d, %d IPs with connections)", round, n, capacity, holding)
			}
			checkShards(t, lim)
		}
	}
}

// TestMemoryBounded100kIPs: 100,000 distinct clients, each admitted and
// still inside its rate window, do not grow the heap past what
// DefaultCapacity entries take (80 bytes each, 5 MiB), and Tracked stays
// at the capacity.
func TestMemoryBounded100kIPs(t *testing.T) {
	const clients = 100_000
	const bound = 6 << 20 // 65,536 entries of 80 bytes and 1 MiB to spare
	lim := newT(t, Limits{MaxConcurrent: 10, Rate: 100, Window: time.Hour})
	flood := func(from int) int64 { // heap in use after from..from+clients
		for i := from; i < from+clients; i++ {
			if v := lim.Acquire(ipN(i), int64(i)); v != OK {
				t.Fatalf("client %d: %v", i, v)
			}
			lim.Release(ipN(i))
		}
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapInuse)
	}
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := int64(m.HeapInuse)
	first := flood(0)
	second := flood(clients) // 100,000 more, all new
	t.Logf("heap in use grew by %d bytes for %d clients, then by %d for %d more; Tracked %d, Evictions %d",
		first-before, clients, second-first, clients, lim.Tracked(), lim.Evictions())
	if first-before > bound {
		t.Errorf("heap in use grew by %d bytes, bound %d", first-before, bound)
	}
	if second-first > 256<<10 {
		t.Errorf("heap in use grew by %d bytes for 100,000 more clients, want no growth (256 KiB noise allowed)", second-first)
	}
	if lim.Tracked() > lim.Capacity() || lim.Capacity() != DefaultCapacity {
		t.Errorf("Tracked %d, Capacity %d; want Tracked <= Capacity = %d", lim.Tracked(), lim.Capacity(), DefaultCapacity)
	}
	if lim.Evictions() < 2*clients-DefaultCapacity {
		t.Errorf("Evictions %d, want at least %d", lim.Evictions(), 2*clients-DefaultCapacity)
	}
}
