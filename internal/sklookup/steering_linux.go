//go:build linux

package sklookup

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cilium/ebpf/link"
)

// Steering is one user's reference to the process-wide sk_lookup engine,
// as Acquire returns it. Its methods are safe for concurrent use.
type Steering struct {
	e        *engine
	released bool // guarded by e.mu
}

// engine is the program, its maps and its link, shared by every Steering
// of the process and reference-counted by them. Everything is guarded by
// mu: changes are rare (config start and stop) and must not interleave.
type engine struct {
	mu   sync.Mutex
	refs int
	objs *objects
	link *link.NetNsLink

	nextID   uint32
	regs     map[uint32]*registration // by Socket.id
	byCookie map[uint64]*bound        // by SO_COOKIE, which the kernel never reuses
	slots    slotAllocator
	routes   routeTable
}

// shared is the process's engine. Nothing touches the kernel until the
// first Acquire.
var shared = &engine{}

// Acquire returns a reference to the engine, loading the program and
// attaching it to the current network namespace (/proc/self/ns/net) on
// first use. Every Acquire needs one Release.
func Acquire() (*Steering, error) {
	e := shared
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refs == 0 {
		if err := e.start(); err != nil {
			return nil, err
		}
	}
	e.refs++
	return &Steering{e: e}, nil
}

func (e *engine) start() error {
	objs, err := loadObjects(capacity.routes, capacity.sockets)
	if err != nil {
		return err
	}
	ns, err := os.Open("/proc/self/ns/net")
	if err != nil {
		objs.close()
		return fmt.Errorf("sk_lookup: opening this process's network namespace: %w", err)
	}
	defer ns.Close()
	l, err := link.AttachNetNs(int(ns.Fd()), objs.prog)
	if err != nil {
		objs.close()
		return explain("attaching the program to this network namespace", err)
	}
	e.objs, e.link = objs, l
	e.regs = make(map[uint32]*registration)
	e.byCookie = make(map[uint64]*bound)
	e.slots = slotAllocator{max: capacity.sockets}
	e.routes = routeTable{}
	return nil
}

// Release gives up this reference. The sockets it bound that are still
// registered are unbound (their routes removed). The last Release detaches
// the program, so no port is steered any more, and closes the maps.
// Releasing twice is an error.
func (s *Steering) Release() error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.released {
		return errors.New("sk_lookup: Release called twice on one Steering")
	}
	s.released = true
	var errs []error
	for _, r := range e.regs {
		if r.owner == s {
			errs = append(errs, e.unbindLocked(r))
		}
	}
	e.refs--
	if e.refs == 0 {
		errs = append(errs, e.stop())
	}
	return errors.Join(errs...)
}

func (e *engine) stop() error {
	var err error
	if e.link != nil {
		if cerr := e.link.Close(); cerr != nil {
			err = fmt.Errorf("sk_lookup: detaching the program: %w", cerr)
		}
	}
	if e.objs != nil {
		e.objs.close()
	}
	e.link, e.objs = nil, nil
	e.regs, e.byCookie = nil, nil
	e.routes = routeTable{}
	return err
}

// checkLocked returns the registration behind sock if this Steering may
// use it.
func (s *Steering) checkLocked(sock Socket) (*registration, error) {
	if s.released {
		return nil, errors.New("sk_lookup: this Steering was released")
	}
	r, ok := s.e.regs[sock.id]
	if !ok || r.owner != s {
		return nil, fmt.Errorf("sk_lookup: %v is not bound by this Steering (unbound already?)", sock)
	}
	return r, nil
}
