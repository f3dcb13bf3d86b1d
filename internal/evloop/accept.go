//go:build linux

package evloop

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Listener accepts connections for the loops: sockets taken with
// accept4, never registered with Go's netpoller, with no option set by Go
// (they inherit the listening socket's, see SetListenerOptions). It is a
// net.Listener whose Accept returns *Conn.
//
// Go's *net.TCPListener cannot be used for this: its RawConn refuses Read,
// so it cannot park in the netpoller waiting for a connection. A Listener
// holds the same listening socket in an *os.File instead, whose RawConn
// can.
type Listener struct {
	f      *os.File
	rc     syscall.RawConn
	addr   net.Addr
	closed atomic.Bool
	local  netip.AddrPort // every accepted connection's local address, if known (AssumeLocalAddr)
	port   uint16         // every accepted connection's local port, if known (AssumeLocalAddr)

	// One Accept at a time: its callback and results live here, bound
	// once, so that an accept allocates nothing but the Conn.
	mu       sync.Mutex
	acceptFn func(uintptr) bool
	nfd      int
	errno    syscall.Errno
	sa       syscall.RawSockaddrAny
}

// NewListener takes over ln's listening socket (its queue and its
// options) and closes ln. Closing the Listener closes the socket.
func NewListener(ln *net.TCPListener) (*Listener, error) {
	f, err := ln.File() // a dup; ln's own descriptor is closed below
	if err != nil {
		return nil, err
	}
	l := &Listener{f: f, addr: ln.Addr()}
	ln.Close()
	if l.rc, err = f.SyscallConn(); err != nil {
		f.Close()
		return nil, err
	}
	l.acceptFn = l.accept
	return l, nil
}

// Accept accepts one connection with accept4 inside the RawConn's Read
// callback, parking in the netpoller while none is queued. The result is
// a *Conn. Errors such as EMFILE are returned, in a *net.OpError, for the
// caller's backoff; after Close the error matches net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.rc.Read(l.acceptFn)
	if err == nil && l.errno != 0 {
		err = os.NewSyscallError("accept4", l.errno)
	}
	if err != nil {
		if l.closed.Load() {
			err = net.ErrClosed // an *os.File says "file already closed"
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
	}
	return &Conn{fd: int32(l.nfd), remote: rawAddrPort(&l.sa), local: l.local, port: l.port, accepted: mono()}, nil
}

// AssumeLocalAddr says that every connection the socket accepts is to
// the address it listens on, which is true of a socket that no sk_lookup
// program steers other addresses or ports to: a Conn's LocalPort then
// needs no system call, nor, for a socket bound to one IP address (not a
// wildcard), its LocalAddr. Call it before the first Accept.
func (l *Listener) AssumeLocalAddr() {
	ta, ok := l.addr.(*net.TCPAddr)
	if !ok {
		return
	}
	ap := ta.AddrPort()
	l.port = ap.Port()
	if !ta.IP.IsUnspecified() {
		l.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
}

// accept is the RawConn.Read callback of Accept. The system call is made
// directly (and raw, see sys.go): x/sys/unix's Accept4 asks each IPv4
// socket for its protocol (an L2TP check, a getsockopt per connection)
// and both packages allocate the peer's address.
func (l *Listener) accept(fd uintptr) bool {
	for {
		size := uint32(unsafe.Sizeof(l.sa))
		nfd, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&l.sa)),
			uintptr(unsafe.Pointer(&size)), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case syscall.EINTR, syscall.ECONNABORTED:
			continue // as Go's accept does: the next one may be fine
		case syscall.EAGAIN:
			return false // park until one is queued
		}
		l.nfd, l.errno = int(nfd), errno
		return true
	}
}

// rawAddrPort decodes an IPv4 or IPv6 socket address.
func rawAddrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		in := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), port(in.Port))
	case syscall.AF_INET6:
		in := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(withZone(netip.AddrFrom16(in.Addr), in.Scope_id), port(in.Port))
	}
	return netip.AddrPort{}
}

// port converts a port in network byte order, as the kernel stores it.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// Close closes the listening socket; a parked Accept returns.
func (l *Listener) Close() error {
	l.closed.Store(true)
	return l.f.Close()
}

// Addr returns the address the socket is bound to.
func (l *Listener) Addr() net.Addr { return l.addr }

// SyscallConn gives access to the listening socket (to change its options
// with Control, for example).
func (l *Listener) SyscallConn() (syscall.RawConn, error) { return l.rc, nil }

// SetListenerOptions sets, on a listening socket, the options the sockets
// it accepts inherit, so that no accepted socket needs a system call of
// its own: SO_OOBINLINE (urgent data stays in the stream, in order, where
// splice and read see it) and TCP_NODELAY. Keepalive, which they inherit
// too, is SetKeepAlive's. Use it as, or from, a net.ListenConfig's
// Control; disable MPTCP there too (SetMultipathTCP(false)): accepted
// MPTCP sockets behave differently.
func SetListenerOptions(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		s := int(fd)
		if serr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}
