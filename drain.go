package tcpproxy

import (
	"sync"
	"time"
)

// live is every connection being proxied, by any loaded config. A reload
// leaves connections of the old config running, so on exit the current
// config must drain those too: this set outlives configs on purpose.
var live = &pipeSet{pipes: make(map[*pipe]struct{})}

type pipeSet struct {
	mu    sync.Mutex
	pipes map[*pipe]struct{}
}

func (s *pipeSet) add(p *pipe) {
	s.mu.Lock()
	s.pipes[p] = struct{}{}
	s.mu.Unlock()
}

func (s *pipeSet) remove(p *pipe) {
	s.mu.Lock()
	delete(s.pipes, p)
	s.mu.Unlock()
}

func (s *pipeSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pipes)
}

// drain waits up to grace for the connections to end by themselves, then
// closes those still open. It returns how many it had to close.
func (s *pipeSet) drain(grace time.Duration) int {
	deadline := time.Now().Add(grace)
	for s.len() > 0 && time.Now().Before(deadline) {
		time.Sleep(min(25*time.Millisecond, time.Until(deadline)))
	}
	s.mu.Lock()
	cut := make([]*pipe, 0, len(s.pipes))
	for p := range s.pipes {
		cut = append(cut, p)
	}
	s.mu.Unlock()
	for _, p := range cut {
		p.abort()
	}
	return len(cut)
}
