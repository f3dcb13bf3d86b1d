package tcpproxy

import (
	"sync"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// live is every connection being proxied by any loaded config: those on
// goroutines, in its set, and those on the event loops, which each loop
// keeps (loopPools). A reload leaves connections of the old config
// running, so on exit the current config must drain those too: this set
// outlives configs on purpose.
var live = &connSet{conns: make(map[*liveConn]struct{})}

// liveConn is a proxied connection and the target it goes to, so that
// the connections of one target can be found and closed.
type liveConn struct {
	*relay.Conn
	target *target
}

type connSet struct {
	mu    sync.Mutex
	conns map[*liveConn]struct{}
}

func (s *connSet) add(c *liveConn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c *liveConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *connSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// closeWhere closes, with reason r, every connection to a target match
// accepts, on either data path, and returns how many. On the loops match
// runs on the loop goroutines: it must be quick.
func (s *connSet) closeWhere(r relay.Reason, match func(*target) bool) int {
	s.mu.Lock()
	var cut []*liveConn
	for c := range s.conns {
		if match == nil || match(c.target) {
			cut = append(cut, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cut {
		c.Close(r)
	}
	return len(cut) + loopPools.closeWhere(r, match)
}

// closeTarget closes, with reason r, every connection to t.
func (s *connSet) closeTarget(r relay.Reason, t *target) int {
	return s.closeWhere(r, func(c *target) bool { return c == t })
}

// drain waits up to grace for the connections to end by themselves, then
// closes those still open (reason shutdown) and waits, briefly, for them
// to be logged. It returns how many it had to close.
func (s *connSet) drain(grace time.Duration) int {
	waitEmpty(s, grace)
	cut := s.closeWhere(relay.Shutdown, nil)
	waitEmpty(s, 5*time.Second)
	offLoop.flush(5 * time.Second)
	return cut
}

// open counts the connections on both paths; a loop's count includes
// those still dialling.
func (s *connSet) open() int { return s.len() + loopPools.active() }

func waitEmpty(s *connSet, within time.Duration) {
	deadline := time.Now().Add(within)
	for s.open() > 0 && time.Now().Before(deadline) {
		time.Sleep(min(10*time.Millisecond, time.Until(deadline)))
	}
}
