package evloop

import (
	"net"
	"net/netip"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// Session is the caller's side of one proxied connection: it chooses the
// targets and hears how the connection went. Its methods run on the loop
// that owns the connection, one at a time: they must not block (no DNS, no
// I/O, no lock held for long), and a panic in one ends the process.
type Session interface {
	// Next returns the next target to dial, or ok=false to give up. It is
	// called again after each failed dial, so it must give up at some point
	// (for example after trying each target once).
	Next() (t Target, ok bool)
	// DialFailed reports that t could not be reached: refused, timed out,
	// or a local error such as EMFILE (err says which; the caller decides
	// whether to mark the target down).
	DialFailed(t Target, err error)
	// Connected reports the target the connection is proxied to, and how
	// long the connect took.
	Connected(t Target, connectTime time.Duration)
	// Done reports the end of the connection, once, after both sockets
	// are closed: why, and the bytes delivered client→target (up) and
	// target→client (down).
	Done(r Reason, up, down int64)
}

// Target is one address to dial and how.
type Target struct {
	// Addr is where to connect: an IP address, never a name (resolve
	// names before, off the loop).
	Addr netip.AddrPort
	// DialTimeout bounds the connect; ≤ 0: only the kernel's SYN retries
	// bound it.
	DialTimeout time.Duration
	// KeepAlive is set on the dialled socket, with net.Dialer's meaning:
	// Enable false leaves keepalive off; a zero Idle, Interval or Count
	// means 15s, 15s, 9; a negative one keeps the system's value. It is
	// set once the connection has lasted a second, which spares short
	// connections four system calls (see keepAliveDelay).
	KeepAlive net.KeepAliveConfig
	// Preamble is written to the target before any byte of the client
	// (a PROXY protocol header). It is not modified and must not change
	// until Done.
	Preamble []byte
	// Up and Down count the bytes delivered to the target and to the
	// client, burst by burst. Either may be nil.
	Up, Down Counter
}

// Counter counts bytes as they move; a Prometheus counter satisfies it.
type Counter = relay.Counter

// Timeouts end a connection by its traffic or its age; a value ≤ 0 is off.
// They are relay's, so that both data paths take one value. The loop
// checks them against a clock it reads once per wake-up, on a wheel of
// 10 ms slots: a timeout fires up to about 10 ms late.
type Timeouts = relay.Timeouts
