package discovery

import (
	"cmp"
	"net/netip"
	"slices"
)

// MaxWeight is the largest target weight. SRV allows weights 0..65535,
// targets 1..256: a tier whose largest SRV weight is above MaxWeight is
// scaled down to fit (see scaleWeights).
const MaxWeight = 256

// Record is one discovered target.
type Record struct {
	Addr   string // "ip:port", an IPv6 address in brackets: "[fd00::1]:5432"
	Weight int    // 1..MaxWeight
	Backup bool   // SRV: a priority value above the lowest one present
}

// rec is a record before its address is formatted: sorting, merging and
// comparing with the last set need no strings, so an unchanged refresh
// allocates none.
type rec struct {
	ap     netip.AddrPort
	prio   int // SRV priority; 0 for dns:
	weight int
	backup bool
}

// srvWeight is the weight of an SRV record before scaling: 0 ("no
// preference" among the records of a priority) counts as 1.
func srvWeight(w uint16) int {
	return max(int(w), 1)
}

// finish merges and orders a lookup's records. An address given by more
// than one record keeps the lowest priority it has and the sum of its
// weights at that priority: two SRV records naming the same ip:port ask
// for that much of the load. Records above the lowest priority present are
// backups; SRV's further levels all become backups, as targets have two
// tiers. Weights are then scaled into 1..MaxWeight (scaleWeights). The
// order is primaries then backups, each by address (numeric, IPv4 first),
// so it only changes when the set does.
func finish(rs []rec) []rec {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b rec) int {
		if c := a.ap.Compare(b.ap); c != 0 {
			return c
		}
		return cmp.Compare(a.prio, b.prio)
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.ap != last.ap {
			out = append(out, r)
			continue
		}
		if r.prio == last.prio {
			last.weight += r.weight
		}
	}
	low := out[0].prio
	for _, r := range out {
		low = min(low, r.prio)
	}
	for i := range out {
		out[i].backup = out[i].prio > low
	}
	scaleWeights(out, false)
	scaleWeights(out, true)
	slices.SortFunc(out, func(a, b rec) int {
		if a.backup != b.backup {
			if a.backup {
				return 1
			}
			return -1
		}
		return a.ap.Compare(b.ap)
	})
	return out
}

// scaleWeights fits the weights of one tier (the primaries, or the
// backups) into 1..MaxWeight. Only the weights within the tier that serves
// compete, so each tier is scaled on its own: when its largest weight is
// above MaxWeight, every weight w of it becomes w×MaxWeight/largest,
// rounded, at least 1. That keeps the ratios (SRV weights 3000 and 1000
// give 256 and 85) where cutting each weight to MaxWeight would make them
// equal; a tier within range is left as it is.
func scaleWeights(rs []rec, backup bool) {
	top := 0
	for _, r := range rs {
		if r.backup == backup {
			top = max(top, r.weight)
		}
	}
	if top <= MaxWeight {
		return
	}
	for i := range rs {
		if rs[i].backup == backup {
			rs[i].weight = max((rs[i].weight*MaxWeight+top/2)/top, 1)
		}
	}
}

func toRecords(rs []rec) []Record {
	if len(rs) == 0 {
		return []Record{}
	}
	out := make([]Record, len(rs))
	for i, r := range rs {
		// One string per record (not slices of one buffer): a record the
		// caller keeps must not pin a whole old answer.
		out[i] = Record{Addr: r.ap.String(), Weight: r.weight, Backup: r.backup}
	}
	return out
}

// sameRecords reports whether rs is the set prev already holds; scratch is
// reused for formatting so the comparison allocates nothing.
func sameRecords(prev []Record, rs []rec, scratch *[]byte) bool {
	if len(prev) != len(rs) {
		return false
	}
	for i, r := range rs {
		p := &prev[i]
		if p.Weight != r.weight || p.Backup != r.backup {
			return false
		}
		*scratch = r.ap.AppendTo((*scratch)[:0])
		if string(*scratch) != p.Addr {
			return false
		}
	}
	return true
}

// Equal reports whether two record sets are the same, order included (a
// lookup's order is canonical, so equal sets compare equal).
func Equal(a, b []Record) bool { return slices.Equal(a, b) }

// Diff compares the set a source had with the one it has now, by address:
// added are new addresses, removed are gone, changed are addresses whose
// weight or backup flag changed (with their new values). Each comes out in
// the order of its input.
func Diff(old, cur []Record) (added, removed, changed []Record) {
	prev := make(map[string]Record, len(old))
	for _, r := range old {
		prev[r.Addr] = r
	}
	for _, r := range cur {
		p, ok := prev[r.Addr]
		switch {
		case !ok:
			added = append(added, r)
		case p != r:
			changed = append(changed, r)
		}
		delete(prev, r.Addr)
	}
	for _, r := range old {
		if _, ok := prev[r.Addr]; ok {
			removed = append(removed, r)
		}
	}
	return added, removed, changed
}
