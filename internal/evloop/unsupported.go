//go:build !linux

package evloop

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// The loops need epoll and splice: elsewhere this package only compiles,
// and callers take their goroutine path.

// ErrConverted and ErrClosed: see the Linux documentation.
var (
	ErrConverted = errors.New("evloop: connection was converted to a *net.TCPConn by a Read or Write")
	ErrClosed    = errors.New("evloop: the pool's loops have exited")
)

// Conn is never created outside Linux.
type Conn struct{ net.Conn }

// RemoteAddrPort returns the client's address.
func (c *Conn) RemoteAddrPort() netip.AddrPort { return netip.AddrPort{} }

// LocalPort returns 0.
func (c *Conn) LocalPort() uint16 { return 0 }

// LocalAddrPort returns the zero AddrPort.
func (c *Conn) LocalAddrPort() netip.AddrPort { return netip.AddrPort{} }

// AcceptedAt returns the zero time.
func (c *Conn) AcceptedAt() time.Time { return time.Time{} }

// CloseWrite is unsupported outside Linux.
func (c *Conn) CloseWrite() error { return errors.ErrUnsupported }

// TCPConn is unsupported outside Linux.
func (c *Conn) TCPConn() (*net.TCPConn, error) { return nil, errors.ErrUnsupported }

// Listener is never created outside Linux.
type Listener struct{ net.Listener }

// NewListener is unsupported outside Linux.
func NewListener(*net.TCPListener) (*Listener, error) { return nil, errors.ErrUnsupported }

// AssumeLocalAddr does nothing outside Linux.
func (l *Listener) AssumeLocalAddr() {}

// SyscallConn is unsupported outside Linux.
func (l *Listener) SyscallConn() (syscall.RawConn, error) { return nil, errors.ErrUnsupported }

// SetListenerOptions does nothing outside Linux.
func SetListenerOptions(syscall.RawConn) error { return nil }

// SetKeepAlive does nothing outside Linux.
func SetKeepAlive(syscall.RawConn, net.KeepAliveConfig) error { return nil }

// Loops is never created outside Linux.
type Loops struct{}

// Acquire is unsupported outside Linux.
func Acquire() (*Loops, error) { return nil, errors.ErrUnsupported }

// Release does nothing outside Linux.
func (*Loops) Release() {}

// Released reports true.
func (*Loops) Released() bool { return true }

// Proxy is unsupported outside Linux.
func (*Loops) Proxy(*Conn, Session, Timeouts) (Handle, error) {
	return Handle{}, errors.ErrUnsupported
}

// CloseAll does nothing outside Linux.
func (*Loops) CloseAll(Reason) {}

// CloseWhere does nothing outside Linux.
func (*Loops) CloseWhere(Reason, func(Session) bool) int { return 0 }

// Active is 0 outside Linux.
func (*Loops) Active() int { return 0 }

// Handle is never created outside Linux.
type Handle struct{}

// Close does nothing outside Linux.
func (Handle) Close(Reason) {}
