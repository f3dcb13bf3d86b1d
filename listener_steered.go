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
	route  netip.Addr // the address routes are for: the zero Addr for every address
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
	ownPort := ln.Addr().(*net.TCPAddr).Port
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
// were routed to.
func (p *socketPool) routeLocked(s *sharedSocket, ports *portSet) error {
	list := ports.list()
	if len(list) == 0 {
		return nil
	}
	if err := s.steer.st.Route(s.steer.route, list, s.steer.reg); err != nil {
		return err
	}
	for _, o := range p.steered {
		if o.steer.route == s.steer.route {
			o.steer.routed.remove(ports)
		}
	}
	s.steer.routed.union(ports)
	return nil
}

// unclaim gives up owner's claim on s. The ports no other claim on s
// covers go to the newest other claim on the same address, or are
// unrouted: they answer RST again.
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
	moves := p.newestClaimsLocked(s, &freed)
	var errs []error
	for o, ports := range moves {
		errs = append(errs, p.routeLocked(o, ports))
	}
	if list := freed.list(); len(list) > 0 {
		if err := st.st.Unroute(st.route, list, st.reg); err != nil {
			errs = append(errs, err)
		} else {
			st.routed.remove(&freed)
		}
	}
	return errors.Join(errs...)
}

// newestClaimsLocked takes out of ports those that another steered socket
// on the same address claims, and returns them by the socket of their
// newest claim.
func (p *socketPool) newestClaimsLocked(s *sharedSocket, ports *portSet) map[*sharedSocket]*portSet {
	type candidate struct {
		s *sharedSocket
		c *portClaim
	}
	var cands []candidate
	for _, o := range p.steered {
		if o == s || o.steer.route != s.steer.route {
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
	for _, moved := range moves {
		ports.remove(moved)
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
