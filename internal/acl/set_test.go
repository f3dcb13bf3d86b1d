package acl

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func mustParse(t testing.TB, entries ...string) *Set {
	t.Helper()
	s, err := Parse(entries)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEmptyAndNil(t *testing.T) {
	var nilSet *Set
	empty := mustParse(t)
	for _, s := range []*Set{nilSet, empty, {}} {
		for _, ip := range []string{"10.0.0.1", "::1", "0.0.0.0", "::"} {
			if s.Contains(netip.MustParseAddr(ip)) {
				t.Errorf("empty set contains %s", ip)
			}
		}
		if s.Len() != 0 {
			t.Errorf("empty set Len() = %d", s.Len())
		}
	}
	if mustParse(t, "0.0.0.0/0", "::/0").Contains(netip.Addr{}) {
		t.Error("the zero Addr is in a set")
	}
}

func TestContainsCases(t *testing.T) {
	s := mustParse(t,
		"10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", // nested
		"192.168.0.0/24", "192.168.1.0/24", // adjacent: merge to a /23
		"172.16.0.0/16", "172.16.128.0/17", "172.16.64.0/18", // overlapping
		"::ffff:198.51.100.0/120", // mapped entry: 198.51.100.0/24
		"2001:db8::/32", "2001:db8:1::/48",
		"255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", // top of each space
		"::/128",
	)
	if s.Len() != 14 {
		t.Errorf("Len() = %d, want 14 (entries, not merged ranges)", s.Len())
	}
	cases := map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "10.1.2.3": true, "9.255.255.255": false, "11.0.0.0": false,
		"192.168.0.0": true, "192.168.1.255": true, "192.168.2.0": false, "192.167.255.255": false,
		"172.16.255.255": true, "172.17.0.0": false,
		"198.51.100.1": true, "::ffff:198.51.100.1": true, "198.51.101.0": false,
		"::ffff:10.9.8.7": true, "::ffff:11.0.0.0": false,
		"2001:db8::1": true, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": true, "2001:db9::": false, "2001:db7:ffff::": false,
		"2001:db8::1%eth0": true, // a zone does not change the address
		"255.255.255.255":  true, "255.255.255.254": false,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": true, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe": false,
		"::": true, "::1": false,
		"::a01:203": false, // IPv4-compatible (not mapped) ::10.1.2.3 is IPv6
	}
	for ip, want := range cases {
		if got := s.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
}

// An IPv6 prefix shorter than /96 does not match IPv4 clients, even though
// its numbers cover the mapped block.
func TestShortIPv6PrefixIsIPv6Only(t *testing.T) {
	s := mustParse(t, "::/0")
	if s.Contains(netip.MustParseAddr("10.0.0.1")) || s.Contains(netip.MustParseAddr("::ffff:10.0.0.1")) {
		t.Error("::/0 contains an IPv4 client")
	}
	if !s.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Error("::/0 does not contain an IPv6 client")
	}
	if !mustParse(t, "::ffff:0:0/96").Contains(netip.MustParseAddr("1.2.3.4")) {
		t.Error("::ffff:0:0/96 does not contain 1.2.3.4")
	}
}

// refContains is the brute-force reference: every entry, one by one, with
// net/netip's own Contains.
func refContains(entries []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range entries {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Masked().Contains(ip) {
			return true
		}
	}
	return false
}

// randPrefix draws a prefix around a few base addresses, so that sets have
// nested, overlapping and adjacent entries; some are IPv4-mapped IPv6.
func randPrefix(r *rand.Rand, bases []netip.Addr) netip.Prefix {
	a := bases[r.IntN(len(bases))]
	b := a.AsSlice()
	b[len(b)-1-r.IntN(3)] ^= byte(r.Uint32()) // stay near the base
	a, _ = netip.AddrFromSlice(b)
	if a.Is4() && r.IntN(5) == 0 {
		a = netip.AddrFrom16(a.As16()) // written as ::ffff:a.b.c.d/96+n
		return netip.PrefixFrom(a, 96+r.IntN(33))
	}
	return netip.PrefixFrom(a, max(0, a.BitLen()-r.IntN(a.BitLen()/2+1)))
}

// randProbe draws an address to look up: inside, at or next to the ends of
// an entry, or anywhere; sometimes an IPv4 address written as mapped IPv6.
func randProbe(r *rand.Rand, entries []netip.Prefix) netip.Addr {
	var a netip.Addr
	p := entries[r.IntN(len(entries))].Masked()
	switch r.IntN(4) {
	case 0:
		a = p.Addr()
	case 1:
		a = lastAddr(p)
	case 2:
		a = p.Addr().Prev()
		if r.IntN(2) == 0 {
			a = lastAddr(p).Next()
		}
	default:
		b := make([]byte, 4+12*r.IntN(2))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		a, _ = netip.AddrFromSlice(b)
	}
	if !a.IsValid() { // Prev of 0.0.0.0 or Next of the top address
		a = p.Addr()
	}
	if a.Is4() && r.IntN(3) == 0 {
		a = netip.AddrFrom16(a.As16())
	}
	return a
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestContainsMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	bases := []netip.Addr{
		netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.255.0"), netip.MustParseAddr("0.0.0.0"),
		netip.MustParseAddr("255.255.255.0"), netip.MustParseAddr("2001:db8::"), netip.MustParseAddr("::"),
		netip.MustParseAddr("::ffff:0:0"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00"),
	}
	for round := range 300 {
		entries := make([]netip.Prefix, 1+r.IntN(40))
		strs := make([]string, len(entries))
		for i := range entries {
			entries[i] = randPrefix(r, bases)
			strs[i] = entries[i].String()
			if entries[i].IsSingleIP() && r.IntN(2) == 0 {
				strs[i] = entries[i].Addr().String() // bare IP
			}
		}
		s := mustParse(t, strs...)
		for range 300 {
			ip := randProbe(r, entries)
			if got, want := s.Contains(ip), refContains(entries, ip); got != want {
				t.Fatalf("round %d: Contains(%s) = %v, brute force says %v; entries %v", round, ip, got, want, strs)
			}
		}
	}
}
