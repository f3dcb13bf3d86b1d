//go:build linux

package evloop

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrConverted is returned by Loops.Proxy for a Conn that was read or
// written: it now belongs to Go's netpoller (see Conn.TCPConn).
var ErrConverted = errors.New("evloop: connection was converted to a *net.TCPConn by a Read or Write")

// Conn is a client socket accepted with accept4 that Go's netpoller never
// registers: handing it to a loop (Loops.Proxy) costs one epoll_ctl.
//
// It implements net.Conn so that a caddy-l4 server can wrap it. The
// addresses come from the accept (RemoteAddr) and from one getsockname on
// first use (LocalAddr: the address the client dialled, which is not the
// listener's under sk_lookup). Deadlines are only recorded until the
// connection is converted. Close closes the socket, unless a loop owns it.
//
// Read, Write and CloseWrite are the rare case (something before the
// proxy handler reads, such as a caddy-l4 matcher): the first one converts the socket
// into a *net.TCPConn registered with the netpoller, about a dozen system
// calls (dup, two epoll_ctl, getsockopt, getsockname, getpeername, close,
// and Go's TCP_NODELAY and keepalive defaults), and delegates to it.
type Conn struct {
	fd       int32          // immutable; invalid once converted or closed
	state    connState      // guarded by mu
	port     uint16         // the local port, if the listener knows it (AssumeLocalAddr)
	remote   netip.AddrPort // from the accept
	accepted int64          // loop clock (mono) at the accept

	mu    sync.Mutex
	local netip.AddrPort // once asked
	ext   *connExt       // deadlines set before conversion; the converted conn

	p pair // the loop's state, once proxied
}

type connState uint8

// connExt is what only some connections need.
type connExt struct {
	read, write time.Time    // deadlines recorded before conversion
	tc          *net.TCPConn // once converted
}

const (
	stateOpen      connState = iota // ours to proxy, convert or close
	stateProxied                    // a loop owns the socket
	stateConverted                  // tc owns the socket
	stateClosed
)

// RemoteAddrPort returns the client's address without allocating.
func (c *Conn) RemoteAddrPort() netip.AddrPort { return c.remote }

// AcceptedAt returns when the connection was accepted (Timeouts.MaxDuration
// counts from then; so does an access log's duration).
func (c *Conn) AcceptedAt() time.Time { return epoch.Add(time.Duration(c.accepted)) }

// RemoteAddr returns the client's address (a new *net.TCPAddr: a proxied
// connection keeps no more than the address itself).
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// LocalAddr returns the address the client connected to, asked of the
// socket on the first call. Once a loop owns the socket it can no longer
// be asked: a first call then returns an empty *net.TCPAddr.
func (c *Conn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.localLocked(); a.IsValid() {
		return net.TCPAddrFromAddrPort(a)
	}
	if c.state == stateConverted {
		return c.ext.tc.LocalAddr()
	}
	return &net.TCPAddr{}
}

// LocalPort is the port the client connected to: without a system call
// when the listener knows it (AssumeLocalAddr), else LocalAddrPort's.
func (c *Conn) LocalPort() uint16 {
	if c.port != 0 {
		return c.port
	}
	return c.LocalAddrPort().Port()
}

// LocalAddrPort is LocalAddr without allocating: the zero AddrPort when
// it cannot be known (see LocalAddr).
func (c *Conn) LocalAddrPort() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.localLocked(); a.IsValid() || c.state != stateConverted {
		return a
	}
	if ta, ok := c.ext.tc.LocalAddr().(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// localLocked asks the socket for its address once, while it is ours.
func (c *Conn) localLocked() netip.AddrPort {
	if !c.local.IsValid() && c.state == stateOpen {
		if sa, err := syscall.Getsockname(int(c.fd)); err == nil { // see Listener.Accept
			c.local = addrPort(sa)
		}
	}
	return c.local
}

// Read converts the connection (see Conn) and reads from it.
func (c *Conn) Read(b []byte) (int, error) {
	tc, err := c.TCPConn()
	if err != nil {
		return 0, err
	}
	return tc.Read(b)
}

// Write converts the connection (see Conn) and writes to it.
func (c *Conn) Write(b []byte) (int, error) {
	tc, err := c.TCPConn()
	if err != nil {
		return 0, err
	}
	return tc.Write(b)
}

// CloseWrite converts the connection (see Conn) and shuts down its
// writing side: the half-close a copy passes on.
func (c *Conn) CloseWrite() error {
	tc, err := c.TCPConn()
	if err != nil {
		return err
	}
	return tc.CloseWrite()
}

// Close closes the socket. Once a loop owns it, Close does nothing: the
// loop closes it when the proxied connection ends.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateOpen:
		c.state = stateClosed
		return os.NewSyscallError("close", unix.Close(int(c.fd)))
	case stateConverted:
		c.state = stateClosed
		return c.ext.tc.Close()
	case stateProxied:
		return nil
	}
	return net.ErrClosed
}

// SetDeadline sets both deadlines (see SetReadDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	return c.setDeadline(t, true, true)
}

// SetReadDeadline records the deadline and applies it once the
// connection is converted; until then nothing reads, so it is moot.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, true, false)
}

// SetWriteDeadline records the deadline (see SetReadDeadline).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, false, true)
}

func (c *Conn) setDeadline(t time.Time, read, write bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateConverted:
		if read && write {
			return c.ext.tc.SetDeadline(t)
		} else if read {
			return c.ext.tc.SetReadDeadline(t)
		}
		return c.ext.tc.SetWriteDeadline(t)
	case stateOpen:
		if c.ext == nil {
			c.ext = new(connExt)
		}
		if read {
			c.ext.read = t
		}
		if write {
			c.ext.write = t
		}
		if c.ext.read.IsZero() && c.ext.write.IsZero() {
			c.ext = nil // what caddy-l4 does after matching: nothing to keep
		}
		return nil
	case stateProxied:
		return nil // the loop's timeouts govern
	}
	return net.ErrClosed
}

// TCPConn converts the connection, once, into a *net.TCPConn that Go's
// netpoller serves, and returns it; the Conn then delegates to it. Use it
// for a copy path of your own (for example splice between two
// *net.TCPConn). Go sets its keepalive defaults (15s, 15s, 9) on it.
func (c *Conn) TCPConn() (*net.TCPConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateConverted:
		return c.ext.tc, nil
	case stateProxied:
		return nil, errors.New("evloop: connection is owned by a loop")
	case stateClosed:
		return nil, net.ErrClosed
	}
	// net.FileConn dups the socket: the new descriptor is the one the
	// netpoller registers, and ours is closed.
	f := os.NewFile(uintptr(c.fd), "evloop")
	nc, err := net.FileConn(f)
	_ = f.Close()
	c.state = stateConverted
	if err != nil {
		c.state = stateClosed
		return nil, err
	}
	tc := nc.(*net.TCPConn)
	if c.ext != nil {
		_ = tc.SetReadDeadline(c.ext.read)
		_ = tc.SetWriteDeadline(c.ext.write)
	}
	c.ext = &connExt{tc: tc}
	return tc, nil
}

// take hands the socket to a loop.
func (c *Conn) take() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateOpen:
		c.state, c.ext = stateProxied, nil
		return nil
	case stateConverted:
		return ErrConverted
	}
	return net.ErrClosed
}

// giveBack undoes take when no loop could take the socket.
func (c *Conn) giveBack() {
	c.mu.Lock()
	c.state = stateOpen
	c.mu.Unlock()
}

// addrPort converts an IPv4 or IPv6 socket address.
func addrPort(sa syscall.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(withZone(netip.AddrFrom16(sa.Addr), sa.ZoneId), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// withZone names the zone of a link-local IPv6 address (a kernel query:
// the rare case).
func withZone(a netip.Addr, zone uint32) netip.Addr {
	if zone != 0 {
		if ifi, err := net.InterfaceByIndex(int(zone)); err == nil {
			return a.WithZone(ifi.Name)
		}
	}
	return a
}
