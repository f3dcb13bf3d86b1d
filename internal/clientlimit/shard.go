package clientlimit

import (
	"math/bits"
	"sync"
	"unsafe"
)

// entry is one tracked client IP: its open connections and its rate ring.
type entry struct {
	key   addrKey
	conns int32  // open connections; while > 0 the entry is never dropped
	gen   uint32 // params.gen the ring was counted under
	last  int64  // slot number of the ring's newest slot
	// prev and next link the entries without open connections, most
	// recently used first; -1 ends the list. An entry with connections is
	// on no list.
	prev, next int32
	ring       [slots]uint32
}

// shardState is one shard's table: entries packed in entries[:n], found
// through an open-addressing index (linear probing, at most half full) of
// positions in entries. Everything is guarded by mu.
type shardState struct {
	mu         sync.Mutex
	entries    []entry
	index      []int32 // -1: empty
	n          int32
	capacity   int32 // entries kept when none has an open connection
	head, tail int32 // list of entries without open connections
	evictions  uint64
	seed       hasher
}

// shard pads shardState to a multiple of 128 bytes so that two shards'
// locks never share a cache line (or an adjacent-line prefetch pair).
type shard struct {
	shardState
	_ [128 - unsafe.Sizeof(shardState{})%128]byte
}

const noEntry = -1

// find is the position of key's entry, or noEntry.
func (s *shard) find(key addrKey, h uint64) int32 {
	if len(s.index) == 0 {
		return noEntry
	}
	mask := uint64(len(s.index) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		i := s.index[j]
		if i == noEntry || s.entries[i].key == key {
			return i
		}
	}
}

// indexSlot is where entry i sits in the index.
func (s *shard) indexSlot(i int32, h uint64) uint64 {
	mask := uint64(len(s.index) - 1)
	j := h & mask
	for s.index[j] != i {
		j = (j + 1) & mask
	}
	return j
}

// place puts entry i, of hash h, in the index.
func (s *shard) place(i int32, h uint64) {
	mask := uint64(len(s.index) - 1)
	j := h & mask
	for s.index[j] != noEntry {
		j = (j + 1) & mask
	}
	s.index[j] = i
}

// unindex empties index slot j and shifts back the entries probed past it,
// so that lookups need no tombstones.
func (s *shard) unindex(j uint64) {
	mask := uint64(len(s.index) - 1)
	for k := (j + 1) & mask; s.index[k] != noEntry; k = (k + 1) & mask {
		home := s.seed.sum(s.entries[s.index[k]].key) & mask
		// k's entry may move to j if j lies on its probe path home..k
		if (k-home)&mask >= (k-j)&mask {
			s.index[j] = s.index[k]
			j = k
		}
	}
	s.index[j] = noEntry
}

// add appends a new entry for key, making room first if the shard is at
// its capacity: see the package doc, "When a shard is full".
func (s *shard) add(key addrKey, h uint64, p *params, k int64) *entry {
	if s.n >= s.capacity && s.tail != noEntry {
		v := s.victim(p, k)
		if !s.entries[v].expired(p, k) {
			s.evictions++
		}
		s.remove(v)
	}
	if int(s.n) == len(s.entries) {
		if s.n < s.capacity {
			s.resize(min(s.capacity, max(8, 2*s.n)))
		} else { // every entry holds an open connection
			s.resize(2 * s.n)
		}
	}
	i := s.n
	s.n++
	s.entries[i] = entry{key: key, prev: noEntry, next: noEntry}
	s.place(i, h)
	return &s.entries[i]
}

// victim picks the entry to drop for a new one: an expired one among the
// few least recently used, else the least recently used.
func (s *shard) victim(p *params, k int64) int32 {
	i := s.tail
	for range 8 {
		if i == noEntry {
			break
		}
		if s.entries[i].expired(p, k) {
			return i
		}
		i = s.entries[i].prev
	}
	return s.tail
}

// remove drops entry i and moves the last entry into its place.
func (s *shard) remove(i int32) {
	if s.listed(i) {
		s.unlink(i)
	}
	s.unindex(s.indexSlot(i, s.seed.sum(s.entries[i].key)))
	last := s.n - 1
	s.n--
	if i == last {
		return
	}
	e := &s.entries[i]
	*e = s.entries[last]
	s.index[s.indexSlot(last, s.seed.sum(e.key))] = i
	if e.prev != noEntry {
		s.entries[e.prev].next = i
	} else if s.head == last {
		s.head = i
	}
	if e.next != noEntry {
		s.entries[e.next].prev = i
	} else if s.tail == last {
		s.tail = i
	}
}

// trim drops least recently used entries without connections while the
// shard holds more than its capacity (it grew because all its entries had
// connections), and gives back memory once few are left.
func (s *shard) trim() {
	for s.n > s.capacity && s.tail != noEntry {
		s.evictions++
		s.remove(s.tail)
	}
	if int32(len(s.entries)) > s.capacity && s.n <= int32(len(s.entries))/4 {
		s.resize(max(s.capacity, 2*s.n))
	}
}

// resize gives the shard room for size entries (size >= n). Positions do
// not change, so the list links stay valid; the index is rebuilt.
func (s *shard) resize(size int32) {
	entries := make([]entry, size)
	copy(entries, s.entries[:s.n])
	s.entries = entries
	s.index = make([]int32, 1<<bits.Len32(uint32(2*size-1)))
	for j := range s.index {
		s.index[j] = noEntry
	}
	for i := range s.n {
		s.place(i, s.seed.sum(s.entries[i].key))
	}
}

// listed reports whether entry i is on the list of entries without
// connections.
func (s *shard) listed(i int32) bool {
	return s.entries[i].prev != noEntry || s.head == i
}

// pushFront lists entry i as the most recently used.
func (s *shard) pushFront(i int32) {
	e := &s.entries[i]
	e.prev, e.next = noEntry, s.head
	if s.head != noEntry {
		s.entries[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}

func (s *shard) unlink(i int32) {
	e := &s.entries[i]
	if e.prev != noEntry {
		s.entries[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next != noEntry {
		s.entries[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = noEntry, noEntry
}

// touch marks a listed entry as just used.
func (s *shard) touch(i int32) {
	if s.head != i {
		s.unlink(i)
		s.pushFront(i)
	}
}
