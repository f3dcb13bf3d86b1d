package tcpproxy

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
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

	proxyProtocol string // the app's proxy_protocol: probes say LOCAL
	logger        *zap.Logger
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
// concurrently, and waits for all probes. Targets in maintenance are not
// probed.
func (hc *healthChecker) round(ctx context.Context, fresh time.Duration) {
	var wg sync.WaitGroup
	for _, t := range hc.targets {
		if !t.probed() || fresh > 0 && t.probedWithin(fresh) {
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
	if conn != nil {
		hc.sayLocal(conn)
		_ = conn.Close()
	}
	if ctx.Err() != nil {
		return
	}
	if t.probeResult(err, hc.cfg.Rise, hc.cfg.Fall) {
		logTransition(hc.logger, t, err)
	}
}

// sayLocal sends a PROXY protocol LOCAL header on a probe connection when
// the app speaks PROXY protocol to its targets: such a target expects a
// header on every connection and would log each bare probe as an error.
func (hc *healthChecker) sayLocal(conn net.Conn) {
	if hc.proxyProtocol == "" {
		return
	}
	h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if hc.proxyProtocol == "v1" {
		h.Version = 1
	}
	_ = conn.SetWriteDeadline(time.Now().Add(time.Duration(hc.cfg.Timeout)))
	_, _ = h.WriteTo(conn)
}

// logTransition writes the one log line of a target that changed state:
// up when the cause is nil (probes passed), down otherwise.
func logTransition(logger *zap.Logger, t *target, cause error) {
	if cause == nil {
		logger.Info("target up", zap.String("app", t.app), zap.String("target", t.addr),
			zap.String("cause", "health checks passed"))
		return
	}
	logger.Warn("target down", zap.String("app", t.app), zap.String("target", t.addr), zap.Error(cause))
}
