package tcpproxy

import (
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/balance"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/discovery"
)

// targetSet is the target list of one app in one config, and the balancer
// that picks among it: the static targets, then, per `srv:`/`dns:` target,
// the records of its last good DNS answer. The static part is fixed; the
// records change with DNS (see watch). The set holds one reference to the
// shared state of each of its targets (the targets pool), so a record
// present before and after a change, or in the configs before and after a
// reload, keeps its health, admin state and counters.
//
// The data path reads the set without locks: the balancer's Pick, and
// current() for the number of dial attempts. Health checks and the status
// API read current() too, so they follow the changes.
type targetSet struct {
	app     string
	static  []TargetConfig
	sources []*setSource // in config order
	bal     *balance.Balancer

	// Of the app's config, for the watcher.
	resolvers []string
	refresh   Duration

	cur atomic.Pointer[[]*target] // the members now, in balancer order

	// named are the static targets written as host names, which
	// resolveNames looks up for the loops; resolved says that each has
	// been looked up at least once (by this set or an earlier config's),
	// so that the loops can dial every member. relookup asks for a
	// round soon.
	named    []*target
	resolved atomic.Bool
	relookup chan struct{}

	mu       sync.Mutex         // serialises changes and release
	held     map[string]*target // every target referenced, by address
	released bool
}

// setSource is one `srv:`/`dns:` target of a set.
type setSource struct {
	src  discovery.Source
	cfg  TargetConfig // dns: its weight and backup flag go to every record
	spec *string      // src.Spec, one string shared by the status rows
	// shared is the last good set of (app, spec) across configs: a new
	// config starts from what the previous one knew.
	shared *sourceState

	recs  []discovery.Record // last good set; guarded by targetSet.mu
	known bool               // recs comes from a lookup, now or before a reload
}

// newTargetSet builds the set of an app's settings u (defaults filled):
// the static targets and, for each DNS target, the records the running
// config has for it, if any. cursor is the app's round-robin position.
// Release the set with release.
func newTargetSet(app string, u Upstreams, cursor *atomic.Uint64) (*targetSet, error) {
	bal, err := balance.New(u.LBPolicy, cursor)
	if err != nil {
		return nil, appErrorf(app)("lb_policy", "%v", err)
	}
	s := &targetSet{app: app, bal: bal, resolvers: u.Resolvers, refresh: u.DNSRefresh,
		held: make(map[string]*target, len(u.Targets))}
	for _, c := range u.Targets {
		src, ok, err := discoverySource(c)
		if err != nil {
			s.release()
			return nil, appErrorf(app)("targets", "%v", err)
		}
		if !ok {
			s.static = append(s.static, c)
			continue
		}
		shared := acquireSourceState(app, src.Spec)
		ss := &setSource{src: src, cfg: c, spec: &src.Spec, shared: shared}
		ss.recs, ss.known = shared.load()
		s.sources = append(s.sources, ss)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, _ = s.rebuild()
	resolved := true
	for _, c := range s.static {
		if t := s.held[c.Address]; t.named {
			s.named = append(s.named, t)
			resolved = resolved && t.dial.Load() != nil
		}
	}
	s.resolved.Store(resolved)
	s.relookup = make(chan struct{}, 1)
	return s, nil
}

// current returns the targets the balancer chooses from now, in order.
// The slice is shared: do not modify it.
func (s *targetSet) current() []*target { return *s.cur.Load() }

// rebuild makes the members the static targets followed by each source's
// records, acquiring the targets new to the set and releasing those that
// left it. An address listed twice (a static target that is also a
// record, or a record of two sources) is a member once, as it came first.
// Picks that start after rebuild choose among the new members; a departed
// target's connections run on. It returns the number of targets added,
// removed, and kept with a new weight or backup flag. Called with s.mu
// held.
func (s *targetSet) rebuild() (added, removed, reweighted int) {
	n := len(s.static)
	for _, src := range s.sources {
		n += len(src.recs)
	}
	ms := make([]balance.Member, 0, n)
	list := make([]*target, 0, n)
	in := make(map[string]struct{}, n) // rebuild runs when records change, not per connection
	add := func(addr string, weight int, backup bool, source *string) {
		if _, dup := in[addr]; dup {
			return
		}
		in[addr] = struct{}{}
		t := s.held[addr]
		switch {
		case t == nil:
			t = acquireTarget(s.app, addr)
			s.held[addr] = t
			added++
		case int(t.weight.Load()) != weight || t.backup.Load() != backup:
			reweighted++
		}
		t.setConfig(weight, backup, source)
		ms = append(ms, balance.Member{Node: t.node, Weight: weight, Backup: backup})
		list = append(list, t)
	}
	for _, c := range s.static {
		add(c.Address, c.weight(), c.Backup, nil)
	}
	for _, src := range s.sources {
		for _, r := range src.recs {
			if src.src.Kind == discovery.KindDNS {
				add(r.Addr, src.cfg.weight(), src.cfg.Backup, src.spec)
			} else {
				add(r.Addr, r.Weight, r.Backup, src.spec)
			}
		}
	}
	s.bal.SetMembers(ms)
	s.cur.Store(&list)
	if len(s.held) == len(in) {
		return added, 0, reweighted
	}
	var gone []*target
	for addr, t := range s.held {
		if _, ok := in[addr]; !ok {
			gone = append(gone, t)
			delete(s.held, addr)
		}
	}
	releaseTargets(gone)
	return added, len(gone), reweighted
}

// update gives a source its new set of records and returns what changed
// (see rebuild); ok is false when the set has been released (the config
// is gone) or has no such source.
func (s *targetSet) update(spec string, recs []discovery.Record) (added, removed, reweighted int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.source(spec)
	if s.released || src == nil {
		return 0, 0, 0, false
	}
	src.recs, src.known = recs, true
	src.shared.store(recs)
	added, removed, reweighted = s.rebuild()
	return added, removed, reweighted, true
}

func (s *targetSet) source(spec string) *setSource {
	for _, src := range s.sources {
		if src.src.Spec == spec {
			return src
		}
	}
	return nil
}

// release drops the set's references to its targets and sources: a
// target no other config has is destroyed, and its metrics series with
// it. The members stay readable, for a connection that reaches a handler
// of an unloaded config late (see Handler.Cleanup).
func (s *targetSet) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	gone := make([]*target, 0, len(s.held))
	for _, t := range s.held {
		gone = append(gone, t)
	}
	releaseTargets(gone)
	for _, src := range s.sources {
		_, _ = sourceStates.Delete(sourceKey{s.app, src.src.Spec})
	}
}

// sourceState is the last good record set of one DNS target of one app,
// shared by the configs that have it: a reload starts from it, so the new
// config serves the records at once, and a first lookup that fails keeps
// them.
type sourceState struct {
	mu    sync.Mutex
	recs  []discovery.Record
	known bool
}

type sourceKey struct{ app, spec string }

// sourceStates holds the sourceState of every DNS target of every loaded
// config, reference-counted by the configs.
var sourceStates = caddy.NewUsagePool()

func acquireSourceState(app, spec string) *sourceState {
	v, _, _ := sourceStates.LoadOrNew(sourceKey{app, spec}, func() (caddy.Destructor, error) {
		return new(sourceState), nil
	})
	return v.(*sourceState)
}

func (st *sourceState) load() ([]discovery.Record, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.recs, st.known
}

func (st *sourceState) store(recs []discovery.Record) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.recs, st.known = recs, true
}

// Destruct is the UsagePool's hook; nothing to free.
func (*sourceState) Destruct() error { return nil }
