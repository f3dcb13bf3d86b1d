package tcpproxy

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/probe"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// healthChecker probes the targets of one app with the app's probe: a
// target that is up every interval, one that is down every down_interval,
// each probe on a goroutine of its own that ends with it. One goroutine per
// app schedules them, from App.Start until App.Stop: it sleeps until the
// next target falls due, starts the probes of every target due then, and
// never starts a second probe of a target whose probe is still running.
// Targets probed in the same pass share their next due time, so a round
// over many targets stays one pass.
type healthChecker struct {
	targets      func() []*target // read each pass: DNS targets come and go
	interval     time.Duration
	downInterval time.Duration
	rise, fall   int
	prober       *probe.Prober
	closeOnDown  bool
	logger       *zap.Logger

	probes sync.WaitGroup // probes running
	// ended wakes the scheduler when a probe's end makes its target due
	// before the scheduler's wake-up time, wakeAt (unix nanoseconds;
	// MaxInt64 while it looks for due targets, so that no end is missed).
	ended  chan struct{}
	wakeAt atomic.Int64
	local  everySecond // warnings about probes failing for local reasons
}

// newHealthChecker returns the checker of an app's targets; u has its
// defaults filled and p is its compiled probe.
func newHealthChecker(targets func() []*target, u Upstreams, p *probe.Prober, logger *zap.Logger) *healthChecker {
	hc := u.HealthChecks
	return &healthChecker{
		targets:  targets,
		interval: time.Duration(hc.Interval), downInterval: time.Duration(hc.DownInterval),
		rise: hc.Rise, fall: hc.Fall,
		prober: p, closeOnDown: u.CloseOnDown, logger: logger,
		ended: make(chan struct{}, 1),
	}
}

// run probes until ctx ends. It returns only after its probes have all
// returned (a probe cut short by ctx returns at once).
//
// A target kept by a config reload goes on with the previous config's
// schedule and counts: its next probe is due after its last one, not at
// once.
func (hc *healthChecker) run(ctx context.Context) {
	defer hc.probes.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		hc.wakeAt.Store(math.MaxInt64)
		next := hc.launchDue(ctx, time.Now())
		hc.wakeAt.Store(next.UnixNano())
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-hc.ended:
		}
	}
}

// launchDue starts a probe of every target due at now whose probe is not
// running, and returns when to look again: when the next target falls
// due, and at the latest down_interval from now, by when a target that a
// failed dial marked down (or that left maintenance) meanwhile is due.
// Targets in maintenance are not probed.
func (hc *healthChecker) launchDue(ctx context.Context, now time.Time) time.Time {
	next := now.Add(hc.downInterval)
	for _, t := range hc.targets() {
		if !t.probed() {
			continue
		}
		due := t.nextProbe(hc.interval, hc.downInterval)
		if due.After(now) {
			if due.Before(next) {
				next = due
			}
			continue
		}
		if !t.probing.CompareAndSwap(false, true) {
			continue // its probe's end wakes us (or, another config's, the bound above)
		}
		hc.probes.Add(1)
		go hc.probe(ctx, t, now)
	}
	return next
}

// probe runs one probe of t and records its result. A probe cut short by
// ctx (the config is being unloaded) records nothing; one that failed for
// a reason local to this machine (out of descriptors or ports) says
// nothing of the target: it is logged, and only the schedule moves on.
func (hc *healthChecker) probe(ctx context.Context, t *target, start time.Time) {
	defer hc.probes.Done()
	err := hc.prober.Run(ctx, t.addr)
	if ctx.Err() != nil {
		t.probing.Store(false)
		return
	}
	if probe.IsLocal(err) {
		t.probeSkipped(start)
		t.probing.Store(false)
		hc.wake(t)
		if n, ok := hc.local.allow(); ok {
			hc.logger.Warn("health probe failed on this machine: result ignored, target state unchanged",
				zap.String("app", t.app), zap.String("target", t.addr), zap.Error(err), zap.Int64("ignored_since_last_warning", n))
		}
		return
	}
	changed, confirmedDown := t.probeResult(start, err, hc.rise, hc.fall)
	t.probing.Store(false)
	hc.wake(t)
	if changed {
		logTransition(hc.logger, t, err)
	}
	if confirmedDown && hc.closeOnDown {
		if n := live.closeTarget(relay.TargetDown, t); n > 0 {
			hc.logger.Info("closed the connections of a target that is down (close_on_down)",
				zap.String("app", t.app), zap.String("target", t.addr), zap.Int("connections", n))
		}
	}
}

// wake tells the scheduler about t's new due time if it comes before the
// scheduler's wake-up.
func (hc *healthChecker) wake(t *target) {
	if t.nextProbe(hc.interval, hc.downInterval).UnixNano() < hc.wakeAt.Load() {
		select {
		case hc.ended <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// logTransition writes the one log line of a target that changed state:
// up when the cause is nil (probes passed), down otherwise.
func logTransition(logger *zap.Logger, t *target, cause error) {
	if cause == nil {
		logUp(logger, t, "health checks passed")
		return
	}
	logger.Warn("target down", zap.String("app", t.app), zap.String("target", t.addr), zap.Error(cause))
}

// logUp writes the log line of a target that came back up, and why.
func logUp(logger *zap.Logger, t *target, why string) {
	logger.Info("target up", zap.String("app", t.app), zap.String("target", t.addr), zap.String("cause", why))
}
