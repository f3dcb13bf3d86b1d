//go:build linux

package evloop

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Go's keepalive defaults, which the SPEC's defaults match.
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// SetKeepAlive sets TCP keepalive on a socket as ka says, with
// net.KeepAliveConfig's meaning (Enable false turns it off). On a
// listening socket it is set once for every connection it accepts: Linux
// copies SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT to
// accepted sockets. It may be called again on a listening socket to
// change what the connections accepted from then on get.
func SetKeepAlive(rc syscall.RawConn, ka net.KeepAliveConfig) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setKeepAlive(int(fd), ka) }); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}

// setKeepAlive sets keepalive on fd as ka says (see SetKeepAlive): the one
// setter of the listening sockets (whose accepted sockets inherit it) and
// the dialled ones (Target.KeepAlive), so that both round durations the
// same way (keepAliveSeconds).
func setKeepAlive(fd int, ka net.KeepAliveConfig) error {
	if !ka.Enable {
		return rawSetsockopt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0)
	}
	if err := rawSetsockopt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return err
	}
	if secs := keepAliveSeconds(ka.Idle, defaultKeepAliveIdle); secs > 0 {
		if err := rawSetsockopt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs); err != nil {
			return err
		}
	}
	if secs := keepAliveSeconds(ka.Interval, defaultKeepAliveInterval); secs > 0 {
		if err := rawSetsockopt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs); err != nil {
			return err
		}
	}
	count := ka.Count
	if count == 0 {
		count = defaultKeepAliveCount
	}
	if count > 0 {
		return rawSetsockopt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, count)
	}
	return nil
}

// keepAliveSeconds rounds d up to whole seconds, the kernel's unit (as
// Go's net package does: 1.5s is 2 s, never 0): zero means def, negative
// means leave the system's value (0).
func keepAliveSeconds(d, def time.Duration) int {
	if d == 0 {
		d = def
	}
	if d < 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// dialSocket creates a nonblocking socket for addr with the options a
// dialled socket needs, and starts connecting it. The socket addresses
// are the loop's, reused so that a dial allocates nothing.
func (l *loop) dialSocket(t *Target) (int, error) {
	a := t.Addr.Addr().Unmap()
	family := unix.AF_INET
	sa, size := unsafe.Pointer(&l.sa4), unsafe.Sizeof(l.sa4)
	if a.Is4() {
		l.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: netPort(t.Addr.Port()), Addr: a.As4()}
	} else {
		family = unix.AF_INET6
		l.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: netPort(t.Addr.Port()), Addr: a.As16(),
			Scope_id: zoneID(a)}
		sa, size = unsafe.Pointer(&l.sa6), unsafe.Sizeof(l.sa6)
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := dialOptions(fd); err != nil {
		rawClose(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	if err := rawConnect(fd, sa, size); err != nil && err != unix.EINPROGRESS {
		rawClose(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// netPort returns a port as a socket address holds it: in network byte
// order, whatever the machine's.
func netPort(port uint16) uint16 {
	var p uint16
	b := (*[2]byte)(unsafe.Pointer(&p))
	b[0], b[1] = byte(port>>8), byte(port)
	return p
}

// dialOptions sets what a dialled socket cannot inherit from a listener:
// urgent data inline (see SetListenerOptions) and no Nagle delay for the
// small bursts a proxy forwards. Keepalive comes later (keepAliveDelay).
func dialOptions(fd int) error {
	if err := rawSetsockopt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1); err != nil {
		return err
	}
	return rawSetsockopt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// zoneID returns the interface index of an IPv6 zone: a number, or an
// interface name (looked up in the kernel, a rare case: link-local targets).
func zoneID(a netip.Addr) uint32 {
	z := a.Zone()
	if z == "" {
		return 0
	}
	if n, err := strconv.ParseUint(z, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(z); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// dialError describes a failed dial as net.Dialer would.
func dialError(t *Target, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(t.Addr), Err: err}
}

// soError returns the pending error of a socket (a failed connect, a reset).
func soError(fd int) error {
	errno, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if errno == 0 {
		return nil
	}
	return os.NewSyscallError("connect", unix.Errno(errno))
}
