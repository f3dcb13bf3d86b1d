package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/evloop"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/sklookup"
)

// The sk_lookup listener mode's sockets (see internal/sklookup).
//
// An app in this mode has one listening socket per bind host, kept in the
// socket pool under (app, host) so that a reload keeps it and its accept
// queue, like a per-port socket. It listens on the bind host at an
// ephemeral port of its own, where it refuses connections (RST) unless
// that port is one of the app's; the app's ports reach it through routes
// (bind address, port) → socket, which the engine's BPF program looks up
// for every incoming SYN. Each steered socket holds a reference on the
// engine, so the program is attached with the first steered socket and
// detached with the last.
//
// The routes are the configs' claims: each config claims its ports on its
// sockets, last thing in Start (a failed config never routed anything the
// running one needs), and gives them up first thing in Stop. A port is
// routed while some config claims it, to the socket of the newest claim:
//
//   - a reload that keeps a port changes nothing for it (same socket);
//   - a port the new config adds is routed in its Start; one it drops is
//     unrouted when the old config stops;
//   - a port that moves to another app (another socket) is rerouted in
//     the new config's Start, and back if the new config fails to start.

// steerKey names a steered socket: an app and a bind host as configured
// ("" for all interfaces).
type steerKey struct{ app, host string }

// steering is the sk_lookup state of a steered socket. Guarded by
// socketPool.mu.
type steering struct {
	key    steerKey
	st     *sklookup.Steering
	reg    sklookup.Socket
	route  netip.Addr // the address routes are for: the zero Addr for every address (see keys)
	claims []*portClaim
	routed portSet // the ports whose route points at this socket now

	ownPort       int         // the ephemeral port the socket itself listens on
	ownPortServed atomic.Bool // some claim has ownPort: connections to it are the app's
}

// portClaim is the ports one config steers to a socket.
type portClaim struct {
	owner *App
	seq   uint64 // newer claims win a port
	ports *portSet
}

// routeTarget is the address the routes of a bind host are for: the zero
// Addr for all interfaces ("" or "::", both families), 0.0.0.0 for every
// IPv4 address, else the address.
func routeTarget(host string) (netip.Addr, error) {
	h := trimBrackets(host)
	if h == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bind host %q is not an IP address", host)
	}
	if a = a.Unmap(); a == netip.IPv6Unspecified() {
		return netip.Addr{}, nil
	}
	return a, nil
}

// routeKey is what the engine keys a route by, but the port: an address
// family and an address, the zero Addr for every address of the family
// (see sklookup.Steering.Route).
type routeKey struct {
	v6   bool
	addr netip.Addr // the zero Addr: the family's wildcard
}

// keys are the engine's keys of the socket's routes: both families'
// wildcards for all interfaces (the socket is dual-stack: see
// acquireSteered), the IPv4 wildcard for 0.0.0.0, else the address. So
// the routes of bind hosts "" and "0.0.0.0" share the IPv4 wildcard.
func (st *steering) keys() []routeKey {
	switch r := st.route; {
	case !r.IsValid():
		return []routeKey{{v6: false}, {v6: true}}
	case r.IsUnspecified():
		return []routeKey{{v6: r.Is6()}}
	default:
		return []routeKey{{v6: r.Is6(), addr: r}}
	}
}

func (st *steering) hasKey(k routeKey) bool {
	for _, own := range st.keys() {
		if own == k {
			return true
		}
	}
	return false
}

// within reports whether every key of st's routes is one of o's: routing
// a port for o takes it from st in full.
func (st *steering) within(o *steering) bool {
	for _, k := range st.keys() {
		if !o.hasKey(k) {
			return false
		}
	}
	return true
}

// overlaps reports whether st's and o's routes share a key: routing a
// port for one takes it, in full or in part, from the other.
func (st *steering) overlaps(o *steering) bool {
	for _, k := range st.keys() {
		if o.hasKey(k) {
			return true
		}
	}
	return false
}

// routedLocked returns the steered socket the route key k for port points
// at, or nil. A port two sockets have routed is one that a socket on a
// narrower wildcard (0.0.0.0) took in part from one on all interfaces
// (routeLocked clears a socket's ports only when it loses them in full):
// the key they share is the narrower one's, the one with fewer keys.
func (p *socketPool) routedLocked(k routeKey, port uint16) *sharedSocket {
	var found *sharedSocket
	for _, o := range p.steered {
		if o.steer.routed.has(port) && o.steer.hasKey(k) &&
			(found == nil || len(o.steer.keys()) < len(found.steer.keys())) {
			found = o
		}
	}
	return found
}

// steeredLocked returns the steered socket a connection to (ip, port)
// goes to, as the engine looks it up: a route for ip itself, else one for
// every address of its family; nil if none.
func (p *socketPool) steeredLocked(ip netip.Addr, port uint16) *sharedSocket {
	ip = ip.Unmap()
	if o := p.routedLocked(routeKey{v6: ip.Is6(), addr: ip}, port); o != nil {
		return o
	}
	return p.routedLocked(routeKey{v6: ip.Is6()}, port)
}

// acquireSteered returns the steered socket of app on host, creating it
// (and taking a reference on the engine) on first use.
func (p *socketPool) acquireSteered(app, host string) (*sharedSocket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := steerKey{app, host}
	if s, ok := p.steered[key]; ok {
		s.refs++
		return s, nil
	}
	route, err := routeTarget(host)
	if err != nil {
		return nil, err
	}
	// On the bind host itself, so that the socket's family takes what the
	// routes send (":0" is dual-stack where there is IPv6), and a bind
	// address the machine does not have fails here as in sockets mode.
	ln, err := listenConfig.Listen(context.Background(), "tcp", net.JoinHostPort(trimBrackets(host), "0"))
	if err != nil {
		return nil, fmt.Errorf("opening the sk_lookup listener: %v", err)
	}
	st, err := sklookup.Acquire()
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	reg, err := st.Bind(ln.(*net.TCPListener))
	if err != nil {
		_ = st.Release()
		_ = ln.Close()
		return nil, err
	}
	// Bound: the map holds the socket itself, whichever descriptor
	// serves it from now on.
	own := ln.Addr().(*net.TCPAddr)
	ownPort := own.Port
	if !route.IsValid() && own.IP.To4() != nil {
		// All interfaces, on a machine without IPv6: an IPv4 socket, for
		// which the engine routes the IPv4 wildcard only (see keys).
		route = netip.IPv4Unspecified()
	}
	if ln, err = forLoops(ln); err != nil {
		_ = st.Release()
		return nil, fmt.Errorf("opening the sk_lookup listener: %v", err)
	}
	s := &sharedSocket{addr: ln.Addr().String(), ln: ln, refs: 1, changed: make(chan struct{}), closed: make(chan struct{}),
		steer: &steering{key: key, st: st, reg: reg, route: route, ownPort: ownPort}}
	p.steered[key] = s
	go s.acceptLoop()
	return s, nil
}

// closeSteeredLocked takes a steered socket whose last reference is gone
// out of the pool and gives up its engine reference, which removes any
// route still pointing at it (the last one detaches the program).
func (p *socketPool) closeSteeredLocked(s *sharedSocket) {
	delete(p.steered, s.steer.key)
	_ = s.steer.st.Release()
}

// claim routes ports to the steered socket s for owner (a config): those
// not routed to s yet, in one batch. A failed update leaves the routes as
// they were.
func (p *socketPool) claim(s *sharedSocket, owner *App, ports *portSet) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	todo := *ports
	todo.remove(&s.steer.routed)
	for _, o := range p.steered {
		// Ports s has routed may still be routed in part to another
		// socket: one on 0.0.0.0 that took their IPv4 half. Route them
		// again: they are s's now.
		if o != s && o.steer.overlaps(s.steer) {
			taken := *ports
			taken.intersect(&o.steer.routed)
			todo.union(&taken)
		}
	}
	if err := p.routeLocked(s, &todo); err != nil {
		return err
	}
	p.seq++
	s.steer.claims = append(s.steer.claims, &portClaim{owner: owner, seq: p.seq, ports: ports})
	// A claim only adds ports (unclaim recomputes ownPortServed from the
	// claims it keeps), and both run under p.mu.
	st := s.steer
	st.ownPortServed.Store(st.ownPortServed.Load() || ports.has(uint16(st.ownPort)))
	return nil
}

// stray reports whether conn reached the socket on its own port, which is
// none of the app's: only a scan or a mistake dials it. It runs for every
// connection the socket accepts: when a claim serves the own port there
// is nothing to ask, and a loop's connection gives its port without
// allocating.
func (st *steering) stray(conn net.Conn) bool {
	if st.ownPortServed.Load() {
		return false
	}
	if ec, ok := conn.(*evloop.Conn); ok {
		return int(ec.LocalAddrPort().Port()) == st.ownPort
	}
	a, ok := conn.LocalAddr().(*net.TCPAddr)
	return ok && a.Port == st.ownPort
}

// routeLocked routes ports to s, taking them from whichever socket they
// were routed to: in full from a socket whose route keys are all s's
// too, in part from one on all interfaces when s is on 0.0.0.0 (that
// one keeps the IPv6 half, and the ports: see routedLocked).
func (p *socketPool) routeLocked(s *sharedSocket, ports *portSet) error {
	list := ports.list()
	if len(list) == 0 {
		return nil
	}
	if err := s.steer.st.Route(s.steer.route, list, s.steer.reg); err != nil {
		return err
	}
	for _, o := range p.steered {
		if o.steer.within(s.steer) {
			o.steer.routed.remove(ports)
		}
	}
	s.steer.routed.union(ports)
	return nil
}

// unclaim gives up owner's claim on s. The ports no other claim on s
// covers go to the newest other claim whose routes share a key with s's,
// or are unrouted: they answer RST again. A claim that takes a port in
// part (on 0.0.0.0, from s on all interfaces) leaves the rest unrouted.
func (p *socketPool) unclaim(s *sharedSocket, owner *App) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := s.steer
	var mine *portClaim
	var kept portSet
	for i := 0; i < len(st.claims); i++ {
		c := st.claims[i]
		if c.owner == owner && mine == nil {
			mine = c
			st.claims = append(st.claims[:i], st.claims[i+1:]...)
			i--
			continue
		}
		kept.union(c.ports)
	}
	if mine == nil {
		return nil
	}
	st.ownPortServed.Store(kept.has(uint16(st.ownPort)))
	freed := *mine.ports
	freed.intersect(&st.routed)
	freed.remove(&kept)
	var errs []error
	for o, ports := range p.newestClaimsLocked(s, &freed) {
		if err := p.routeLocked(o, ports); err != nil {
			errs = append(errs, err)
			freed.remove(ports) // s keeps them rather than nobody
		}
	}
	// Unroute removes the routes of the freed ports still pointing at s
	// only: none of those another claim took in full.
	if list := freed.list(); len(list) > 0 {
		if err := st.st.Unroute(st.route, list, st.reg); err != nil {
			errs = append(errs, err)
		} else {
			st.routed.remove(&freed)
		}
	}
	return errors.Join(errs...)
}

// newestClaimsLocked returns those of ports that another steered socket
// whose routes share a key with s's claims, by the socket of their newest
// claim.
func (p *socketPool) newestClaimsLocked(s *sharedSocket, ports *portSet) map[*sharedSocket]*portSet {
	type candidate struct {
		s *sharedSocket
		c *portClaim
	}
	var cands []candidate
	for _, o := range p.steered {
		if o == s || !o.steer.overlaps(s.steer) {
			continue
		}
		for _, c := range o.steer.claims {
			cands = append(cands, candidate{o, c})
		}
	}
	if len(cands) == 0 {
		return nil
	}
	moves := make(map[*sharedSocket]*portSet)
	for _, port := range ports.list() {
		var best candidate
		for _, cand := range cands {
			if cand.c.ports.has(port) && (best.c == nil || cand.c.seq > best.c.seq) {
				best = cand
			}
		}
		if best.c == nil {
			continue
		}
		if moves[best.s] == nil {
			moves[best.s] = new(portSet)
		}
		moves[best.s].add(port)
	}
	return moves
}

// steeredPorts counts the (bind address, port) routes that point at the
// sockets now.
func (p *socketPool) steeredPorts(socks []*sharedSocket) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range socks {
		n += s.steer.routed.count()
	}
	return n
}

// foreignListener returns a socket listening on one of ports at an
// address a route for host would take connections from, that is not a
// socket of the pool (routing would steal its connections), or nil.
func (p *socketPool) foreignListener(host string, ports *portSet) (*sklookup.Listener, error) {
	route, err := routeTarget(host)
	if err != nil {
		return nil, err
	}
	found, err := sklookup.ForeignListeners(route, ports.list(), p.inodes())
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return &found[0], nil
}

// inodes returns the inodes of the pool's sockets, finding those not
// known yet.
func (p *socketPool) inodes() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint64, 0, len(p.byAddr)+len(p.steered))
	add := func(s *sharedSocket) {
		if s.inode == 0 {
			if sc, ok := s.ln.(syscall.Conn); ok {
				s.inode, _ = sklookup.SocketInode(sc)
			}
		}
		out = append(out, s.inode)
	}
	for _, s := range p.byAddr {
		add(s)
	}
	for _, s := range p.steered {
		add(s)
	}
	return out
}

// describeListener says whose a foreign listener is, as far as this
// process can tell: its own sockets are Caddy's (its admin endpoint, or a
// server of another app of the config).
func describeListener(l *sklookup.Listener) string {
	if ownSockets()[l.Inode] {
		return fmt.Sprintf("%s, a socket of this Caddy process: its admin endpoint or a server of another Caddy app", l.Addr)
	}
	return fmt.Sprintf("%s, a socket of another process", l.Addr)
}

// ownSockets returns the inodes of this process's sockets, from the
// links in /proc/self/fd ("socket:[12345]"); none where that is missing.
func ownSockets() map[uint64]bool {
	out := make(map[uint64]bool)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out
	}
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err != nil {
			continue
		}
		if rest, ok := strings.CutPrefix(target, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out
}
