package clientlimit

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const sec = int64(time.Second)

func TestConcurrencyLimit(t *testing.T) {
	lim := newT(t, Limits{MaxConcurrent: 2})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	expect(t, lim, a, 0, OK)
	expect(t, lim, a, 0, OK)
	expect(t, lim, a, 0, ClientLimit)
	expect(t, lim, b, 0, OK) // another client is not affected
	expect(t, lim, b, 0, OK)
	expect(t, lim, b, 0, ClientLimit)
	lim.Release(a)
	if n := lim.Active(a); n != 1 {
		t.Fatalf("Active after one Release = %d, want 1", n)
	}
	expect(t, lim, a, 0, OK) // the slot is free again
	expect(t, lim, a, 0, ClientLimit)
	for range 2 {
		lim.Release(a)
		lim.Release(b)
	}
	lim.Release(a) // one too many: ignored
	if lim.Active(a) != 0 || lim.Active(b) != 0 || lim.Tracked() != 0 {
		t.Fatalf("after releasing all: Active %d, %d, Tracked %d; want 0", lim.Active(a), lim.Active(b), lim.Tracked())
	}
	checkShards(t, lim)
}

func TestMappedIPv6IsIPv4(t *testing.T) {
	lim := newT(t, Limits{MaxConcurrent: 1})
	v4, mapped := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.1")
	expect(t, lim, mapped, 0, OK)
	expect(t, lim, v4, 0, ClientLimit)
	lim.Release(v4)
	if lim.Active(mapped) != 0 {
		t.Fatal("releasing the IPv4 form did not release the mapped form")
	}
}

func TestRateWindow(t *testing.T) {
	const w = 10 * sec
	lim := newT(t, Limits{Rate: 3, Window: time.Duration(w)})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := 100 * sec
	for range 3 {
		expect(t, lim, a, t0, OK)
		lim.Release(a) // rate counts new connections, open or not
	}
	expect(t, lim, a, t0, RateLimited)
	expect(t, lim, b, t0, OK) // per client
	for now := t0; now < t0+w; now += sec / 4 {
		expect(t, lim, a, now, RateLimited) // refused attempts do not count...
	}
	expect(t, lim, a, t0+w-1, RateLimited)
	// ...so once the window (plus at most one slot) has passed, a is served.
	expect(t, lim, a, t0+slots*lim.params.Load().width, OK)
}

// TestRateNeverExceeded drives random arrival patterns through a Limiter
// and checks each verdict against an exact log of admissions: never more
// than Rate admitted in any closed window of length Window, and no refusal
// unless Rate admissions lie within Window plus one slot.
func TestRateNeverExceeded(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ip := netip.MustParseAddr("198.51.100.7")
	for round := range 200 {
		rate := 1 + r.IntN(20)
		window := int64(1 + r.IntN(int(5*sec)))
		lim := newT(t, Limits{Rate: rate, Window: time.Duration(window)})
		width := lim.params.Load().width
		var admitted []int64
		now := r.Int64N(1000 * sec)
		for range 2000 {
			switch r.IntN(4) { // bursts, slot edges, quiet spells
			case 0: // same instant
			case 1:
				now = (now/width + 1) * width // the start of the next slot
				now -= r.Int64N(2)            // or its last nanosecond
			case 2:
				now += r.Int64N(window/int64(rate) + 1)
			default:
				now += r.Int64N(2 * window)
			}
			v := lim.Acquire(ip, now)
			if v == OK {
				lim.Release(ip)
				admitted = append(admitted, now)
			}
			inWindow := countSince(admitted, now-window)
			if inWindow > rate {
				t.Fatalf("round %d (rate %d, window %d): %d admitted in [%d, %d]", round, rate, window, inWindow, now-window, now)
			}
			if v == RateLimited && countSince(admitted, now-slots*width+1) < rate {
				t.Fatalf("round %d (rate %d, window %d): refused at %d with only %d admitted since %d",
					round, rate, window, now, countSince(admitted, now-slots*width+1), now-slots*width+1)
			}
			if v == ClientLimit {
				t.Fatal("ClientLimit without MaxConcurrent")
			}
		}
	}
}

// countSince counts the times in the ascending list ts that are >= from.
func countSince(ts []int64, from int64) int {
	n := 0
	for i := len(ts) - 1; i >= 0 && ts[i] >= from; i-- {
		n++
	}
	return n
}

func TestUpdateLiveLimiter(t *testing.T) {
	lim := newT(t, Limits{MaxConcurrent: 1, Rate: 2, Window: 10 * time.Second})
	a := netip.MustParseAddr("192.0.2.1")
	expect(t, lim, a, 0, OK)
	expect(t, lim, a, 0, ClientLimit)
	if err := lim.Update(Limits{MaxConcurrent: 3, Rate: 2, Window: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	expect(t, lim, a, 0, OK)          // concurrency raised: the first connection still counts
	expect(t, lim, a, 0, RateLimited) // rate history kept: 2 admitted
	if err := lim.Update(Limits{MaxConcurrent: 3, Rate: 3, Window: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	expect(t, lim, a, 0, OK) // a third one now fits the same history
	expect(t, lim, a, 0, ClientLimit)
	if err := lim.Update(Limits{MaxConcurrent: 4, Rate: 3, Window: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	expect(t, lim, a, 0, OK) // a new window restarts the history
	expect(t, lim, a, 0, ClientLimit)

	bad := Limits{MaxConcurrent: -1}
	if err := lim.Update(bad); err == nil {
		t.Fatal("Update accepted invalid limits")
	}
	if got := lim.Limits(); got != (Limits{MaxConcurrent: 4, Rate: 3, Window: 20 * time.Second}) {
		t.Fatalf("after a rejected Update, Limits() = %+v", got)
	}

	// Limits off: connections are still counted, so Releases match and a
	// limit set again later sees them.
	if err := lim.Update(Limits{}); err != nil {
		t.Fatal(err)
	}
	expect(t, lim, a, 0, OK)
	if n := lim.Active(a); n != 5 {
		t.Fatalf("Active = %d, want 5", n)
	}
	if err := lim.Update(Limits{MaxConcurrent: 5}); err != nil {
		t.Fatal(err)
	}
	expect(t, lim, a, 0, ClientLimit)
	for range 5 {
		lim.Release(a)
	}
	if lim.Active(a) != 0 || lim.Tracked() != 0 {
		t.Fatalf("after releasing all: Active %d, Tracked %d", lim.Active(a), lim.Tracked())
	}
	checkShards(t, lim)
}

// TestConcurrentExact hammers a few IPs from many goroutines (run it with
// -race): the concurrency limit holds at every instant, the rate limit
// admits exactly Rate per IP at one instant, and every count returns to 0.
func TestConcurrentExact(t *testing.T) {
	const maxConns, rate, goroutines, rounds = 3, 500, 8, 1000
	lim := newT(t, Limits{MaxConcurrent: maxConns, Rate: rate, Window: time.Hour})
	ips := []netip.Addr{ipN(0), ipN(1), ipN(2), ipN(3)}
	var open, admitted [4]atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 0))
			for range rounds {
				k := r.IntN(len(ips))
				if lim.Acquire(ips[k], sec) != OK {
					continue
				}
				admitted[k].Add(1)
				if n := open[k].Add(1); n > maxConns {
					t.Errorf("%s: %d connections open, limit %d", ips[k], n, maxConns)
				}
				runtime.Gosched()
				open[k].Add(-1)
				lim.Release(ips[k])
			}
		})
	}
	wg.Wait()
	for k, ip := range ips {
		if n := admitted[k].Load(); n != rate {
			t.Errorf("%s: %d admitted at one instant, want exactly %d", ip, n, rate)
		}
		if n := lim.Active(ip); n != 0 {
			t.Errorf("%s: Active %d after all released", ip, n)
		}
	}
	if n := lim.Tracked(); n != len(ips) { // kept for their rate history
		t.Errorf("Tracked = %d, want %d", n, len(ips))
	}
	checkShards(t, lim)
}

func TestNoAllocations(t *testing.T) {
	lim := newT(t, Limits{MaxConcurrent: 1, Rate: 1 << 30, Window: time.Second})
	a := netip.MustParseAddr("2001:db8::1")
	now := int64(0)
	lim.Acquire(a, now)
	lim.Release(a)
	if n := testing.AllocsPerRun(1000, func() {
		now += 1000
		lim.Acquire(a, now)
		lim.Acquire(a, now) // refused
		lim.Release(a)
	}); n != 0 {
		t.Fatalf("%v allocations per Acquire/Release of a tracked IP", n)
	}
}

func TestNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	lim := newT(t, Limits{MaxConcurrent: 1, Rate: 1, Window: time.Second})
	for i := range 1000 {
		lim.Acquire(ipN(i), int64(i))
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Fatalf("%d goroutines before, %d after using a Limiter", before, after)
	}
}

// The seeded hash spreads a contiguous block of addresses evenly.
func TestShardSpread(t *testing.T) {
	lim := newT(t, Limits{MaxConcurrent: 1})
	var load [1 << shardBits]int
	for i := range 1 << 16 {
		_, h := lim.shard(keyOf(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})))
		load[h>>lim.shift]++
	}
	mean := (1 << 16) >> shardBits
	for s, n := range load {
		if n < mean*3/4 || n > mean*5/4 {
			t.Errorf("shard %d holds %d of a /16, mean %d", s, n, mean)
		}
	}
}
