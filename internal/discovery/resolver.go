package discovery

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"
)

// DefaultTimeout is how long one query waits for one resolver's answer
// before the next resolver is tried.
const DefaultTimeout = 2 * time.Second

// NewResolver returns Go's own resolver (PreferGo) sending its queries to
// servers, "ip:port" strings as ParseResolvers returns them. With no
// servers it asks the system's (those of /etc/resolv.conf).
//
// Each query goes to the servers in order: a server that does not answer
// within timeout, refuses the connection or answers SERVFAIL or REFUSED
// passes the query to the next one. UDP first; an answer with the
// truncated bit set is asked again over TCP, of the server that sent it.
//
// StrictErrors is set: when the A or the AAAA half of a lookup fails for a
// temporary reason the whole lookup fails, so a refresh never shrinks a set
// because one query timed out.
//
// The system's resolv.conf still decides the search domains, ndots and how
// many times Go repeats a query after the whole list failed (attempts),
// and /etc/hosts is read first for host names, as for any Go lookup.
func NewResolver(servers []string, timeout time.Duration) *net.Resolver {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := &dialer{servers: slices.Clone(servers), timeout: timeout}
	return &net.Resolver{PreferGo: true, StrictErrors: true, Dial: d.dial}
}

// dialer is the Dial of a resolver made by NewResolver. Go calls it for
// every query with the system's server address; it returns a conn that does
// the whole exchange with the configured servers instead.
type dialer struct {
	servers []string
	timeout time.Duration
}

func (d *dialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	servers := d.servers
	if len(servers) == 0 {
		servers = []string{address}
	}
	st := stateFrom(ctx)
	if st != nil && len(d.servers) > 0 {
		st.own.Store(true)
	}
	c := &exchangeConn{ctx: ctx, network: network, servers: servers, timeout: d.timeout, state: st}
	switch network {
	case "udp", "udp4", "udp6":
		// Go tells datagram from stream by the PacketConn interface.
		return packetConn{c}, nil
	case "tcp", "tcp4", "tcp6":
		return c, nil
	}
	return nil, fmt.Errorf("discovery: DNS over network %q is not supported", network)
}

// lookupState carries what the conns of one lookup learn back to Lookup,
// through the context Go hands to Dial. Go runs the A and AAAA queries in
// parallel, hence the atomics.
type lookupState struct {
	// noError: some answer handed to Go was a usable NOERROR, so the name
	// exists. Go reports NXDOMAIN and "no record of this type" with the
	// same error (DNSError.IsNotFound); this tells them apart.
	noError atomic.Bool
	// tcpFrom is 1 + the index of the server that sent a truncated answer:
	// the TCP retry asks it first instead of starting over at a dead one.
	tcpFrom atomic.Int32
	// answeredBy is the server of the last answer (for error messages: Go
	// names the system's server, not the one that answered).
	answeredBy atomic.Pointer[string]
	// own: the resolver has configured servers (Go's server name is wrong).
	own atomic.Bool
}

type stateKey struct{}

func withState(ctx context.Context, st *lookupState) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

func stateFrom(ctx context.Context) *lookupState {
	st, _ := ctx.Value(stateKey{}).(*lookupState)
	return st
}
