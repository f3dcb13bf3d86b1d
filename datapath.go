package tcpproxy

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/evloop"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// The two data paths.
//
// The event loops (internal/evloop) proxy the common case: a plain TCP
// client from one of the app's own sockets (listener.go accepts them as
// *evloop.Conn), no layer4 handler before ours that read from or wrapped
// the connection, and targets whose addresses are known without a DNS
// lookup on the loop (resolve.go). The handler checks the client, hands
// the socket to a loop and returns; the loop dials, relays and reports
// the end to a loopConn (loopconn.go), which does the bookkeeping the
// goroutine path does after its relay returns.
//
// Everything else takes the goroutine path (internal/relay, copy.go):
// connections of Caddy's own listeners (a layer4 route of the user's
// own, perhaps after a TLS or PROXY-protocol handler), connections a
// matcher read from, clients whose PROXY header we read, targets whose
// names have not been resolved yet.

// goroutinePath forces the goroutine path for every connection: the
// app's sockets then accept *net.TCPConn, as before the loops. It is
// set by the environment variable CADDY_TCPPROXY_DATAPATH=goroutine (for
// debugging, and for comparisons such as the syscall census in
// BENCHMARKS.md), and by tests that run on both paths. Sockets read it
// when they are opened, handlers when they are provisioned.
var goroutinePath atomic.Bool

func init() {
	goroutinePath.Store(os.Getenv("CADDY_TCPPROXY_DATAPATH") == "goroutine")
}

// loopPools are the event-loop pools this package acquired: the
// process-wide pool (evloop.Acquire) while any config holds it, and a
// pool released by every config that still owns connections, until they
// end. Shutdown drains, close_on_down and the admin API's close reach
// loop connections through it.
var loopPools = &poolRegistry{seen: make(map[*evloop.Loops]struct{})}

type poolRegistry struct {
	mu   sync.Mutex
	seen map[*evloop.Loops]struct{} // acquired; a released one until it empties

	warnOnce sync.Once
}

// acquire takes a reference on the process-wide pool, starting it if
// need be; nil when the goroutine path is forced or the loops cannot run
// here (then every connection takes the goroutine path).
func (r *poolRegistry) acquire() *evloop.Loops {
	if goroutinePath.Load() {
		return nil
	}
	ls, err := evloop.Acquire()
	if err != nil {
		r.warnOnce.Do(func() {
			caddy.Log().Named("tcpproxy").Warn("event loops unavailable: every connection takes the goroutine path",
				zap.Error(err))
		})
		return nil
	}
	r.mu.Lock()
	r.seen[ls] = struct{}{}
	r.mu.Unlock()
	return ls
}

// release drops a reference taken by acquire (nil does nothing). The
// pool's loops exit once released and empty; it stays listed until then.
func (r *poolRegistry) release(ls *evloop.Loops) {
	if ls != nil {
		ls.Release()
	}
}

// pools returns the pools that are held or still own connections.
func (r *poolRegistry) pools() []*evloop.Loops {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*evloop.Loops, 0, len(r.seen))
	for ls := range r.seen {
		if ls.Released() && ls.Active() == 0 {
			delete(r.seen, ls)
			continue
		}
		out = append(out, ls)
	}
	return out
}

// active counts the connections the loops own (dialling or proxied).
func (r *poolRegistry) active() int {
	n := 0
	for _, ls := range r.pools() {
		n += ls.Active()
	}
	return n
}

// closeWhere ends, with reason why, the loop connections proxied to a
// target match accepts (every one with a nil match), and returns how
// many once their sessions have done their bookkeeping. match runs on
// the loops: it must be quick.
func (r *poolRegistry) closeWhere(why relay.Reason, match func(*target) bool) int {
	sel := func(s evloop.Session) bool {
		c, ok := s.(*loopConn)
		return ok && (match == nil || c.target != nil && match(c.target))
	}
	n := 0
	for _, ls := range r.pools() {
		n += ls.CloseWhere(why, sel)
	}
	return n
}
