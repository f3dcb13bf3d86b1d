package tcpproxy

import (
	"sort"
	"strings"
)

// A policy picks an eligible target for a new connection (healthy, or
// open for a passive retry: see refreshEligibilityLocked), or nil when none
// is. It runs on every connection: it must not allocate or lock.
// cursor is the app's round-robin position, shared by all its ports.
type policy func(ts []*target, cursor *appState) *target

// policies maps each lb_policy name to its implementation. A new policy is
// one function and one entry here.
var policies = map[string]policy{
	"round_robin": roundRobin,
	"least_conn":  leastConn,
}

func policyNames() string {
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, `"`+n+`"`)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// roundRobin takes the healthy targets in turn: the cursor counts over
// the healthy targets only, so with k healthy targets N connections give
// each ⌊N/k⌋ or ⌈N/k⌉, whichever targets are down.
func roundRobin(ts []*target, s *appState) *target {
	k := 0
	for _, t := range ts {
		if t.eligible.Load() {
			k++
		}
	}
	if k == 0 {
		return nil
	}
	return nthMatching(ts, int((s.next.Add(1)-1)%uint64(k)), func(t *target) bool { return t.eligible.Load() })
}

// leastConn takes the healthy target with the fewest active connections;
// ties are broken round-robin, so equal targets share the load in turn.
func leastConn(ts []*target, s *appState) *target {
	var least int64 = -1
	ties := 0
	for _, t := range ts {
		if !t.eligible.Load() {
			continue
		}
		switch a := t.active.Load(); {
		case least < 0 || a < least:
			least, ties = a, 1
		case a == least:
			ties++
		}
	}
	if ties == 0 {
		return nil
	}
	return nthMatching(ts, int((s.next.Add(1)-1)%uint64(ties)), func(t *target) bool {
		return t.eligible.Load() && t.active.Load() == least
	})
}

// nthMatching returns the n-th target (from 0) for which match holds. The
// health and counts may change between the caller's count and this pass;
// then the last match found, or nil, is returned.
func nthMatching(ts []*target, n int, match func(*target) bool) *target {
	var last *target
	for _, t := range ts {
		if !match(t) {
			continue
		}
		if n == 0 {
			return t
		}
		n--
		last = t
	}
	return last
}
