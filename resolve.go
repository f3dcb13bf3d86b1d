package tcpproxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Where the loops dial. A loop must never wait for DNS, so each target
// keeps its addresses (target.dial): an IP address target from its
// creation, a host name target from a lookup that the target set runs in
// the background (resolveNames): at once when the config starts, then
// every dns_refresh, and again soon after a dial to the name failed (its
// address may have changed). The goroutine path dials names as Go's
// dialer does, resolving each time; connections take it while some name
// of the app has never been looked up (targetSet.resolved).

// resolution is a target's addresses, as the loops dial them in order.
type resolution struct {
	addrs []netip.AddrPort
	err   error // why addrs is empty: the name's lookup failed
}

// parseDialAddr returns the address of a target written as an IP
// address and port, or false for a host name.
func parseDialAddr(addr string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// lookupTimeout bounds one lookup of a target's name.
var lookupTimeout = 10 * time.Second

// retryFailedLookup is how soon a name whose lookup failed, or whose
// dial failed, is looked up again (dns_refresh if that is sooner).
const retryFailedLookup = time.Second

// resolveNames looks up the set's host name targets until ctx ends:
// at once, then every dns_refresh, or retryFailedLookup after a failure
// or a failed dial to one of them. Without names it returns at once.
func (s *targetSet) resolveNames(ctx context.Context) {
	if len(s.named) == 0 {
		return
	}
	refresh := time.Duration(s.refresh)
	for {
		wait := refresh
		if !s.lookupNames(ctx) {
			wait = min(refresh, retryFailedLookup)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-s.relookup:
			timer.Stop()
			// At most one round per retryFailedLookup, however many
			// dials fail meanwhile.
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryFailedLookup):
			}
		}
	}
}

// lookupNames looks each name up once and stores the answers; a failed
// lookup keeps the last good answer, if any. It reports whether every
// lookup succeeded.
func (s *targetSet) lookupNames(ctx context.Context) bool {
	ok := true
	for _, t := range s.named {
		res, err := resolveAddr(ctx, t.addr)
		if err != nil {
			ok = false
			if ctx.Err() != nil {
				return false
			}
			if prev := t.dial.Load(); prev == nil || len(prev.addrs) == 0 {
				t.dial.Store(&resolution{err: err})
			}
			continue
		}
		t.dial.Store(res)
	}
	s.resolved.Store(true)
	return ok
}

// resolveAddr resolves a host:port target as Go's dialer would, in the
// order it would try the addresses.
func resolveAddr(ctx context.Context, addr string) (*resolution, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	if len(ips) == 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no address for " + host)}
	}
	res := &resolution{addrs: make([]netip.AddrPort, len(ips))}
	for i, ip := range ips {
		res.addrs[i] = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	}
	return res, nil
}

// refreshNames asks the set's resolver for a round soon (a dial to a
// name failed). It never blocks: the loops call it.
func (s *targetSet) refreshNames() {
	select {
	case s.relookup <- struct{}{}:
	default:
	}
}
