package clientlimit

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// DefaultCapacity is the number of client IPs New tracks (besides those
// with open connections, which are always tracked): 64 shards of 1,024. At
// 80 bytes an entry that is at most 5 MiB, allocated as the shards fill.
const DefaultCapacity = 64 * 1024

// shardBits sets the number of shards, 1<<shardBits: enough that the
// connections of different clients rarely wait on the same lock.
const shardBits = 6

// Limiter enforces one app's Limits per client IP. It is safe for
// concurrent use and runs no goroutine: an unused Limiter is garbage once
// dropped, so it needs no Close.
type Limiter struct {
	params atomic.Pointer[params]
	shards []shard
	seed   hasher
	shift  uint // h >> shift picks the shard
}

// New returns a Limiter enforcing l that tracks up to DefaultCapacity
// client IPs; l must satisfy Validate.
func New(l Limits) (*Limiter, error) {
	return NewCapacity(l, DefaultCapacity)
}

// NewCapacity is New with room for capacity client IPs (rounded up to a
// multiple of the shard count) besides those with open connections.
func NewCapacity(l Limits, capacity int) (*Limiter, error) {
	return newLimiter(l, capacity, shardBits)
}

func newLimiter(l Limits, capacity int, shardBits uint) (*Limiter, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	n := 1 << shardBits
	lim := &Limiter{shards: make([]shard, n), seed: newHasher(), shift: 64 - shardBits}
	perShard := int32(max(1, (capacity+n-1)/n))
	for i := range lim.shards {
		s := &lim.shards[i]
		s.capacity, s.head, s.tail, s.seed = perShard, noEntry, noEntry, lim.seed
	}
	lim.params.Store(paramsOf(l, nil))
	return lim, nil
}

// Update replaces the limits of a live Limiter (a config reload). The
// connections it counts stay counted. Rate history is kept when Window is
// unchanged, and forgotten (every client starts afresh) when Window
// changes. With invalid limits it returns Validate's error and changes
// nothing.
func (l *Limiter) Update(lim Limits) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	for {
		old := l.params.Load()
		if l.params.CompareAndSwap(old, paramsOf(lim, old)) {
			return nil
		}
	}
}

// Limits are the limits in force.
func (l *Limiter) Limits() Limits {
	return l.params.Load().limits
}

func (l *Limiter) shard(k addrKey) (*shard, uint64) {
	h := l.seed.sum(k)
	return &l.shards[h>>l.shift], h
}

// Acquire decides on a new connection of ip at time now (nanoseconds on a
// monotonic clock, such as Now()). When it returns OK the connection is
// counted and the caller must call Release(ip) once it ends, on this same
// Limiter, whatever reloads happen meanwhile. A refused attempt counts
// nowhere. Open connections are counted even when no limit is set, so that
// a later Update that sets one sees them.
func (l *Limiter) Acquire(ip netip.Addr, now int64) Verdict {
	p := l.params.Load()
	var slot int64
	if p.rate > 0 {
		slot = floorDiv(now, p.width)
	}
	key := keyOf(ip)
	s, h := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(key, h)
	if i == noEntry {
		e := s.add(key, h, p, slot)
		e.conns, e.gen, e.last = 1, p.gen, slot
		if p.rate > 0 {
			e.admit()
		}
		return OK
	}
	e := &s.entries[i]
	if p.maxConns > 0 && e.conns >= p.maxConns {
		return ClientLimit
	}
	if p.rate > 0 {
		if e.gen != p.gen {
			e.gen, e.last, e.ring = p.gen, slot, [slots]uint32{}
		}
		e.advance(slot)
		if e.recent() >= uint64(p.rate) {
			if e.conns == 0 {
				s.touch(i) // its owner is active: drop others first
			}
			return RateLimited
		}
		e.admit()
	}
	if e.conns == 0 {
		s.unlink(i)
	}
	e.conns++
	return OK
}

// Release ends a connection that Acquire admitted. A Release without one
// is ignored.
func (l *Limiter) Release(ip netip.Addr) {
	key := keyOf(ip)
	s, h := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(key, h)
	if i == noEntry || s.entries[i].conns == 0 {
		return
	}
	e := &s.entries[i]
	e.conns--
	if e.conns > 0 {
		return
	}
	if e.hasHistory(l.params.Load()) {
		s.pushFront(i)
	} else {
		s.remove(i)
	}
	s.trim()
}

// Active is the number of open connections of ip that Acquire counted.
func (l *Limiter) Active(ip netip.Addr) int {
	key := keyOf(ip)
	s, h := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(key, h); i != noEntry {
		return int(s.entries[i].conns)
	}
	return 0
}

// Tracked is the number of client IPs held now: those with open
// connections plus those kept for their rate history (including some whose
// history has run out but that no new client has needed the room of yet).
func (l *Limiter) Tracked() int {
	return int(l.sumShards(func(s *shard) uint64 { return uint64(s.n) }))
}

// Evictions counts the client IPs whose rate history was dropped before
// it ran out, to make room for other clients (see the package doc).
func (l *Limiter) Evictions() uint64 {
	return l.sumShards(func(s *shard) uint64 { return s.evictions })
}

func (l *Limiter) sumShards(f func(*shard) uint64) uint64 {
	var n uint64
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += f(s)
		s.mu.Unlock()
	}
	return n
}

// Capacity is the number of client IPs the Limiter keeps without counting
// those with open connections.
func (l *Limiter) Capacity() int {
	return len(l.shards) * int(l.shards[0].capacity)
}

// start is the origin of Now.
var start = time.Now()

// Now is a monotonic clock in nanoseconds, for Acquire: unlike the wall
// clock it never jumps.
func Now() int64 { return int64(time.Since(start)) }
