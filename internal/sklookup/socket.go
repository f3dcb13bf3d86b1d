package sklookup

import (
	"fmt"
	"net/netip"
)

// Socket is one registration of a listening socket with the steering
// engine, as Bind returns it. Registering the same socket twice (a socket
// kept across a config reload) gives two registrations sharing one
// SOCKMAP slot, so each config routes and unroutes only its own ports.
type Socket struct {
	id    uint32
	slot  uint32
	inode uint64
}

// Slot is the SOCKMAP index holding the socket. Slots freed by Unbind are
// reused.
func (s Socket) Slot() uint32 { return s.slot }

// Inode is the socket's inode number, as /proc/net/tcp shows it; pass it
// to ForeignListeners so the socket does not count as foreign.
func (s Socket) Inode() uint64 { return s.inode }

// String describes the registration for errors and logs.
func (s Socket) String() string {
	return fmt.Sprintf("socket %d (slot %d, registration %d)", s.inode, s.slot, s.id)
}

// Listener is a TCP socket in the LISTEN state, as /proc/net/tcp and
// /proc/net/tcp6 show it.
type Listener struct {
	Addr  netip.AddrPort
	Inode uint64
}
