package clientlimit

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// addrKey is a client IP as two numbers; an IPv4 address and its
// IPv4-mapped IPv6 form have the same key, and a zone is dropped.
type addrKey [2]uint64

func keyOf(ip netip.Addr) addrKey {
	b := ip.As16()
	return addrKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// hasher is a fixed, fast multiply-mix hash (wyhash's mixing step) keyed
// with a random seed per Limiter. The seed matters: the shard tables use
// open addressing, and a client choosing its IPv6 source addresses could
// otherwise pick ones that collide, or that all land in one shard.
type hasher [3]uint64

func newHasher() hasher { return hasher{rand.Uint64(), rand.Uint64(), rand.Uint64()} }

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// sum hashes k. The top bits pick the shard, the low bits the index slot.
func (h hasher) sum(k addrKey) uint64 {
	return mix(mix(k[0]^h[0], k[1]^h[1])^h[2], 0x9e3779b97f4a7c15)
}
