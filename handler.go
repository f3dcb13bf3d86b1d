package tcpproxy

import (
	"fmt"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
)

// Handler is the layer4 handler `tcpproxy`: it forwards each connection to
// a healthy target of its app, chosen by the app's load-balancing policy.
// The tcpproxy app generates one per app; it can also be used in a layer4
// route of your own (for example after a TLS handler), where health is
// passive only: the tcpproxy app runs the active checks.
type Handler struct {
	// App names the app the handler serves. Handlers with the same app name
	// share the round-robin position, the max_connections count and the
	// targets' health and counters. Required.
	App string `json:"app,omitempty"`

	Upstreams

	cfg      Upstreams // with defaults
	state    *appState
	released atomic.Bool
	targets  []*target
	pick     policy
	dialer   net.Dialer
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.handlers.tcpproxy",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision validates the settings and acquires the shared state of the app
// and its targets.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.validate(); err != nil {
		return err
	}
	h.cfg = h.Upstreams.withDefaults()
	h.pick = policies[h.cfg.LBPolicy]
	h.dialer = net.Dialer{Timeout: time.Duration(h.cfg.DialTimeout)}
	h.state = acquireAppState(h.App)
	h.targets = acquireTargets(h.App, h.cfg.Targets)
	return nil
}

func (h *Handler) validate() error {
	if h.App == "" {
		return fmt.Errorf("tcpproxy handler: app: required")
	}
	if !appNameRE.MatchString(h.App) {
		return fmt.Errorf("tcpproxy handler: app: %q may only contain letters, digits, '.', '_' and '-'", h.App)
	}
	return h.Upstreams.validate(func(field, format string, args ...any) error {
		return fmt.Errorf("app %q: %s: %s", h.App, field, fmt.Sprintf(format, args...))
	})
}

// Cleanup releases the handler's references to the shared state, but keeps
// its pointers: after a reload, a connection the old config accepted just
// before its listener closed may reach Handle after Cleanup, and must still
// be proxied. Connections being proxied run to their end.
func (h *Handler) Cleanup() error {
	if h.state != nil && h.released.CompareAndSwap(false, true) {
		releaseTargets(h.targets)
		releaseAppState(h.state)
	}
	return nil
}

// Handle proxies the connection to a target and returns when both
// directions are done. A panic is logged and ends this connection only.
func (h *Handler) Handle(cx *layer4.Connection, _ layer4.Handler) error {
	defer func() {
		if r := recover(); r != nil {
			h.logger.Error("panic while proxying a connection",
				zap.String("app", h.App), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	st := h.state
	if n := st.active.Add(1); h.cfg.MaxConnections > 0 && n > int64(h.cfg.MaxConnections) {
		st.active.Add(-1)
		st.m.maxConns.Inc()
		h.logger.Debug("connection rejected", zap.String("app", h.App),
			zap.String("reason", reasonMaxConnections), zap.Stringer("remote", cx.RemoteAddr()))
		return nil
	}
	defer st.active.Add(-1)

	up, t := h.dial()
	if up == nil {
		return nil
	}
	t.total.Add(1)
	t.m.connections.Inc()
	t.active.Add(1)
	t.m.active.Inc()
	defer func() {
		t.active.Add(-1)
		t.m.active.Dec()
	}()
	h.logger.Debug("proxying", zap.String("app", h.App), zap.String("target", t.addr),
		zap.Stringer("remote", cx.RemoteAddr()))
	return proxy(cx, up, t, h.cfg.ProxyProtocol)
}

// dial connects to a target chosen by the policy. A failed dial marks its
// target down at once and the next healthy target is tried, so a dead
// target fails no client connection while another one is healthy. It
// returns nil when the connection is rejected (and counted).
func (h *Handler) dial() (net.Conn, *target) {
	reason := reasonNoHealthyTarget
	for range h.targets {
		t := h.pick(h.targets, h.state)
		if t == nil {
			break
		}
		start := time.Now()
		conn, err := h.dialer.Dial("tcp", t.addr)
		if err == nil {
			t.m.dialTime.Observe(time.Since(start).Seconds())
			return conn, t
		}
		reason = reasonDialFailed
		t.m.dialErrors.Inc()
		if t.dialFailed(err) {
			logTransition(h.logger, t, err)
		}
	}
	h.reject(reason)
	return nil, nil
}

// reject counts a connection closed for lack of a target and warns at most
// once per app per second, with the number of rejections since.
func (h *Handler) reject(reason string) {
	st := h.state
	if reason == reasonDialFailed {
		st.m.dialFailed.Inc()
	} else {
		st.m.noHealthy.Inc()
	}
	st.rejects.Add(1)
	now, last := time.Now().UnixNano(), st.lastReject.Load()
	if now-last < int64(time.Second) || !st.lastReject.CompareAndSwap(last, now) {
		h.logger.Debug("connection rejected", zap.String("app", h.App), zap.String("reason", reason))
		return
	}
	n := st.rejects.Swap(0)
	h.logger.Warn("connection rejected: no target could be reached",
		zap.String("app", h.App), zap.String("reason", reason), zap.Int64("rejected_since_last_warning", n))
}

// Interface guards.
var (
	_ caddy.Provisioner  = (*Handler)(nil)
	_ caddy.CleanerUpper = (*Handler)(nil)
	_ layer4.NextHandler = (*Handler)(nil)
	_ caddy.Module       = (*Handler)(nil)
)
