package tcpproxy

import "math/bits"

// portSet is a set of TCP ports, one bit each (8 KiB): the ports an app
// steers to its socket, and set operations over them that cost the same
// for 64,000 ports as for one.
type portSet [1 << 16 / 64]uint64

// portSetOf returns the ports of the ranges.
func portSetOf(ranges []PortRange) *portSet {
	s := new(portSet)
	for _, r := range ranges {
		for p := r.Low; p <= r.High; p++ {
			s.add(uint16(p))
		}
	}
	return s
}

func (s *portSet) add(p uint16)      { s[p/64] |= 1 << (p % 64) }
func (s *portSet) has(p uint16) bool { return s[p/64]&(1<<(p%64)) != 0 }

// union adds the ports of o.
func (s *portSet) union(o *portSet) {
	for i := range s {
		s[i] |= o[i]
	}
}

// remove removes the ports of o.
func (s *portSet) remove(o *portSet) {
	for i := range s {
		s[i] &^= o[i]
	}
}

// intersect keeps the ports that are in o too.
func (s *portSet) intersect(o *portSet) {
	for i := range s {
		s[i] &= o[i]
	}
}

// firstCommon returns the lowest port in both sets.
func (s *portSet) firstCommon(o *portSet) (uint16, bool) {
	for i := range s {
		if w := s[i] & o[i]; w != 0 {
			return uint16(i*64 + bits.TrailingZeros64(w)), true
		}
	}
	return 0, false
}

// count is the number of ports in the set.
func (s *portSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// list returns the ports in ascending order.
func (s *portSet) list() []uint16 {
	out := make([]uint16, 0, s.count())
	for i, w := range s {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, uint16(i*64+b))
			w &^= 1 << b
		}
	}
	return out
}
