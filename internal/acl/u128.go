package acl

import (
	"encoding/binary"
	"net/netip"
)

// u128 is an address as an unsigned number, so that ranges compare as
// numbers. An IPv4 address uses the low 32 bits.
type u128 struct{ hi, lo uint64 }

var maxU128 = u128{^uint64(0), ^uint64(0)}

// keyOf is a's number. For a 4-byte address it is the IPv4 number, not the
// IPv4-mapped IPv6 one: v4 and v6 live in separate tables.
func keyOf(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// hostMask has the low n bits set (0 <= n <= 128).
func hostMask(n int) u128 {
	switch {
	case n == 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<n - 1}
	case n == 128:
		return maxU128
	default:
		return u128{1<<(n-64) - 1, ^uint64(0)}
	}
}

func (a u128) or(b u128) u128 { return u128{a.hi | b.hi, a.lo | b.lo} }

// next is a+1, wrapping at the top (callers check for maxU128 first).
func (a u128) next() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}
