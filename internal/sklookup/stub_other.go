//go:build !linux

package sklookup

import (
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
)

// errUnsupported is what every entry point answers off Linux.
var errUnsupported = fmt.Errorf("sk_lookup listener mode is unsupported on %s: it needs Linux ≥ 5.9", runtime.GOOS)

// Available reports that sk_lookup is unsupported on this system.
func Available() error { return errUnsupported }

// Steering is the sk_lookup engine; on this system it cannot be acquired.
type Steering struct{}

// Acquire fails: sk_lookup is unsupported on this system.
func Acquire() (*Steering, error) { return nil, errUnsupported }

// Release fails: sk_lookup is unsupported on this system.
func (s *Steering) Release() error { return errUnsupported }

// Bind fails: sk_lookup is unsupported on this system.
func (s *Steering) Bind(ln syscall.Conn) (Socket, error) { return Socket{}, errUnsupported }

// Route fails: sk_lookup is unsupported on this system.
func (s *Steering) Route(addr netip.Addr, ports []uint16, sock Socket) error { return errUnsupported }

// Unroute fails: sk_lookup is unsupported on this system.
func (s *Steering) Unroute(addr netip.Addr, ports []uint16, sock Socket) error { return errUnsupported }

// Unbind fails: sk_lookup is unsupported on this system.
func (s *Steering) Unbind(sock Socket) error { return errUnsupported }

// ForeignListeners fails: it reads Linux's /proc/net/tcp.
func ForeignListeners(addr netip.Addr, ports []uint16, ours []uint64) ([]Listener, error) {
	return nil, errUnsupported
}

// SocketInode fails: socket inodes are a Linux notion here.
func SocketInode(c syscall.Conn) (uint64, error) { return 0, errUnsupported }

// AttachedPrograms fails: sk_lookup is unsupported on this system.
func AttachedPrograms() (int, error) { return 0, errUnsupported }
