package acl

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// benchSet draws n random prefixes of one family, shaped like a blocklist
// (mostly long prefixes), and probes that hit them or miss.
func benchSet(b *testing.B, n, bitLen int) (*Set, []netip.Prefix, []netip.Addr) {
	r := rand.New(rand.NewPCG(uint64(n), uint64(bitLen)))
	randAddr := func() netip.Addr {
		a, _ := netip.AddrFromSlice(func() []byte {
			s := make([]byte, bitLen/8)
			for i := range s {
				s[i] = byte(r.Uint32())
			}
			return s
		}())
		return a
	}
	entries := make([]netip.Prefix, n)
	strs := make([]string, n)
	for i := range entries {
		entries[i] = netip.PrefixFrom(randAddr(), bitLen-r.IntN(bitLen/4)).Masked()
		strs[i] = entries[i].String()
	}
	s := mustParse(b, strs...)
	probes := make([]netip.Addr, 1024)
	for i := range probes {
		if i%2 == 0 {
			probes[i] = entries[r.IntN(n)].Addr() // a hit
		} else {
			probes[i] = randAddr() // almost surely a miss
		}
	}
	return s, entries, probes
}

// BenchmarkContains looks up against 10, 1,000 and 10,000 entries in one
// run: the cost grows with log(n), not n. BenchmarkLinear is the same
// lookup done entry by entry, for comparison.
func BenchmarkContains(b *testing.B) {
	for _, fam := range []struct {
		name   string
		bitLen int
	}{{"v4", 32}, {"v6", 128}} {
		for _, n := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/%d", fam.name, n), func(b *testing.B) {
				s, _, probes := benchSet(b, n, fam.bitLen)
				b.ReportAllocs()
				hits := 0
				for i := 0; b.Loop(); i++ {
					if s.Contains(probes[i&1023]) {
						hits++
					}
				}
				if hits == 0 {
					b.Fatal("no lookup hit")
				}
			})
		}
	}
}

func BenchmarkLinear(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("v4/%d", n), func(b *testing.B) {
			_, entries, probes := benchSet(b, n, 32)
			for i := 0; b.Loop(); i++ {
				refContains(entries, probes[i&1023])
			}
		})
	}
}

func BenchmarkParse10000(b *testing.B) {
	_, entries, _ := benchSet(b, 10000, 32)
	strs := make([]string, len(entries))
	for i, p := range entries {
		strs[i] = p.String()
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strs); err != nil {
			b.Fatal(err)
		}
	}
}
