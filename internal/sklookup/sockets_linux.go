//go:build linux

package sklookup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ipprotoMPTCP is IPPROTO_MPTCP, the protocol of Go's default listeners
// since Go 1.24 where the kernel has MPTCP enabled.
const ipprotoMPTCP = 262

// bound is one listening socket in the SOCKMAP. Registrations of the same
// socket share it; the slot is freed with the last of them.
type bound struct {
	cookie uint64
	inode  uint64
	slot   uint32
	v4, v6 bool   // families whose connections the socket can take
	addr   string // its local address, for errors
	regs   int
}

// registration is what a Socket stands for: one Bind call.
type registration struct {
	id    uint32
	b     *bound
	owner *Steering
}

func (r *registration) socket() Socket {
	return Socket{id: r.id, slot: r.b.slot, inode: r.b.inode}
}

// Bind registers a listening TCP socket (a *net.TCPListener, or anything
// else giving access to its descriptor) so that Route can send
// connections to it. The socket must be listening, TCP over IPv4 or IPv6,
// and not MPTCP: listen with net.ListenConfig.SetMultipathTCP(false). The
// engine does not keep the socket open; closing it removes it from the
// SOCKMAP (its ports then get RST), and Unbind frees its slot.
func (s *Steering) Bind(ln syscall.Conn) (Socket, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.released {
		return Socket{}, errors.New("sk_lookup: this Steering was released")
	}
	raw, err := ln.SyscallConn()
	if err != nil {
		return Socket{}, fmt.Errorf("sk_lookup: reaching the listener's socket: %w", err)
	}
	var b *bound
	var ierr error
	if err := raw.Control(func(fd uintptr) { b, ierr = e.bindFD(int(fd)) }); err != nil {
		return Socket{}, fmt.Errorf("sk_lookup: reaching the listener's socket: %w", err)
	}
	if ierr != nil {
		return Socket{}, ierr
	}
	e.nextID++
	r := &registration{id: e.nextID, b: b, owner: s}
	b.regs++
	e.regs[r.id] = r
	return r.socket(), nil
}

// bindFD puts the socket in the SOCKMAP, or finds it there already.
func (e *engine) bindFD(fd int) (*bound, error) {
	info, err := inspect(fd)
	if err != nil {
		return nil, err
	}
	if b, ok := e.byCookie[info.cookie]; ok {
		return b, nil
	}
	slot, err := e.slots.alloc()
	if err != nil {
		return nil, fmt.Errorf("sk_lookup: listener %s: %w", info.addr, err)
	}
	if err := e.objs.sockets.Update(slot, uint64(fd), ebpf.UpdateAny); err != nil {
		e.slots.free(slot)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil, fmt.Errorf("sk_lookup: listener %s cannot be steered to "+
				"(the kernel refuses it in a SOCKMAP; is it MPTCP?): %w", info.addr, err)
		}
		return nil, fmt.Errorf("sk_lookup: putting listener %s in the socket map: %w", info.addr, err)
	}
	info.slot = slot
	e.byCookie[info.cookie] = info
	return info, nil
}

// inspect checks that fd is a socket the engine can steer to and
// describes it.
func inspect(fd int) (*bound, error) {
	b := &bound{addr: fmt.Sprintf("fd %d", fd)}
	if sa, err := unix.Getsockname(fd); err == nil {
		b.addr = sockaddrString(sa)
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return nil, fmt.Errorf("sk_lookup: listener %s: not a socket: %w", b.addr, err)
	}
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	proto, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	switch {
	case domain != unix.AF_INET && domain != unix.AF_INET6:
		return nil, fmt.Errorf("sk_lookup: listener %s: socket family %d is not IPv4 or IPv6", b.addr, domain)
	case proto == ipprotoMPTCP:
		return nil, fmt.Errorf("sk_lookup: listener %s is an MPTCP socket, and a SOCKMAP takes only "+
			"plain TCP sockets: listen with net.ListenConfig.SetMultipathTCP(false)", b.addr)
	case typ != unix.SOCK_STREAM || proto != unix.IPPROTO_TCP:
		return nil, fmt.Errorf("sk_lookup: listener %s is not a TCP socket (type %d, protocol %d)", b.addr, typ, proto)
	}
	if listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || listening == 0 {
		return nil, fmt.Errorf("sk_lookup: socket %s is not listening: call listen first", b.addr)
	}
	b.v4, b.v6 = domain == unix.AF_INET, domain == unix.AF_INET6
	if b.v6 {
		v6only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		b.v4 = err == nil && v6only == 0 // a dual-stack [::] socket takes IPv4 too
	}
	if b.cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE); err != nil {
		return nil, fmt.Errorf("sk_lookup: listener %s: reading its socket cookie: %w", b.addr, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("sk_lookup: listener %s: %w", b.addr, err)
	}
	b.inode = st.Ino
	return b, nil
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return fmt.Sprintf("%v", sa)
}

// Unbind removes the registration: the routes still pointing at it are
// removed (those ports answer RST unless another socket listens there),
// and with the socket's last registration its SOCKMAP slot is freed.
func (s *Steering) Unbind(sock Socket) error {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	r, err := s.checkLocked(sock)
	if err != nil {
		return err
	}
	return s.e.unbindLocked(r)
}

func (e *engine) unbindLocked(r *registration) error {
	if err := e.routes.removeOwner(e.objs.routes, r.id); err != nil {
		return fmt.Errorf("sk_lookup: unbinding %v: %w", r.socket(), err)
	}
	delete(e.regs, r.id)
	b := r.b
	if b.regs--; b.regs > 0 {
		return nil
	}
	delete(e.byCookie, b.cookie)
	// A closed socket has already left the SOCKMAP.
	if err := e.objs.sockets.Delete(b.slot); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("sk_lookup: removing listener %s from the socket map: %w", b.addr, err)
	}
	e.slots.free(b.slot)
	return nil
}

// slotAllocator hands out SOCKMAP indexes, reusing freed ones first.
type slotAllocator struct {
	freed []uint32
	next  uint32
	max   uint32
}

func (a *slotAllocator) alloc() (uint32, error) {
	if n := len(a.freed); n > 0 {
		slot := a.freed[n-1]
		a.freed = a.freed[:n-1]
		return slot, nil
	}
	if a.next >= a.max {
		return 0, fmt.Errorf("all %d socket slots are in use", a.max)
	}
	a.next++
	return a.next - 1, nil
}

func (a *slotAllocator) free(slot uint32) { a.freed = append(a.freed, slot) }

// SocketInode returns the inode of a socket (a listener or a connection),
// as /proc/net/tcp shows it: the caller's own sockets to pass to
// ForeignListeners.
func SocketInode(c syscall.Conn) (uint64, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return 0, err
	}
	return st.Ino, serr
}

var _ syscall.Conn = (*net.TCPListener)(nil)
