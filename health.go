package tcpproxy

import (
	"context"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// healthChecker probes the targets of one app: a TCP connect to each
// target, all targets concurrently, every interval, the first round as soon
// as it starts. One goroutine per app runs it, from App.Start until
// App.Stop.
type healthChecker struct {
	app     string
	targets []*target
	cfg     HealthChecks // with defaults filled
	logger  *zap.Logger
}

// run probes until ctx ends. It returns only after its last round's probes
// have all returned.
//
// The first round probes only the targets not probed within the last
// interval: a target kept by a config reload goes on with the previous
// config's schedule and counts instead of being probed again at once.
func (hc *healthChecker) run(ctx context.Context) {
	interval := time.Duration(hc.cfg.Interval)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	fresh := interval
	for {
		hc.round(ctx, fresh)
		fresh = 0
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// round probes every target not probed within the last `fresh` once,
// concurrently, and waits for all probes.
func (hc *healthChecker) round(ctx context.Context, fresh time.Duration) {
	var wg sync.WaitGroup
	for _, t := range hc.targets {
		if fresh > 0 && t.probedWithin(fresh) {
			continue
		}
		wg.Add(1)
		go hc.probe(ctx, t, &wg)
	}
	wg.Wait()
}

// probe connects to one target within the timeout and records the result.
// A probe cut short by ctx (the config is being unloaded) records nothing.
func (hc *healthChecker) probe(ctx context.Context, t *target, wg *sync.WaitGroup) {
	defer wg.Done()
	dialer := net.Dialer{Timeout: time.Duration(hc.cfg.Timeout)}
	conn, err := dialer.DialContext(ctx, "tcp", t.addr)
	if ctx.Err() != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return
	}
	if conn != nil {
		_ = conn.Close()
	}
	if t.probeResult(err, hc.cfg.Rise, hc.cfg.Fall) {
		logTransition(hc.logger, t, err)
	}
}

// logTransition writes the one log line of a target going down or up.
func logTransition(logger *zap.Logger, t *target, cause error) {
	if t.healthy.Load() {
		logger.Info("target up", zap.String("app", t.app), zap.String("target", t.addr),
			zap.String("cause", "health checks passed"))
		return
	}
	logger.Warn("target down", zap.String("app", t.app), zap.String("target", t.addr), zap.Error(cause))
}
