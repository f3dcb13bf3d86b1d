package tcpproxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/balance"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// target is the shared state of one target of one app: its health and its
// connection counts. It lives in the package-level targets pool, keyed by
// app name and address and reference-counted by every config that uses it,
// so a target kept across a config reload keeps its health state and
// counters. The proxy's hot path reads it with atomics only.
type target struct {
	app  string
	addr string // as configured: resolved at each dial

	// node is what the load balancers read: whether the target is
	// eligible (healthy and ready) and its active connection count.
	node *balance.Node

	healthy atomic.Bool
	state   atomic.Uint32 // a targetState: set through the admin API

	// Cumulative counters since the target appeared, for the status API
	// and the history: connections proxied, failed dials while proxying,
	// and bytes each way (up: client to target). The data path adds to
	// them beside the Prometheus counters.
	total      atomic.Uint64
	dialErrors atomic.Uint64
	up, down   byteCounter

	// hist is the last 15 minutes of those counters and of the active
	// connections, recorded by the samplers of the configs that have the
	// target (history.go).
	hist *history.Target

	// The weight and backup flag of the last config that provisioned
	// the target, for the status API.
	weight atomic.Int32
	backup atomic.Bool

	// mu guards the health bookkeeping below; health rounds and passive
	// failures take it, the data path never does.
	mu         sync.Mutex
	successes  int // consecutive successful probes
	failures   int // consecutive failed probes
	lastError  string
	lastCheck  time.Time
	lastChange time.Time

	m targetMetrics
}

// targetKey identifies a target in the pool: the same address in two apps
// is two targets, each with its own health and counters.
type targetKey struct{ app, addr string }

// targets holds every target of every loaded config.
var targets = caddy.NewUsagePool()

// Destruct runs when no config uses the target any more.
func (t *target) Destruct() error {
	deleteTargetMetrics(t.app, t.addr)
	return nil
}

// acquireTargets returns the shared state of each target of app, creating
// the ones not seen before (they start healthy and ready), and records
// their configured weight and backup flag. Release with releaseTargets.
func acquireTargets(app string, cfgs []TargetConfig) []*target {
	out := make([]*target, len(cfgs))
	for i, c := range cfgs {
		v, _, _ := targets.LoadOrNew(targetKey{app, c.Address}, func() (caddy.Destructor, error) {
			t := &target{app: app, addr: c.Address, node: balance.NewNode(c.Address), lastChange: time.Now(),
				m: newTargetMetrics(app, c.Address), hist: history.NewTarget()}
			t.up.metric, t.down.metric = t.m.bytesUp, t.m.bytesDown
			t.node.Owner = t
			t.healthy.Store(true)
			return t, nil
		})
		t := v.(*target)
		t.weight.Store(int32(c.weight()))
		t.backup.Store(c.Backup)
		out[i] = t
	}
	return out
}

// members are the targets as a balancer's members, with the weights and
// backup flags of cfgs (the same targets, in the same order).
func members(ts []*target, cfgs []TargetConfig) []balance.Member {
	out := make([]balance.Member, len(ts))
	for i, t := range ts {
		out[i] = balance.Member{Node: t.node, Weight: cfgs[i].weight(), Backup: cfgs[i].Backup}
	}
	return out
}

func releaseTargets(ts []*target) {
	for _, t := range ts {
		_, _ = targets.Delete(targetKey{t.app, t.addr})
	}
}

// targetState is what an operator set through the admin API (SPEC.md,
// "Runtime target state"): ready targets take new connections; drained
// ones do not but are still probed; targets in maintenance are neither.
// Established connections run on in every state.
type targetState uint32

const (
	stateReady targetState = iota
	stateDrain
	stateMaint
)

var stateNames = [...]string{stateReady: "ready", stateDrain: "drain", stateMaint: "maint"}

func (s targetState) String() string { return stateNames[s] }

// parseState returns the state named s.
func parseState(s string) (targetState, bool) {
	for i, n := range stateNames {
		if n == s {
			return targetState(i), true
		}
	}
	return 0, false
}

// setState sets the target's admin state and reports whether it changed.
func (t *target) setState(s targetState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if targetState(t.state.Swap(uint32(s))) == s {
		return false
	}
	t.updateEligibleLocked()
	return true
}

// probed reports whether health probes are due to the target: not while
// it is in maintenance.
func (t *target) probed() bool { return targetState(t.state.Load()) != stateMaint }

// appState is the state of an app that outlives a config reload: the
// round-robin position and the connection count that max_connections
// limits. Like targets it lives in a reference-counted pool.
type appState struct {
	name   string
	next   atomic.Uint64 // round-robin cursor
	active atomic.Int64  // connections of the app being proxied now

	lastReject atomic.Int64 // unix nanos of the last no-healthy-target warning
	rejects    atomic.Int64 // no-healthy-target rejections not yet logged

	// rejected counts the clients closed without being proxied, by
	// reason, since the app appeared: for the status API and the history.
	rejected [history.NumReasons]atomic.Uint64
	hist     *history.App

	m appMetrics
}

// countRejection counts a client closed without being proxied: in the
// app's metric and in the counter its history samples.
func (s *appState) countRejection(r history.Reason) {
	s.rejected[r].Add(1)
	s.m.rejected[r].Inc()
}

// rejectionCounts reads the rejection counters.
func (s *appState) rejectionCounts() history.Rejections {
	var out history.Rejections
	for i := range out {
		out[i] = s.rejected[i].Load()
	}
	return out
}

// Destruct runs when no config has the app any more.
func (s *appState) Destruct() error {
	deleteAppMetrics(s.name)
	return nil
}

var appStates = caddy.NewUsagePool()

func acquireAppState(name string) *appState {
	v, _, _ := appStates.LoadOrNew(name, func() (caddy.Destructor, error) {
		return &appState{name: name, m: newAppMetrics(name), hist: history.NewApp()}, nil
	})
	return v.(*appState)
}

func releaseAppState(s *appState) { _, _ = appStates.Delete(s.name) }

// probeResult records one health probe and reports whether the target
// changed state (up to down or down to up).
func (t *target) probeResult(err error, rise, fall int) (changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastCheck = time.Now()
	if err != nil {
		t.lastError = err.Error()
		t.successes = 0
		t.failures++
		if t.healthy.Load() && t.failures >= fall {
			return t.setHealthyLocked(false)
		}
		return false
	}
	t.failures = 0
	t.successes++
	if !t.healthy.Load() && t.successes >= rise {
		return t.setHealthyLocked(true)
	}
	return false
}

// probedWithin reports whether the last probe is more recent than d.
func (t *target) probedWithin(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.lastCheck.IsZero() && time.Since(t.lastCheck) < d
}

// dialFailed marks the target down at once after a failed dial while
// proxying (a passive health check). It reports whether it was up.
func (t *target) dialFailed(err error) (changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastError = err.Error()
	t.successes = 0
	return t.setHealthyLocked(false)
}

func (t *target) setHealthyLocked(up bool) bool {
	if t.healthy.Load() == up {
		return false
	}
	t.healthy.Store(up)
	t.lastChange = time.Now()
	if up {
		t.m.healthy.Set(1)
	} else {
		t.m.healthy.Set(0)
	}
	t.updateEligibleLocked()
	return true
}

// updateEligibleLocked tells the balancers whether the target takes new
// connections: it does when it is healthy and ready. This is the one
// place that decides it.
func (t *target) updateEligibleLocked() {
	t.node.SetEligible(t.healthy.Load() && targetState(t.state.Load()) == stateReady)
}
