//go:build linux

package sklookup

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// routeKey is the route map's key, laid out as the program builds it on
// its stack: the family (AF_INET or AF_INET6), the port in host byte
// order, and the address (an IPv4 address in the first four bytes; all
// zero for a wildcard route). No padding, so a []routeKey is handed to
// the kernel as it lies in memory.
type routeKey struct {
	Family uint32
	Port   uint32
	Addr   [16]byte
}

const routeKeySize = 24

// target is a route's (family, address) without the port.
type target struct {
	family uint32
	addr   [16]byte
}

// portOwners records, for one target, which registration each port is
// routed to (0: none). It mirrors the route map so that Unroute and Unbind
// know which entries are theirs without reading the map one key at a time.
type portOwners struct {
	owner [1 << 16]uint32
	n     int
}

type routeTable map[target]*portOwners

func (t routeTable) owner(tg target, port uint16) uint32 {
	if po := t[tg]; po != nil {
		return po.owner[port]
	}
	return 0
}

func (t routeTable) set(tg target, port uint16, id uint32) {
	po := t[tg]
	if po == nil {
		if id == 0 {
			return
		}
		po = &portOwners{}
		t[tg] = po
	}
	switch old := po.owner[port]; {
	case old == 0 && id != 0:
		po.n++
	case old != 0 && id == 0:
		po.n--
	}
	po.owner[port] = id
	if po.n == 0 {
		delete(t, tg)
	}
}

// Route sends new connections for each of ports on addr to sock, in one
// batched map update. addr is the address the clients dial; the zero
// netip.Addr or :: means every address the socket can take (both families
// for a dual-stack [::] socket), 0.0.0.0 every IPv4 address. A route for
// an exact address wins over a wildcard route for the same port. Ports
// already routed elsewhere (another config's socket during a reload) move
// to sock atomically for new connections. If the update fails part way,
// the entries it changed are put back and the error is returned.
func (s *Steering) Route(addr netip.Addr, ports []uint16, sock Socket) error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	r, keys, prev, err := s.plan(addr, ports, sock, false)
	if err != nil {
		return err
	}
	values := make([]uint32, len(keys))
	for i := range values {
		values[i] = r.b.slot
	}
	n, err := batchUpdate(e.objs.routes, keys, values)
	if err != nil {
		err = fmt.Errorf("sk_lookup: routing %d ports of %s to listener %s: %w", len(ports), addrString(addr), r.b.addr, err)
		if rerr := e.restore(keys[:n], prev[:n]); rerr != nil {
			err = errors.Join(err, fmt.Errorf("sk_lookup: restoring the previous routes: %w", rerr))
		}
		return err
	}
	for _, k := range keys {
		e.routes.set(target{k.Family, k.Addr}, uint16(k.Port), r.id)
	}
	return nil
}

// Unroute removes the routes for ports on addr (as in Route) that still
// point at sock; a port routed to another socket since is left alone.
// Those ports then answer RST, unless a socket listens on them itself.
func (s *Steering) Unroute(addr netip.Addr, ports []uint16, sock Socket) error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	r, keys, _, err := s.plan(addr, ports, sock, true)
	if err != nil {
		return err
	}
	if err := e.deleteRoutes(keys); err != nil {
		return fmt.Errorf("sk_lookup: unrouting ports of %s from listener %s: %w", addrString(addr), r.b.addr, err)
	}
	return nil
}

// plan checks a Route or Unroute and lists its route keys with their
// current owners: all of them, or (onlyOwn) those routed to sock.
func (s *Steering) plan(addr netip.Addr, ports []uint16, sock Socket, onlyOwn bool) (*registration, []routeKey, []uint32, error) {
	r, err := s.checkLocked(sock)
	if err != nil {
		return nil, nil, nil, err
	}
	targets, err := targetsFor(addr, r.b)
	if err != nil {
		return nil, nil, nil, err
	}
	ports, err = uniquePorts(ports)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, owners := s.e.keys(targets, ports, func(owner uint32) bool { return !onlyOwn || owner == r.id })
	return r, keys, owners, nil
}

// keys lists the route keys for targets × ports whose current owner
// passes keep, with those owners.
func (e *engine) keys(targets []target, ports []uint16, keep func(owner uint32) bool) ([]routeKey, []uint32) {
	keys := make([]routeKey, 0, len(targets)*len(ports))
	owners := make([]uint32, 0, cap(keys))
	for _, tg := range targets {
		for _, p := range ports {
			if o := e.routes.owner(tg, p); keep(o) {
				keys = append(keys, routeKey{Family: tg.family, Port: uint32(p), Addr: tg.addr})
				owners = append(owners, o)
			}
		}
	}
	return keys, owners
}

// removeOwner deletes every route pointing at registration id.
func (t routeTable) removeOwner(m *ebpf.Map, id uint32) error {
	var keys []routeKey
	for tg, po := range t {
		for p, o := range po.owner {
			if o == id {
				keys = append(keys, routeKey{Family: tg.family, Port: uint32(p), Addr: tg.addr})
			}
		}
	}
	return t.delete(m, keys)
}

func (e *engine) deleteRoutes(keys []routeKey) error { return e.routes.delete(e.objs.routes, keys) }

// delete removes keys from the map in one batch and from the mirror as far
// as the batch got.
func (t routeTable) delete(m *ebpf.Map, keys []routeKey) error {
	if len(keys) == 0 {
		return nil
	}
	n, err := m.BatchDelete(keys, nil)
	for _, k := range keys[:n] {
		t.set(target{k.Family, k.Addr}, uint16(k.Port), 0)
	}
	return err
}

// restore puts back the previous owners of keys after a failed Route.
func (e *engine) restore(keys []routeKey, prev []uint32) error {
	var back []routeKey
	var slots []uint32
	var gone []routeKey
	for i, k := range keys {
		if prev[i] == 0 {
			gone = append(gone, k)
			continue
		}
		back = append(back, k)
		slots = append(slots, e.regs[prev[i]].b.slot)
	}
	_, err := batchUpdate(e.objs.routes, back, slots)
	if len(gone) > 0 {
		_, derr := e.objs.routes.BatchDelete(gone, nil)
		err = errors.Join(err, derr)
	}
	return err
}

func batchUpdate(m *ebpf.Map, keys []routeKey, values []uint32) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	n, err := m.BatchUpdate(keys, values, nil)
	switch {
	case errors.Is(err, unix.E2BIG): // cilium/ebpf calls it "key too big", but the map is full
		err = fmt.Errorf("the route map is full: it holds at most %d routes: %w", m.MaxEntries(), unix.E2BIG)
	case errors.Is(err, unix.ENOMEM):
		err = fmt.Errorf("the kernel has no memory for more routes: %w", unix.ENOMEM)
	}
	return n, err
}

// targetsFor turns a route's address into the (family, address) pairs to
// route, checking that the socket can take connections of that family.
func targetsFor(addr netip.Addr, b *bound) ([]target, error) {
	if !addr.IsValid() || addr == netip.IPv6Unspecified() {
		var ts []target
		if b.v4 {
			ts = append(ts, target{family: unix.AF_INET})
		}
		if b.v6 {
			ts = append(ts, target{family: unix.AF_INET6})
		}
		return ts, nil
	}
	if addr.Zone() != "" {
		return nil, fmt.Errorf("sk_lookup: address %q has a zone; routes match the address alone, "+
			"so give it without %%zone", addr.String())
	}
	addr = addr.Unmap()
	if addr.Is4() {
		if !b.v4 {
			return nil, fmt.Errorf("sk_lookup: listener %s is IPv6-only and cannot take connections to %s: "+
				"bind an IPv4 or a dual-stack [::] socket", b.addr, addr)
		}
		tg := target{family: unix.AF_INET}
		a4 := addr.As4()
		copy(tg.addr[:], a4[:])
		return []target{tg}, nil
	}
	if !b.v6 {
		return nil, fmt.Errorf("sk_lookup: listener %s is IPv4 and cannot take connections to %s: "+
			"bind an IPv6 socket", b.addr, addr)
	}
	return []target{{family: unix.AF_INET6, addr: addr.As16()}}, nil
}

// uniquePorts drops repeated ports, keeping the order, and refuses port 0.
// A repeated key would make a failed batch's undo delete one key twice.
func uniquePorts(ports []uint16) ([]uint16, error) {
	var seen [1 << 16 / 64]uint64
	out := make([]uint16, 0, len(ports))
	for _, p := range ports {
		if p == 0 {
			return nil, errors.New("sk_lookup: port 0 cannot be routed: give ports 1-65535")
		}
		if seen[p/64]&(1<<(p%64)) != 0 {
			continue
		}
		seen[p/64] |= 1 << (p % 64)
		out = append(out, p)
	}
	return out, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "all addresses"
	}
	return a.String()
}
