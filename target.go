package tcpproxy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/balance"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/clientlimit"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// target is the shared state of one target of one app: its health and its
// connection counts. It lives in the package-level targets pool, keyed by
// app name and address and reference-counted by every config that uses it,
// so a target kept across a config reload keeps its health state and
// counters. The proxy's hot path reads it with atomics only.
type target struct {
	app  string
	addr string // as configured: a name is resolved at each dial on the goroutine path

	// named: addr is a host name. dial is where the loops dial: addr
	// itself if it is an IP address, else the last lookup of the name
	// (resolve.go); nil until the first lookup.
	named bool
	dial  atomic.Pointer[resolution]

	// node is what the load balancers read: whether the target is
	// eligible (healthy and ready) and its active connection count.
	node *balance.Node

	healthy atomic.Bool
	state   atomic.Uint32 // a targetState: set through the admin API
	// probing is held by the one active probe of the target running now,
	// whichever config's checker started it: a target is never probed
	// twice at once, even while a reload overlaps two configs.
	probing atomic.Bool

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
	// the target, for the status API; and for a DNS record, the `srv:` or
	// `dns:` target it came from (nil for a static target).
	weight atomic.Int32
	backup atomic.Bool
	source atomic.Pointer[string]

	// mu guards the health bookkeeping below; health rounds and passive
	// failures take it, the data path never does.
	mu         sync.Mutex
	successes  int // consecutive successful probes
	failures   int // consecutive failed probes
	lastError  string
	lastCheck  time.Time
	lastChange time.Time
	probeStart time.Time // start of the last probe that counted or was skipped: the schedule's base
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

// acquireTarget returns the shared state of the target addr of app, new
// (healthy and ready) if no config has it. Release it with releaseTargets.
func acquireTarget(app, addr string) *target {
	v, _, _ := targets.LoadOrNew(targetKey{app, addr}, func() (caddy.Destructor, error) {
		t := &target{app: app, addr: addr, node: balance.NewNode(addr), lastChange: time.Now(),
			m: newTargetMetrics(app, addr), hist: history.NewTarget()}
		t.up.metric, t.down.metric = t.m.bytesUp, t.m.bytesDown
		t.node.Owner = t
		t.healthy.Store(true)
		if ap, ok := parseDialAddr(addr); ok {
			t.dial.Store(&resolution{addrs: []netip.AddrPort{ap}})
		} else {
			t.named = true
		}
		return t, nil
	})
	return v.(*target)
}

// setConfig records what the status API shows of the target's config;
// source is nil for a static target (one string per source is shared by
// its records).
func (t *target) setConfig(weight int, backup bool, source *string) {
	t.weight.Store(int32(weight))
	t.backup.Store(backup)
	t.source.Store(source)
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
// round-robin position, the connection count that max_connections
// limits and the per-client counts. Like targets it lives in a
// reference-counted pool.
type appState struct {
	name   string
	next   atomic.Uint64 // round-robin cursor
	active atomic.Int64  // connections of the app being proxied now

	rejectLog everySecond // no-healthy-target warnings
	localLog  everySecond // warnings of dials that failed for local reasons

	// rejected counts the clients closed without being proxied, by
	// reason, since the app appeared: for the status API and the history.
	rejected [history.NumReasons]atomic.Uint64
	hist     *history.App

	// limiter enforces the per-client limits (see clientLimiter); nil
	// until a config sets one. limiterMu guards it at Provision.
	limiterMu sync.Mutex
	limiter   *clientlimit.Limiter

	m appMetrics
}

// ended counts a proxied connection's end, with why and how long it
// lasted (both data paths).
func (s *appState) ended(r relay.Reason, d time.Duration) {
	s.m.closed[r].Inc()
	s.m.duration.Observe(d.Seconds())
}

// connected counts a connection that reached t after dialling for
// dialTime, active until disconnected (both data paths).
func (t *target) connected(dialTime time.Duration) {
	t.m.dialTime.Observe(dialTime.Seconds())
	t.total.Add(1)
	t.m.connections.Inc()
	t.node.Active.Add(1)
	t.m.active.Inc()
}

// disconnected ends what connected counted as active.
func (t *target) disconnected() {
	t.node.Active.Add(-1)
	t.m.active.Dec()
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

// takeOver hands the targets to a config that starts: see target.takeOver
// and passiveRetry.
func takeOver(ts []*target, after time.Duration) {
	for _, t := range ts {
		t.takeOver(after)
	}
}

// probeResult records one active probe, started at start, and reports
// whether the target changed state (up to down or down to up), and whether
// it is down with exactly fall consecutive failed probes: the probes have
// just confirmed it down (close_on_down acts then, once).
func (t *target) probeResult(start time.Time, err error, rise, fall int) (changed, confirmedDown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probeStart = start
	t.lastCheck = time.Now()
	if t.retry.after == 0 {
		t.disarmRetryLocked() // active probes bring the target back, not a retry
	}
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
	t.probeStart = start
	t.mu.Unlock()
}

// nextProbe is when the target is due for an active probe: interval after
// the last probe while it is up, down after the last probe or failed dial
// while it is down. The zero time (never probed) is due at once.
func (t *target) nextProbe(interval, down time.Duration) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.healthy.Load() {
		if t.probeStart.IsZero() {
			return time.Time{}
		}
		return t.probeStart.Add(interval)
	}
	base := t.probeStart
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
	t.dialErrors.Add(1)
	t.m.dialErrors.Inc()
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
	t.updateEligibleLocked()
	return true
}

// updateEligibleLocked tells the balancers whether the target takes new
// connections: it does when it is ready and healthy, or ready and down
// with a passive retry open (see passiveRetry). This is the one place that
// decides it.
func (t *target) updateEligibleLocked() {
	up := t.healthy.Load() || t.retry.open
	t.node.SetEligible(up && targetState(t.state.Load()) == stateReady)
}
