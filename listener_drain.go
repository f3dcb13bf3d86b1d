package tcpproxy

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// How long Stop waits for the sockets that get no new connections any
// more to hand over those queued on them, before the config's listeners
// close.
const drainTimeout = 250 * time.Millisecond

// drainBypassed lets the config's sockets that routes now bypass hand the
// connections queued on them to the views, which are still open, until
// drainTimeout. Once the views close, a socket no config holds closes too,
// and what is still queued on it would be reset (a connection its accept
// loop holds then is handed on: see rehome). Those sockets are: steered ones no config routes ports to any
// more (a reload that switches an app to sockets, or exit), and per-port
// ones whose port a steered socket now takes (a switch to sk_lookup).
// Other sockets keep getting connections: waiting for them would not end.
func (a *App) drainBypassed() {
	deadline := time.Now().Add(drainTimeout)
	for _, s := range sockets.bypassed(a.sockets) {
		s.drain(deadline)
	}
}

// drain waits until no connection is queued on the socket, or the
// deadline.
func (s *sharedSocket) drain(deadline time.Time) {
	for time.Now().Before(deadline) {
		if queued, ok := acceptQueueLen(s.ln); !ok || queued == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// bypassed returns those of socks that get no new connections: steered
// sockets without claims, per-port sockets whose address is routed to a
// steered socket.
func (p *socketPool) bypassed(socks []*sharedSocket) []*sharedSocket {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*sharedSocket
	for _, s := range socks {
		if s.steer != nil && len(s.steer.claims) == 0 || s.steer == nil && p.steeredAwayLocked(s.addr) {
			out = append(out, s)
		}
	}
	return out
}

// steeredAwayLocked reports whether a route takes every connection to
// addr ("host:port") to a steered socket: for an address, a route for it
// or its family's wildcard; for all of a family's addresses (0.0.0.0),
// the family's wildcard; for all interfaces, both families' wildcards.
func (p *socketPool) steeredAwayLocked(addr string) bool {
	h, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return false
	}
	var wildcards []routeKey
	switch ip, err := netip.ParseAddr(h); {
	case h == "" || err == nil && ip == netip.IPv6Unspecified():
		wildcards = []routeKey{{v6: false}, {v6: true}}
	case err != nil:
		return false
	case ip.Unmap() == netip.IPv4Unspecified():
		wildcards = []routeKey{{v6: false}}
	default:
		return p.steeredLocked(ip, uint16(port)) != nil
	}
	for _, k := range wildcards {
		if p.routedLocked(k, uint16(port)) == nil {
			return false
		}
	}
	return true
}
