package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// targetLookups bounds the SRV target names resolved at once.
const targetLookups = 8

// systemResolver serves Lookup calls given a nil resolver.
var systemResolver = NewResolver(nil, DefaultTimeout)

// Lookup resolves s once with r (nil: the system's resolvers) and returns
// its records in their canonical order (see Record). An empty set with a
// nil error is a successful answer without records: the name exists but
// has no SRV, or no A and no AAAA, record. Any other outcome is an error
// and the caller keeps its last good set: NXDOMAIN (a *net.DNSError with
// IsNotFound), SERVFAIL (IsTemporary), no answer (IsTimeout).
//
// Go's resolver reports NXDOMAIN and "exists, no record" with the same
// error; Lookup tells them apart by the response codes that passed through
// a resolver made by NewResolver. With any other resolver both count as
// NXDOMAIN: a failure, the safe side.
//
// SRV: each target name is resolved (A and AAAA) with r, as Go does not
// use the additional section of the SRV answer. A target "." (service not
// offered) or one whose name has no address (NXDOMAIN or no record)
// contributes nothing; any other failure of a target fails the lookup. The
// port comes from the SRV record, the weight is the SRV weight (0 counts
// as 1; a tier whose weights go above MaxWeight is scaled down to fit,
// keeping their ratios), and records above the lowest priority present
// are backups.
func (s Source) Lookup(ctx context.Context, r *net.Resolver) ([]Record, error) {
	rs, err := s.resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	return toRecords(rs), nil
}

func (s Source) resolve(ctx context.Context, r *net.Resolver) ([]rec, error) {
	if r == nil {
		r = systemResolver
	}
	switch s.Kind {
	case KindDNS:
		addrs, err := lookupAddrs(ctx, r, s.Name)
		if err != nil {
			return nil, err
		}
		rs := make([]rec, len(addrs))
		for i, a := range addrs {
			rs[i] = rec{ap: netip.AddrPortFrom(a, uint16(s.Port)), weight: 1}
		}
		return finish(rs), nil
	case KindSRV:
		return s.resolveSRV(ctx, r)
	}
	return nil, fmt.Errorf("discovery: source %q has unknown kind %q (want %q or %q)", s.Spec, s.Kind, KindSRV, KindDNS)
}

func (s Source) resolveSRV(ctx context.Context, r *net.Resolver) ([]rec, error) {
	st := new(lookupState)
	_, srvs, err := r.LookupSRV(withState(ctx, st), "", "", s.Name)
	if err != nil {
		return nil, notFoundIsEmpty(err, st)
	}
	// Each distinct target name once (Go returns them rooted).
	var hosts []string
	index := make(map[string]int, len(srvs))
	for _, srv := range srvs {
		h := strings.ToLower(srv.Target)
		if _, seen := index[h]; !seen && h != "." {
			index[h] = len(hosts)
			hosts = append(hosts, h)
		}
	}
	addrs, err := lookupTargets(ctx, r, hosts)
	if err != nil {
		return nil, err
	}
	var rs []rec
	for _, srv := range srvs {
		i, ok := index[strings.ToLower(srv.Target)]
		if !ok {
			continue
		}
		for _, a := range addrs[i] {
			rs = append(rs, rec{ap: netip.AddrPortFrom(a, srv.Port), prio: int(srv.Priority), weight: srvWeight(srv.Weight)})
		}
	}
	return finish(rs), nil
}

// lookupTargets resolves SRV target names, a few at a time. A name without
// addresses gets none; any other failure fails them all.
func lookupTargets(ctx context.Context, r *net.Resolver, hosts []string) ([][]netip.Addr, error) {
	out := make([][]netip.Addr, len(hosts))
	errs := make([]error, len(hosts))
	sem := make(chan struct{}, targetLookups)
	var wg sync.WaitGroup
	for i, h := range hosts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			addrs, err := lookupAddrs(ctx, r, h)
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				err = nil // NXDOMAIN: a dead SRV record, not a failed lookup
			}
			out[i], errs[i] = addrs, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("SRV target %s: %w", hosts[i], err)
		}
	}
	return out, nil
}

// lookupAddrs returns the addresses of host, sorted and without
// duplicates (an IPv4-mapped AAAA is its IPv4 address). LookupHost, not
// LookupIPAddr: the latter merges concurrent lookups of one name, and the
// merged callers would not see the response codes in their lookupState.
func lookupAddrs(ctx context.Context, r *net.Resolver, host string) ([]netip.Addr, error) {
	st := new(lookupState)
	ss, err := r.LookupHost(withState(ctx, st), host)
	if err != nil {
		return nil, notFoundIsEmpty(err, st)
	}
	addrs := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue // Go only returns addresses; nothing to dial otherwise
		}
		addrs = append(addrs, a.Unmap().WithZone(""))
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs), nil
}

// notFoundIsEmpty turns Go's "not found" into an empty answer when a
// usable NOERROR came back in this lookup (the name exists, without
// records of the type), and names the server that answered when it was
// one of ours (Go names the system's server it was asked to dial).
func notFoundIsEmpty(err error, st *lookupState) error {
	var de *net.DNSError
	if !errors.As(err, &de) {
		return err
	}
	if de.IsNotFound && st.noError.Load() {
		return nil
	}
	if !st.own.Load() {
		return err
	}
	e := *de
	e.Server = ""
	if s := st.answeredBy.Load(); s != nil {
		e.Server = *s
	}
	return &e
}
