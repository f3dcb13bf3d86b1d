package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/evloop"
)

// Listening sockets that survive a config reload.
//
// Caddy binds a new SO_REUSEPORT socket for every config and closes the old
// one, which resets the connections queued on the old socket during a
// reload. Instead, the tcpproxy apps listen on the network "tcpproxy"
// (addresses such as "tcpproxy/127.0.0.1:5001"), served from this pool: one
// socket per (host, port), reference-counted by the configs that use it.
// Its accept loop hands every connection to the newest config's listener,
// so a port kept by a reload keeps its socket and its accept queue, and a
// connection is never handed to a config that is shutting down. The
// sockets are bound without SO_REUSEPORT, so a port held by another
// process is an error, not silently shared.
//
// Apps in the sk_lookup listener mode have one socket per bind host in
// the same pool, which a BPF program steers all their ports to
// (listener_steered.go); their layer4 servers listen on the network
// "tcpproxy-app" (listener_app.go).
const listenNetwork = "tcpproxy"

func init() {
	caddy.RegisterNetwork(listenNetwork, listenShared)
}

// listenConfig sets the options accepted sockets inherit (urgent data
// inline, no Nagle delay: see evloop.SetListenerOptions; keepalive is set
// per app in App.Start, see setKeepalive), so that an accepted socket
// needs no system call of its own. Go's own per-connection keepalive is off: it would cost
// four setsockopt calls on every socket Go accepts. Multipath TCP is off:
// plain TCP clients do not need it, and an MPTCP socket cannot be
// steered by sk_lookup.
var listenConfig = func() net.ListenConfig {
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, rc syscall.RawConn) error {
		return evloop.SetListenerOptions(rc)
	}}
	lc.SetMultipathTCP(false)
	return lc
}()

// listen opens a listening socket of the pool on addr. Its connections
// are *evloop.Conn, for the loops (datapath.go), unless the goroutine
// path is forced or the loops cannot run here: then *net.TCPConn.
func listen(addr string) (net.Listener, error) {
	ln, err := listenConfig.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	if ln, err = forLoops(ln); err != nil {
		return nil, err
	}
	if el, ok := ln.(*evloop.Listener); ok {
		// A per-port socket gets only connections to its own address
		// (sk_lookup steers to steered sockets only): when that is one
		// IP address, a connection's local address costs no getsockname.
		el.AssumeLocalAddr()
	}
	return ln, nil
}

// forLoops makes ln, a new listening socket, accept *evloop.Conn (see
// listen); on error ln is closed.
func forLoops(ln net.Listener) (net.Listener, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok || goroutinePath.Load() {
		return ln, nil
	}
	el, err := evloop.NewListener(tl)
	if errors.Is(err, errors.ErrUnsupported) {
		return ln, nil
	}
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return el, nil
}

var sockets = &socketPool{byAddr: make(map[string]*sharedSocket), steered: make(map[steerKey]*sharedSocket)}

// socketPool holds the listening sockets of every config: per-port
// sockets by address, and the sk_lookup mode's one socket per app and
// bind host (listener_steered.go).
type socketPool struct {
	mu      sync.Mutex
	byAddr  map[string]*sharedSocket
	steered map[steerKey]*sharedSocket
	seq     uint64 // orders the configs' port claims on steered sockets
}

// sharedSocket is one listening socket and the config-level listeners
// (views) it feeds, newest last.
type sharedSocket struct {
	addr  string
	ln    net.Listener
	refs  int       // guarded by socketPool.mu
	steer *steering // the sk_lookup state of a steered socket; nil for a per-port one
	inode uint64    // guarded by socketPool.mu; 0 until the foreign-listener guard needs it

	mu      sync.Mutex
	views   []*view
	changed chan struct{} // closed and replaced when views change
	closed  chan struct{}
}

// acquire returns the socket for addr, binding it on first use.
func (p *socketPool) acquire(addr string) (*sharedSocket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.byAddr[addr]; ok {
		s.refs++
		return s, nil
	}
	ln, err := listen(addr)
	if err != nil {
		if other := p.overlappingLocked(addr); other != "" && errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: this Caddy listens on %s for the running config, "+
				"and one socket cannot take over from the other; move a port between an address "+
				"and all interfaces in two reloads: one without the port, then one with it", err, other)
		}
		return nil, err
	}
	s := &sharedSocket{addr: addr, ln: ln, refs: 1, changed: make(chan struct{}), closed: make(chan struct{})}
	p.byAddr[addr] = s
	go s.acceptLoop()
	return s, nil
}

// overlappingLocked returns the address of a socket of the pool that
// keeps addr from being bound: another host on the same port, one of the
// two a wildcard. A reload that switches a port between a specific
// address and all interfaces meets it while the old config holds its
// socket. It returns "" if there is none.
func (p *socketPool) overlappingLocked(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	for other := range p.byAddr {
		h, pt, err := net.SplitHostPort(other)
		if err == nil && pt == port && h != host && (isWildcard(h) || isWildcard(host)) {
			return other
		}
	}
	for _, s := range p.steered {
		// A steered socket listens on an ephemeral port of its own.
		h, pt, err := net.SplitHostPort(s.ln.Addr().String())
		if err == nil && pt == port && (h == host || isWildcard(h) || isWildcard(host)) {
			return fmt.Sprintf("%s (the sk_lookup listener of app %q)", s.ln.Addr(), s.steer.key.app)
		}
	}
	return ""
}

func isWildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// setKeepalive sets the keepalive the socket's accepted connections
// inherit: on a new socket, and again on one a reload keeps, whose
// config may have changed it.
func (s *sharedSocket) setKeepalive(k net.KeepAliveConfig) error {
	sc, ok := s.ln.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return evloop.SetKeepAlive(rc, k)
}

// release drops a reference; the last one closes the socket.
func (p *socketPool) release(s *sharedSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.refs--
	if s.refs > 0 {
		return
	}
	if s.steer != nil {
		p.closeSteeredLocked(s)
	} else {
		delete(p.byAddr, s.addr)
	}
	close(s.closed)
	_ = s.ln.Close()
}

// addRefs takes one more reference on each socket, which the caller
// holds already.
func (p *socketPool) addRefs(socks []*sharedSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range socks {
		s.refs++
	}
}

// listenShared is the caddy.ListenerFunc of the "tcpproxy" network.
func listenShared(ctx context.Context, _, host, portRange string, portOffset uint, _ net.ListenConfig) (any, error) {
	start, _, _ := strings.Cut(portRange, "-")
	port, err := strconv.Atoi(start)
	if err != nil {
		return nil, fmt.Errorf("%s network: invalid port %q", listenNetwork, portRange)
	}
	port += int(portOffset)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	s, err := sockets.acquire(addr)
	if err != nil {
		return nil, err
	}
	v := newView(s)
	if a, ok := ctx.Value(managingAppKey{}).(*App); ok {
		v.direct = a.directFor(host, uint(port))
	}
	return v, nil
}

// acceptLoop accepts until the socket closes and hands each connection to
// the newest open view, waiting for one if there is none yet.
func (s *sharedSocket) acceptLoop() {
	var backoff time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			logAcceptFailure(s.addr, err, backoff)
			select {
			case <-time.After(backoff):
			case <-s.closed:
				return
			}
			continue
		}
		backoff = 0
		if s.steer != nil && s.steer.stray(conn) {
			resetConn(conn)
			continue
		}
		s.deliver(conn)
	}
}

// acceptFailures limits the log of failed accepts, for every socket of
// the pool, to one line a second at most, saying how many accepts failed
// since the line before. Out of file descriptors, every socket fails
// together, and a line per failure or per socket would flood the log.
var acceptFailures everySecond

// logAcceptFailure counts a failed accept on addr and writes the line if
// the last one is a second old.
func logAcceptFailure(addr string, err error, retry time.Duration) {
	n, ok := acceptFailures.allow()
	if !ok {
		return
	}
	// The socket pool outlives configs: the logger is the current one.
	caddy.Log().Named("tcpproxy").Error("accept failed: retrying",
		zap.String("address", addr), zap.Error(err), zap.Duration("retry_in", retry),
		zap.Int64("failed_accepts", n))
}

// rehome hands a connection accepted by a socket that closed before any
// config took it to the socket that serves its address now: a reload
// that switches an app between the sockets and sk_lookup modes closes
// the old mode's sockets while the new one's serve the same ports. With
// no such socket (the port was dropped) the connection is closed.
func (p *socketPool) rehome(conn net.Conn) {
	if home := p.serving(conn.LocalAddr()); home != nil {
		home.deliver(conn)
		return
	}
	_ = conn.Close()
}

// serving returns the open socket that takes new connections to addr, as
// the kernel chooses: a route to a steered socket (an exact address
// before a wildcard), else a per-port socket on the address or on all
// interfaces; nil if there is none.
func (p *socketPool) serving(addr net.Addr) *sharedSocket {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil
	}
	ip, port := ta.AddrPort().Addr().Unmap(), ta.AddrPort().Port()
	p.mu.Lock()
	defer p.mu.Unlock()
	if o := p.steeredLocked(ip, port); o != nil {
		return o
	}
	p4 := strconv.Itoa(int(port))
	for _, key := range []string{net.JoinHostPort(ip.String(), p4), ":" + p4, "0.0.0.0:" + p4, "[::]:" + p4} {
		if o, ok := p.byAddr[key]; ok {
			return o
		}
	}
	return nil
}

// resetConn closes conn with an RST, as a port nobody listens on would.
func resetConn(conn net.Conn) {
	if ec, ok := conn.(*evloop.Conn); ok {
		if tc, err := ec.TCPConn(); err == nil { // a stray: the rare case
			conn = tc
		}
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// deliver hands conn to the newest view. A view closing meanwhile makes it
// try the next newest; the socket closing hands it to the socket that
// serves its address now, if any (see rehome).
func (s *sharedSocket) deliver(conn net.Conn) {
	for {
		s.mu.Lock()
		var v *view
		if n := len(s.views); n > 0 {
			v = s.views[n-1]
		}
		changed := s.changed
		s.mu.Unlock()
		if v == nil {
			select {
			case <-changed:
				continue
			case <-s.closed:
				sockets.rehome(conn)
				return
			}
		}
		if v.direct != nil && v.direct(conn) {
			return
		}
		select {
		case v.conns <- conn:
			return
		case <-v.done:
		case <-changed: // a newer view appeared: prefer it
		case <-s.closed:
			sockets.rehome(conn)
			return
		}
	}
}

// newView returns a listener fed by the sockets, on whose references it
// takes over one each: Close releases them. A view of several sockets
// (an app's ports, in the auto mode's fallback) takes connections from
// all of them.
func newView(socks ...*sharedSocket) *view {
	v := &view{sockets: socks, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, s := range socks {
		s.mu.Lock()
		s.views = append(s.views, v)
		s.notifyLocked()
		s.mu.Unlock()
	}
	return v
}

func (s *sharedSocket) removeView(v *view) {
	s.mu.Lock()
	for i, w := range s.views {
		if w == v {
			s.views = append(s.views[:i], s.views[i+1:]...)
			break
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *sharedSocket) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// view is the net.Listener one config's layer4 server accepts from.
type view struct {
	sockets []*sharedSocket
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	// direct, for a view of the tcpproxy app's own, hands a connection
	// straight to an event loop from the accept loop's goroutine
	// (Handler.acceptDirect): no channel, no layer4 goroutine. false:
	// the layer4 server takes it as usual.
	direct func(net.Conn) bool
}

// Accept returns the next connection the sockets hand to this view.
func (v *view) Accept() (net.Conn, error) {
	select {
	case c := <-v.conns:
		return c, nil
	case <-v.done:
		return nil, net.ErrClosed
	}
}

// Close detaches the view; a socket stays open while another config
// holds it, so connections queued on it go to that config.
func (v *view) Close() error {
	v.once.Do(func() {
		close(v.done)
		for _, s := range v.sockets {
			s.removeView(v)
			sockets.release(s)
		}
	})
	return nil
}

// Addr is the (first) socket's address.
func (v *view) Addr() net.Addr { return v.sockets[0].ln.Addr() }
