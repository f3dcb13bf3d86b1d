package acl

import (
	"net/netip"
	"slices"
)

// Set is an immutable list of IPs and CIDRs. It is safe for concurrent use.
// The zero Set and a nil *Set contain nothing.
type Set struct {
	v4, v6  table // IPv4 addresses live in the low 32 bits of v4's keys
	entries int
}

// Parse reads entries, each an IP ("10.0.0.1", "2001:db8::1") or a CIDR
// ("10.0.0.0/8", "2001:db8::/32"). The error of the first bad entry quotes
// it and says what would be valid. No entries give an empty Set.
func Parse(entries []string) (*Set, error) {
	var r4, r6 []span
	for _, e := range entries {
		p, err := parseEntry(e)
		if err != nil {
			return nil, err
		}
		if p.Addr().Is4() {
			r4 = append(r4, spanOf(p))
		} else {
			r6 = append(r6, spanOf(p))
		}
	}
	return &Set{v4: newTable(r4), v6: newTable(r6), entries: len(entries)}, nil
}

// Contains reports whether ip is in one of the set's entries. An
// IPv4-mapped IPv6 address is looked up as its IPv4 address; a zone is
// ignored; the zero Addr is in no set.
func (s *Set) Contains(ip netip.Addr) bool {
	if s == nil || !ip.IsValid() {
		return false
	}
	if ip.Is4() || ip.Is4In6() {
		return s.v4.contains(keyOf(ip.Unmap()))
	}
	return s.v6.contains(keyOf(ip))
}

// Len is the number of entries the set was parsed from (before merging),
// so Len() == 0 means the list was empty: for `allow`, "serve everyone".
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.entries
}

// table holds disjoint, non-adjacent ranges sorted by start: first[i] to
// last[i], both included. The starts are a slice of their own so that the
// binary search reads only them.
type table struct {
	first, last []u128
}

// span is one range of addresses, both ends included.
type span struct{ first, last u128 }

// spanOf is the range of addresses of a masked prefix.
func spanOf(p netip.Prefix) span {
	first := keyOf(p.Addr())
	return span{first, first.or(hostMask(p.Addr().BitLen() - p.Bits()))}
}

// newTable sorts spans and merges those that overlap or touch, so that a
// lookup finds at most one candidate.
func newTable(spans []span) table {
	slices.SortFunc(spans, func(a, b span) int { return a.first.cmp(b.first) })
	var t table
	for _, s := range spans {
		n := len(t.first)
		if n > 0 && (t.last[n-1] == maxU128 || s.first.cmp(t.last[n-1].next()) <= 0) {
			if s.last.cmp(t.last[n-1]) > 0 {
				t.last[n-1] = s.last
			}
			continue
		}
		t.first = append(t.first, s.first)
		t.last = append(t.last, s.last)
	}
	return t
}

// contains finds the last range starting at or before k and checks that it
// has not ended before k.
func (t *table) contains(k u128) bool {
	i, j := 0, len(t.first) // invariant: first[:i] <= k < first[j:]
	for i < j {
		h := int(uint(i+j) >> 1)
		if t.first[h].cmp(k) <= 0 {
			i = h + 1
		} else {
			j = h
		}
	}
	return i > 0 && k.cmp(t.last[i-1]) <= 0
}
