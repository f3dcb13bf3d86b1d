package tcpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// targetStateRequest is the body of `POST /tcpproxy/targets`.
type targetStateRequest struct {
	App    string `json:"app"`
	Target string `json:"target"`
	State  string `json:"state"`
	Close  bool   `json:"close"`

	state targetState // State, parsed
}

// maxAdminBody bounds what the admin endpoints read of a request body.
const maxAdminBody = 64 << 10

// handleTargets sets a target's runtime state (SPEC.md, "Runtime target
// state"): `ready` takes new connections; `drain` takes none but is still
// probed; `maint` is neither probed nor given connections, and with
// "close": true its established connections are closed (reason admin).
// The answer is the target's status row. The state lives with the
// target's shared state: it survives reloads that keep the target.
func handleTargets(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed,
			Err: fmt.Errorf("method %s not allowed: use POST", r.Method)}
	}
	req, err := decodeTargetStateRequest(r.Body)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	state := req.state
	t, err := findTarget(req.App, req.Target)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	}
	changed := t.setState(state)
	closed := 0
	if state == stateMaint && req.Close {
		closed = live.closeTarget(relay.Admin, t)
	}
	if changed || closed > 0 {
		caddy.Log().Named("tcpproxy").Info("target state set", zap.String("app", t.app),
			zap.String("target", t.addr), zap.String("state", req.State), zap.Int("connections_closed", closed))
	}
	body, err := json.Marshal(t.status())
	if err != nil {
		return err
	}
	return writeJSON(w, body)
}

// decodeTargetStateRequest reads and checks the request body.
func decodeTargetStateRequest(body io.Reader) (targetStateRequest, error) {
	var req targetStateRequest
	b, err := io.ReadAll(io.LimitReader(body, maxAdminBody+1))
	if err != nil {
		return req, fmt.Errorf("reading the body: %v", err)
	}
	if len(b) > maxAdminBody {
		return req, fmt.Errorf("body larger than %d bytes", maxAdminBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf(`want a JSON body {"app": ..., "target": ..., "state": "ready"|"drain"|"maint", "close": true|false}: %v`, err)
	}
	if dec.More() {
		return req, errors.New("want one JSON object, got more after it")
	}
	switch {
	case req.App == "":
		return req, errors.New(`"app" is required`)
	case req.Target == "":
		return req, errors.New(`"target" is required`)
	}
	var ok bool
	if req.state, ok = parseState(req.State); !ok {
		return req, fmt.Errorf(`unknown state %q: want "ready", "drain" or "maint"`, req.State)
	}
	if req.Close && req.state != stateMaint {
		return req, fmt.Errorf(`"close" applies to state "maint" only, got state %q`, req.State)
	}
	return req, nil
}

// findTarget returns the loaded target addr of app, from the shared
// target state: the targets of every loaded config, including handlers in
// layer4 routes of the user's own.
func findTarget(app, addr string) (*target, error) {
	var found *target
	appKnown := false
	targets.Range(func(k, v any) bool {
		key := k.(targetKey)
		if key.app == app {
			appKnown = true
			if key.addr == addr {
				found = v.(*target)
				return false
			}
		}
		return true
	})
	switch {
	case found != nil:
		return found, nil
	case !appKnown:
		return nil, fmt.Errorf("unknown app %q", app)
	}
	return nil, fmt.Errorf("app %q has no target %q", app, addr)
}
