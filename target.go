package tcpproxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/clientlimit"
)

// target is the shared state of one target of one app: its health and its
// connection counts. It lives in the package-level targets pool, keyed by
// app name and address and reference-counted by every config that uses it,
// so a target kept across a config reload keeps its health state and
// counters. The proxy's hot path reads it with atomics only.
type target struct {
	app  string
	addr string // as configured: resolved at each dial

	healthy atomic.Bool
	active  atomic.Int64  // connections being proxied now
	total   atomic.Uint64 // connections proxied since the target appeared

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

// acquireTargets returns the shared state of each address of app, creating
// the ones not seen before (they start healthy). Release with
// releaseTargets.
func acquireTargets(app string, addrs []string) []*target {
	out := make([]*target, len(addrs))
	for i, addr := range addrs {
		v, _, _ := targets.LoadOrNew(targetKey{app, addr}, func() (caddy.Destructor, error) {
			t := &target{app: app, addr: addr, lastChange: time.Now(), m: newTargetMetrics(app, addr)}
			t.healthy.Store(true)
			return t, nil
		})
		out[i] = v.(*target)
	}
	return out
}

func releaseTargets(ts []*target) {
	for _, t := range ts {
		_, _ = targets.Delete(targetKey{t.app, t.addr})
	}
}

// appState is the state of an app that outlives a config reload: the
// round-robin position, the connection count that max_connections
// limits and the per-client counts. Like targets it lives in a
// reference-counted pool.
type appState struct {
	name   string
	next   atomic.Uint64 // round-robin cursor
	active atomic.Int64  // connections of the app being proxied now

	lastReject atomic.Int64 // unix nanos of the last no-healthy-target warning
	rejects    atomic.Int64 // no-healthy-target rejections not yet logged

	// limiter enforces the per-client limits (see clientLimiter); nil
	// until a config sets one. limiterMu guards it at Provision.
	limiterMu sync.Mutex
	limiter   *clientlimit.Limiter

	m appMetrics
}

// Destruct runs when no config has the app any more.
func (s *appState) Destruct() error {
	deleteAppMetrics(s.name)
	return nil
}

var appStates = caddy.NewUsagePool()

func acquireAppState(name string) *appState {
	v, _, _ := appStates.LoadOrNew(name, func() (caddy.Destructor, error) {
		return &appState{name: name, m: newAppMetrics(name)}, nil
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
	return true
}

// targetStatus is a target's row in the status API.
type targetStatus struct {
	Address              string    `json:"address"`
	Healthy              bool      `json:"healthy"`
	ActiveConnections    int64     `json:"active_connections"`
	TotalConnections     uint64    `json:"total_connections"`
	LastError            string    `json:"last_error"`
	LastCheck            time.Time `json:"last_check,omitzero"`
	LastChange           time.Time `json:"last_change,omitzero"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`
}

func (t *target) status() targetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return targetStatus{
		Address:              t.addr,
		Healthy:              t.healthy.Load(),
		ActiveConnections:    t.active.Load(),
		TotalConnections:     t.total.Load(),
		LastError:            t.lastError,
		LastCheck:            t.lastCheck,
		LastChange:           t.lastChange,
		ConsecutiveSuccesses: t.successes,
		ConsecutiveFailures:  t.failures,
	}
}
