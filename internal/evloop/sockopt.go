//go:build linux

package evloop

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Go's keepalive defaults, which the SPEC's defaults match.
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// setKeepAlive turns keepalive on with ka's settings (see Target.KeepAlive).
func setKeepAlive(fd int, ka net.KeepAliveConfig) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return err
	}
	if secs := keepAliveSeconds(ka.Idle, defaultKeepAliveIdle); secs > 0 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs); err != nil {
			return err
		}
	}
	if secs := keepAliveSeconds(ka.Interval, defaultKeepAliveInterval); secs > 0 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs); err != nil {
			return err
		}
	}
	count := ka.Count
	if count == 0 {
		count = defaultKeepAliveCount
	}
	if count > 0 {
		return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, count)
	}
	return nil
}

// keepAliveSeconds rounds d up to whole seconds, the kernel's unit: zero
// means def, negative means leave the system's value (0).
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
// dialled socket needs, and starts connecting it. The sockaddr structs are
// the loop's, reused so that a dial allocates nothing.
func (l *loop) dialSocket(t *Target) (int, error) {
	a := t.Addr.Addr().Unmap()
	family := unix.AF_INET
	var sa unix.Sockaddr
	if a.Is4() {
		l.sa4.Addr, l.sa4.Port = a.As4(), int(t.Addr.Port())
		sa = &l.sa4
	} else {
		family = unix.AF_INET6
		l.sa6.Addr, l.sa6.Port, l.sa6.ZoneId = a.As16(), int(t.Addr.Port()), zoneID(a)
		sa = &l.sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := dialOptions(fd); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// dialOptions sets what a dialled socket cannot inherit from a listener:
// urgent data inline (see SetListenerOptions) and no Nagle delay for the
// small bursts a proxy forwards. Keepalive comes later (keepAliveDelay).
func dialOptions(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
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
