package tcpproxy

import (
	"net"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/evloop"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/probe"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// loopConn is one client connection proxied on an event loop: the
// handler's evloop.Session, and the record the access log and the metrics
// are written from. It is the connection's one allocation besides the
// evloop.Conn; a connection with a PROXY header to send has its header in
// the same allocation (loopConnPP).
//
// Its methods run on the loop, one at a time, and must not block: the
// dial loop of the goroutine path (Handler.dial) is spread over Next,
// DialFailed and Connected; Done does what Handle does after its relay
// returns, and queues the access log entry (offLoop). The rare log
// lines of a target changing state are queued the same way.
type loopConn struct {
	h        *Handler
	conn     *evloop.Conn // the client's address, when it was accepted
	preamble []byte       // the PROXY header for the target, or nil

	cur    *target     // being dialled
	res    *resolution // cur's addresses
	target *target     // connected to; nil if none was reached

	dialStart          int64 // sinceStart of the first dial
	connect, duration  time.Duration
	bytesUp, bytesDown int64

	next      uint16 // the next of addrs to dial
	picks     int32  // picks made: at most one per target, as Handler.dial
	attempts  int32  // targets dialled
	localPort uint16 // for the access log (0 without one)
	reason    relay.Reason
	rejection history.Reason // why no target was reached, if rejected
	rejected  bool           // giveUp rejected the client (not: it reached a target, or its dial was cut short)
	acquired  bool           // a per-client limiter count to release
	local     bool           // a dial failed for a local reason: reject, try no other target
}

// loopConnPP is a loopConn with room for its PROXY header.
type loopConnPP struct {
	loopConn
	buf [maxPreamble]byte
}

// loopProxied counts the connections handed to a loop (for tests).
var loopProxied atomic.Uint64

// processStart is the origin of sinceStart.
var processStart = time.Now()

// sinceStart reads the monotonic clock cheaply.
func sinceStart() int64 { return int64(time.Since(processStart)) }

// acceptDirect serves a connection of the app's sockets from their accept
// loop's goroutine, before any layer4 goroutine exists (view.direct): the
// client checks, max_connections, and the hand-over to a loop, none of
// which waits. It returns false, having counted nothing, for a
// connection the loops cannot take (a PROXY header to read first, names
// not looked up yet, no loops): the layer4 server then serves it as
// usual. A rejected client is closed here, its log lines queued.
func (h *Handler) acceptDirect(conn net.Conn) (handled bool) {
	ec, ok := conn.(*evloop.Conn)
	if !ok || !h.set.resolved.Load() {
		return false
	}
	client := unmapped(ec.RemoteAddrPort())
	if cc := &h.clients; cc.trusted != nil && cc.trusted.Contains(client.Addr()) {
		return false // its PROXY header is read on a goroutine
	}
	ls := h.loops()
	if ls == nil {
		return false
	}
	defer func() {
		if r := recover(); r != nil {
			h.logger.Error("panic while handing a connection to a loop",
				zap.String("app", h.App), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			_ = ec.Close()
			handled = true
		}
	}()
	h.checksOnce.Do(h.start)
	s := session{accepted: ec.AcceptedAt(), client: client}
	if h.access != nil { // the access log is the only reader
		s.localPort = int(ec.LocalPort())
	}
	st := h.state
	reason, refused, acquired := h.admitClient(&s)
	if !refused && !h.enter(client.Addr(), acquired) {
		reason, refused = reasonMaxConnections, true
	}
	if refused {
		st.countRejection(reason)
		_ = ec.Close()
		if h.access != nil {
			rs := new(session) // only here: s stays on the stack
			*rs = s
			offLoop.put(logFunc(func() { h.logRejected(rs, reason) }))
		}
		return true
	}
	if h.proxyOnLoop(ls, ec, &s, acquired) {
		return true
	}
	st.active.Add(-1) // no loop took it: layer4 serves it, with its own checks
	if acquired {
		h.clients.limiter.Release(client.Addr())
	}
	return false
}

// proxyOnLoop hands ec to a loop with a new loopConn; false if no loop
// took it (ec is then still the caller's, for the goroutine path).
// s has passed the client checks; acquired says whether it holds a count
// on the per-client limiter, which the loopConn releases at its end.
func (h *Handler) proxyOnLoop(ls *evloop.Loops, ec *evloop.Conn, s *session, acquired bool) bool {
	var c *loopConn
	if h.ppVersion != 0 {
		pp := new(loopConnPP)
		c = &pp.loopConn
		local := ec.LocalAddrPort()
		c.localPort = local.Port()
		c.preamble = appendProxyHeader(pp.buf[:0], h.ppVersion, s.client, local)
	} else {
		c = new(loopConn)
		if h.access != nil { // the access log is the only reader
			c.localPort = ec.LocalPort()
		}
	}
	c.h, c.conn, c.acquired = h, ec, acquired
	// The loop may call c's methods before Proxy returns: c is set up.
	if _, err := ls.Proxy(ec, c, h.timeouts); err != nil {
		return false
	}
	loopProxied.Add(1)
	return true
}

// Next offers the next address to dial: another address of the target
// whose address just failed, or a target the policy picks.
func (c *loopConn) Next() (evloop.Target, bool) {
	if c.local {
		return c.giveUp()
	}
	if c.cur != nil && int(c.next) < len(c.res.addrs) {
		c.next++
		return c.dialTarget(c.res.addrs[c.next-1]), true
	}
	h := c.h
	for int(c.picks) < len(h.set.current()) {
		c.picks++
		n := h.set.bal.Pick(c.client().Addr())
		if n == nil {
			break
		}
		t := n.Owner.(*target)
		if !t.healthy.Load() && !t.claimTrial() {
			continue // down, and another connection is trying it: pick again
		}
		res := t.dial.Load()
		if res == nil {
			// A name not looked up yet (the handler sends connections
			// here once every name was; a DNS change raced it): not the
			// target's fault, another one is picked.
			t.trialAborted()
			continue
		}
		if c.attempts == 0 {
			c.dialStart = sinceStart()
		}
		c.attempts++
		c.cur, c.res, c.next = t, res, 1
		if len(res.addrs) == 0 {
			c.targetFailed(res.err) // the name's lookup failed: as a failed dial
			continue
		}
		return c.dialTarget(res.addrs[0]), true
	}
	return c.giveUp()
}

// giveUp rejects the client: no target could be reached. It is counted
// now, before the loop closes the client's socket, as the goroutine path
// counts it before the handler returns.
func (c *loopConn) giveUp() (evloop.Target, bool) {
	c.rejected, c.rejection = true, reasonNoHealthyTarget
	if c.attempts > 0 {
		c.rejection = reasonDialFailed // a target was tried (or its name failed)
	}
	if c.local {
		c.h.state.countRejection(c.rejection)
	} else {
		c.h.reject(c.rejection, true)
	}
	return evloop.Target{}, false
}

// client is the client's address, as the access log shows it (IPv4
// unmapped). Not kept apart: an idle connection costs its loopConn.
func (c *loopConn) client() netip.AddrPort { return unmapped(c.conn.RemoteAddrPort()) }

// dialTarget is the address addr of the target being dialled, with the
// handler's settings.
func (c *loopConn) dialTarget(addr netip.AddrPort) evloop.Target {
	h := c.h
	return evloop.Target{Addr: addr, DialTimeout: h.dialer.Timeout, KeepAlive: h.keepAlive,
		Preamble: c.preamble, Up: &c.cur.up, Down: &c.cur.down}
}

// DialFailed: a failure local to this machine (out of descriptors,
// memory or ports) says nothing of the target: the client is rejected and
// the target keeps its state. Otherwise, once each address of the target
// has failed, the target is marked down and the next one is tried.
func (c *loopConn) DialFailed(_ evloop.Target, err error) {
	t := c.cur
	if probe.IsLocal(err) {
		t.trialAborted()
		c.local = true
		if line := c.h.localFailureLine(t, err); line != nil {
			offLoop.put(logFunc(line))
		}
		return
	}
	if int(c.next) < len(c.res.addrs) {
		return // Next offers the target's next address
	}
	c.targetFailed(err)
}

// targetFailed counts a failed dial of the current target and marks it
// down (passive health check).
func (c *loopConn) targetFailed(err error) {
	t, h := c.cur, c.h
	c.cur = nil
	if t.dialFailed(err, h.retryAfter) {
		offLoop.put(logFunc(func() { logTransition(h.logger, t, err) }))
	}
	if t.named {
		h.set.refreshNames() // its address may have changed
	}
}

// Connected: the target is reached; counted as the goroutine path counts
// it once its dial returns.
func (c *loopConn) Connected(_ evloop.Target, connectTime time.Duration) {
	t, h := c.cur, c.h
	if !t.healthy.Load() && t.dialSucceeded() {
		offLoop.put(logFunc(func() { logUp(h.logger, t, "a connection succeeded after down_interval") }))
	}
	t.connected(connectTime)
	c.target = t
	c.connect = time.Duration(sinceStart() - c.dialStart)
}

// Done: the connection ended, both sockets are closed. Counts, releases
// the app's and the client's counts, and queues the access log entry.
func (c *loopConn) Done(r relay.Reason, up, down int64) {
	h := c.h
	st := h.state
	c.reason, c.bytesUp, c.bytesDown = r, up, down
	c.duration = time.Since(c.conn.AcceptedAt())
	if t := c.target; t != nil {
		t.disconnected()
	}
	if !c.rejected && r <= relay.MaxReason {
		// Ended while connected, or while dialling (the client left,
		// or a shutdown or an operator closed it); a rejection was
		// counted by giveUp.
		st.ended(r, c.duration)
	}
	if c.acquired {
		h.clients.limiter.Release(c.client().Addr())
	}
	st.active.Add(-1)
	if h.access != nil {
		offLoop.put(c)
	}
}

// writeLog writes c's access log entry (on the log queue's goroutine).
func (c *loopConn) writeLog() {
	h := c.h
	level, reason := zapcore.InfoLevel, c.reason.String()
	if c.rejected {
		level, reason = rejectionLevel(c.rejection), c.rejection.String()
	}
	ce := h.access.Check(level, "connection closed")
	if ce == nil {
		return
	}
	e := entry{client: c.client(), localPort: int(c.localPort), target: c.target, attempts: int(c.attempts),
		duration: c.duration, bytesUp: c.bytesUp, bytesDown: c.bytesDown, reason: reason}
	if c.target != nil {
		e.connect = c.connect
	}
	h.writeEntry(ce, &e)
}
