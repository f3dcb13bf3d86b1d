package tcpproxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
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
	// eligible says whether new connections may go to the target; only
	// refreshEligibilityLocked sets it.
	eligible atomic.Bool
	// probing is held by the one active probe of the target running now,
	// whichever config's checker started it: a target is never probed
	// twice at once, even while a reload overlaps two configs.
	probing atomic.Bool
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
	probed     time.Time // start of the last probe that counted or was skipped: the schedule's base
	passiveAt  time.Time // the last failed dial while proxying
	retry      passiveRetry

	m targetMetrics
}

// targetKey identifies a target in the pool: the same address in two apps
// is two targets, each with its own health and counters.
type targetKey struct{ app, addr string }

// targets holds every target of every loaded config.
var targets = caddy.NewUsagePool()

// Destruct runs when no config uses the target any more.
func (t *target) Destruct() error {
	t.mu.Lock()
	t.disarmRetryLocked()
	t.mu.Unlock()
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
			t.eligible.Store(true)
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
// round-robin position and the connection count that max_connections
// limits. Like targets it lives in a reference-counted pool.
type appState struct {
	name   string
	next   atomic.Uint64 // round-robin cursor
	active atomic.Int64  // connections of the app being proxied now

	rejectLog everySecond // no-healthy-target warnings
	localLog  everySecond // warnings of dials that failed for local reasons

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

// armRetries arms the passive retry of every target that is down, for a
// config without active checks (see passiveRetry).
func armRetries(ts []*target, after time.Duration) {
	for _, t := range ts {
		t.ensureRetry(after)
	}
}

// probeResult records one active probe, started at start, and reports
// whether the target changed state (up to down or down to up), and whether
// it is down with exactly fall consecutive failed probes: the probes have
// just confirmed it down (close_on_down acts then, once).
func (t *target) probeResult(start time.Time, err error, rise, fall int) (changed, confirmedDown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probed = start
	t.lastCheck = time.Now()
	t.disarmRetryLocked() // active probes bring the target back, not a retry
	if err != nil {
		t.lastError = err.Error()
		t.successes = 0
		t.failures++
		if t.healthy.Load() && t.failures >= fall {
			changed = t.setHealthyLocked(false)
		}
		return changed, t.failures == fall
	}
	t.failures = 0
	t.successes++
	if !t.healthy.Load() && t.successes >= rise {
		return t.setHealthyLocked(true), false
	}
	return false, false
}

// probeSkipped records a probe that said nothing of the target (it failed
// for a reason local to this machine): only the schedule moves on.
func (t *target) probeSkipped(start time.Time) {
	t.mu.Lock()
	t.probed = start
	t.mu.Unlock()
}

// nextProbe is when the target is due for an active probe: interval after
// the last probe while it is up, down after the last probe or failed dial
// while it is down. The zero time (never probed) is due at once.
func (t *target) nextProbe(interval, down time.Duration) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.healthy.Load() {
		if t.probed.IsZero() {
			return time.Time{}
		}
		return t.probed.Add(interval)
	}
	base := t.probed
	if t.passiveAt.After(base) {
		base = t.passiveAt
	}
	if base.IsZero() {
		return time.Time{}
	}
	return base.Add(down)
}

// dialFailed marks the target down at once after a failed dial while
// proxying (a passive health check). retryAfter > 0 (the app has no
// active checks) makes it eligible again that long after. It reports
// whether it was up.
func (t *target) dialFailed(err error, retryAfter time.Duration) (changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastError = err.Error()
	t.successes = 0
	t.passiveAt = time.Now()
	t.retry.trial = false
	changed = t.setHealthyLocked(false)
	if retryAfter > 0 {
		t.armRetryLocked(retryAfter)
	}
	return changed
}

func (t *target) setHealthyLocked(up bool) bool {
	if t.healthy.Load() == up {
		return false
	}
	t.healthy.Store(up)
	t.lastChange = time.Now()
	if up {
		t.m.healthy.Set(1)
		t.disarmRetryLocked()
	} else {
		t.m.healthy.Set(0)
	}
	t.refreshEligibilityLocked()
	return true
}

// refreshEligibilityLocked decides whether new connections may go to the
// target: when it is healthy, or when it is down but a passive retry is
// open (see passiveRetry). It is the one place that decides.
func (t *target) refreshEligibilityLocked() {
	t.eligible.Store(t.healthy.Load() || t.retry.open)
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
