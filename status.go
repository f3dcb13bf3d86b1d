package tcpproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// The status as JSON: the one place that builds it, for the admin API
// (admin.go), the HTTP handler (status_handler.go) and the page, which
// shows any field it does not know as a plain "name value" item.

// statusResponse is the body of a status request.
type statusResponse struct {
	Apps []appStatus `json:"apps"`
	// HistoryEnd is when the newest slot of history ended (RFC 3339):
	// a client that left the history out fetches it again when this
	// changes, at most once per history.Interval.
	HistoryEnd string `json:"history_end,omitempty"`
}

// appStatus is one app in the status.
type appStatus struct {
	Name     string      `json:"name"`
	Ports    []PortRange `json:"ports"`
	LBPolicy string      `json:"lb_policy"`
	// Listener is the listener mode in effect: "sockets" or "sk_lookup"
	// (auto shows the mode it chose); SteeredPorts counts the (bind
	// address, port) pairs steered to the app's sk_lookup sockets now, 0
	// in sockets mode.
	Listener     string         `json:"listener"`
	SteeredPorts int            `json:"steered_ports"`
	Targets      []targetStatus `json:"targets"`

	// ActiveConnections are the app's connections being proxied or
	// dialing now; Rejections its clients closed without being proxied,
	// by reason, since the app appeared (kept across reloads).
	ActiveConnections int64             `json:"active_connections"`
	Rejections        map[string]uint64 `json:"rejections"`
	Rates             history.Rates     `json:"rates"`
	History           *history.Snapshot `json:"history,omitempty"`
}

// targetStatus is a target's row in the status.
type targetStatus struct {
	Address              string    `json:"address"`
	Healthy              bool      `json:"healthy"`
	State                string    `json:"state"`
	Weight               int       `json:"weight"`
	Backup               bool      `json:"backup"`
	Source               string    `json:"source"`
	ActiveConnections    int64     `json:"active_connections"`
	TotalConnections     uint64    `json:"total_connections"`
	LastError            string    `json:"last_error"`
	LastCheck            time.Time `json:"last_check,omitzero"`
	LastChange           time.Time `json:"last_change,omitzero"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`

	// Cumulative since the target appeared: bytes client to target (up)
	// and target to client (down), failed dials while proxying.
	BytesUp    uint64            `json:"bytes_up"`
	BytesDown  uint64            `json:"bytes_down"`
	DialErrors uint64            `json:"dial_errors"`
	Rates      history.Rates     `json:"rates"`
	History    *history.Snapshot `json:"history,omitempty"`
}

// statusOptions say what a status request asked for.
type statusOptions struct {
	history bool // the history series of every app and target
}

// statusJSON returns the status of a's apps, encoded; with a nil a (no
// tcpproxy app in the config), no apps.
func statusJSON(a *App, o statusOptions) ([]byte, error) {
	resp := statusResponse{Apps: []appStatus{}}
	if a != nil {
		resp.Apps = a.status(o)
		resp.HistoryEnd = a.historyEnd()
	}
	return json.Marshal(resp)
}

// tcpproxyApp returns the tcpproxy app of ctx's config, nil when the
// config has none.
func tcpproxyApp(ctx caddy.Context) (*App, error) {
	v, err := ctx.AppIfConfigured("tcpproxy")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a, ok := v.(*App)
	if !ok {
		return nil, fmt.Errorf("tcpproxy app is a %T", v)
	}
	return a, nil
}

// status returns each app of the config with the current state of its
// targets, in config order. A request that got the config a reload is
// replacing reads it while Caddy cleans it up: Cleanup leaves a.running
// in place for that.
func (a *App) status(o statusOptions) []appStatus {
	out := make([]appStatus, 0, len(a.running))
	for _, r := range a.running {
		st := r.state
		ts := r.set.current()
		s := appStatus{
			Name:              r.name,
			Ports:             r.ports,
			LBPolicy:          r.settings.LBPolicy,
			Listener:          r.listener,
			SteeredPorts:      sockets.steeredPorts(r.steered),
			Targets:           make([]targetStatus, len(ts)),
			ActiveConnections: st.active.Load(),
			Rejections:        make(map[string]uint64, history.NumReasons),
			Rates:             st.hist.Rates(),
		}
		for i, n := range st.rejectionCounts() {
			s.Rejections[history.Reason(i).String()] = n
		}
		if o.history {
			h := st.hist.Snapshot()
			s.History = &h
		}
		for i, t := range ts {
			s.Targets[i] = t.status()
			if o.history {
				h := t.hist.Snapshot()
				s.Targets[i].History = &h
			}
		}
		out = append(out, s)
	}
	return out
}

// status returns the target's row, without its history.
func (t *target) status() targetStatus {
	source := ""
	if p := t.source.Load(); p != nil {
		source = *p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return targetStatus{
		Address:              t.addr,
		Healthy:              t.healthy.Load(),
		State:                targetState(t.state.Load()).String(),
		Weight:               int(t.weight.Load()),
		Backup:               t.backup.Load(),
		Source:               source,
		ActiveConnections:    t.node.Active.Load(),
		TotalConnections:     t.total.Load(),
		LastError:            t.lastError,
		LastCheck:            t.lastCheck,
		LastChange:           t.lastChange,
		ConsecutiveSuccesses: t.successes,
		ConsecutiveFailures:  t.failures,
		BytesUp:              t.up.n.Load(),
		BytesDown:            t.down.n.Load(),
		DialErrors:           t.dialErrors.Load(),
		Rates:                t.hist.Rates(),
	}
}
