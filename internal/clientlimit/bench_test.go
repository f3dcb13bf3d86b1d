package clientlimit

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

var benchLimits = Limits{MaxConcurrent: 100, Rate: 1 << 30, Window: 10 * time.Second}

// BenchmarkAcquireRelease: one connection of an IP already tracked, opened
// and closed, with both limits on; and an attempt refused by the rate.
func BenchmarkAcquireRelease(b *testing.B) {
	lim := newT(b, benchLimits)
	ip := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		if lim.Acquire(ip, i) != OK {
			b.Fatal("refused")
		}
		lim.Release(ip)
	}
}

func BenchmarkAcquireRefused(b *testing.B) {
	lim := newT(b, Limits{Rate: 1, Window: time.Hour})
	ip := netip.MustParseAddr("192.0.2.1")
	lim.Acquire(ip, 0)
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		if lim.Acquire(ip, i) != RateLimited {
			b.Fatal("admitted")
		}
	}
}

// BenchmarkManyIPs cycles through n tracked IPs (cache misses, full
// shards), and through ever new IPs that each take an old one's place.
func BenchmarkManyIPs(b *testing.B) {
	for _, n := range []int{1000, DefaultCapacity} {
		b.Run(fmt.Sprintf("tracked=%d", n), func(b *testing.B) {
			lim := newT(b, benchLimits)
			ips := make([]netip.Addr, n)
			for i := range ips {
				ips[i] = ipN(i)
				lim.Acquire(ips[i], 0)
				lim.Release(ips[i])
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				ip := ips[i%n]
				lim.Acquire(ip, int64(i))
				lim.Release(ip)
			}
		})
	}
	b.Run("new", func(b *testing.B) {
		lim := newT(b, benchLimits)
		for i := range 2 * DefaultCapacity { // fill every shard first
			lim.Acquire(ipN(i), 0)
			lim.Release(ipN(i))
		}
		b.ReportAllocs()
		for i := 2 * DefaultCapacity; b.Loop(); i++ {
			lim.Acquire(ipN(i), int64(i))
			lim.Release(ipN(i))
		}
	})
}

// BenchmarkParallel runs Acquire+Release from every P on distinct IPs,
// with 64 shards and with one (a single lock, for comparison); and all on
// one IP, where one shard's lock is the point of contention by design.
func BenchmarkParallel(b *testing.B) {
	for _, c := range []struct {
		name      string
		shardBits uint
		sameIP    bool
	}{{"shards=64", shardBits, false}, {"shards=1", 0, false}, {"shards=64/sameIP", shardBits, true}} {
		b.Run(c.name, func(b *testing.B) {
			lim, err := newLimiter(benchLimits, DefaultCapacity, c.shardBits)
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				base := int(next.Add(1)) * 1000
				for i := 0; pb.Next(); i++ {
					ip := ipN(base + i%1000)
					if c.sameIP {
						ip = ipN(0)
					}
					if lim.Acquire(ip, int64(i)) == OK {
						lim.Release(ip)
					}
				}
			})
		})
	}
}
