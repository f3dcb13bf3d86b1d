package tcpproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the admin API module `admin.api.tcpproxy`. On Caddy's admin
// address it serves:
//
//   - `GET /tcpproxy/status`: every app with its ports, load-balancing
//     policy and targets (health, connection counts, last probe and
//     error), as JSON;
//   - `GET /tcpproxy/` (or `/tcpproxy/status` asked for with
//     `Accept: text/html`): the same as a self-contained HTML page that
//     refreshes itself every 2 seconds.
//
// Caddy builds a new admin server on every config load, before the apps
// are provisioned, so the handlers keep no state: they read the running
// config's tcpproxy app at request time.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.tcpproxy",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the routes of the status API and page.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/tcpproxy/status", Handler: caddy.AdminHandlerFunc(handleStatus)},
		{Pattern: "/tcpproxy/", Handler: caddy.AdminHandlerFunc(handleStatusPage)},
	}
}

// statusResponse is the body of `GET /tcpproxy/status`.
type statusResponse struct {
	Apps []appStatus `json:"apps"`
}

// appStatus is one app in the status API.
type appStatus struct {
	Name     string      `json:"name"`
	Ports    []PortRange `json:"ports"`
	LBPolicy string      `json:"lb_policy"`
	// Listener is the listener mode in effect: "sockets" or "sk_lookup"
	// (auto shows the mode it chose).
	Listener string `json:"listener"`
	// SteeredPorts counts the (bind address, port) pairs steered to the
	// app's sk_lookup sockets; 0 in sockets mode.
	SteeredPorts int            `json:"steered_ports"`
	Targets      []targetStatus `json:"targets"`
}

// handleStatus serves the status as JSON, or as the HTML page to a client
// that asks for HTML (a browser opening the URL).
func handleStatus(w http.ResponseWriter, r *http.Request) error {
	if err := requireGET(w, r); err != nil {
		return err
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		return writeStatusPage(w)
	}
	body, err := statusJSON()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(append(body, '\n'))
	return err
}

// handleStatusPage serves the HTML page at `/tcpproxy/`; any other path
// under it is not found.
func handleStatusPage(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path != "/tcpproxy/" {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("not found: %s", r.URL.Path)}
	}
	if err := requireGET(w, r); err != nil {
		return err
	}
	return writeStatusPage(w)
}

func requireGET(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodGet {
		return nil
	}
	w.Header().Set("Allow", http.MethodGet)
	return caddy.APIError{
		HTTPStatus: http.StatusMethodNotAllowed,
		Err:        fmt.Errorf("method %s not allowed: use GET", r.Method),
	}
}

// statusJSON returns the current status, encoded.
func statusJSON() ([]byte, error) {
	apps, err := currentApps()
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return json.Marshal(statusResponse{Apps: apps})
}

// currentApps returns the status of the apps of the running config: none
// when it has no tcpproxy app.
func currentApps() ([]appStatus, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("tcpproxy")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return []appStatus{}, nil
	}
	if err != nil {
		return nil, err
	}
	a, ok := v.(*App)
	if !ok {
		return nil, fmt.Errorf("tcpproxy app is a %T", v)
	}
	return a.status(), nil
}

// status returns each app of the config with the current state of its
// targets, in config order. A request that got the config a reload is
// replacing reads it while Caddy cleans it up: Cleanup leaves a.running
// in place for that.
func (a *App) status() []appStatus {
	out := make([]appStatus, 0, len(a.running))
	for _, r := range a.running {
		s := appStatus{
			Name:         r.name,
			Ports:        r.ports,
			LBPolicy:     r.settings.LBPolicy,
			Listener:     r.listener,
			SteeredPorts: sockets.steeredPorts(r.steered),
			Targets:      make([]targetStatus, len(r.targets)),
		}
		for i, t := range r.targets {
			s.Targets[i] = t.status()
		}
		out = append(out, s)
	}
	return out
}

// writeStatusPage writes the HTML page with the current status embedded,
// so that it shows at once; its script then refreshes it from the JSON
// endpoint. json.Marshal escapes <, > and &, so the embedded JSON cannot
// end the script element early.
func writeStatusPage(w http.ResponseWriter) error {
	body, err := statusJSON()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'")
	page := statusPageHead + string(body) + statusPageTail
	_, err = w.Write([]byte(page))
	return err
}

// The status page, split where the initial status JSON goes. It loads
// nothing from elsewhere: styles and script are inline, and the script
// builds the tables with textContent only.
const statusPageHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tcpproxy status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .2em; }
.meta { color: #666; margin: 0 0 .5em; }
.meta.down { color: #b00020; font-weight: 600; }
p.footer { margin-top: 2em; }
#updated.stale { color: #b00020; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: #fff; table-layout: fixed; }
col.addr { width: 15em; } col.state { width: 6.5em; } col.num { width: 6em; } col.time { width: 7.5em; } col.streak { width: 11em; }
th, td { text-align: left; padding: .35em .7em; border-bottom: 1px solid #ddd; overflow-wrap: anywhere; }
th { background: #eee; font-weight: 600; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.up { background: #e8f5e9; }
tr.down { background: #ffebee; }
.state { font-weight: 700; padding: .1em .5em; border-radius: 3px; color: #fff; white-space: nowrap; }
tr.up .state { background: #2e7d32; }
tr.down .state { background: #c62828; }
td.error { color: #b00020; font-family: ui-monospace, monospace; font-size: .92em; }
</style>
</head>
<body>
<h1>tcpproxy status</h1>
<p class="meta">Refreshes every 2 seconds. <span id="updated"></span></p>
<div id="apps"></div>
<p class="meta footer">The same as JSON: <code>GET /tcpproxy/status</code> with <code>Accept: application/json</code>.</p>
<script id="initial-status" type="application/json">`

const statusPageTail = `</script>
<script>
"use strict";
// Each column: its title and its <col> class (the width).
const columns = [["Target", "addr"], ["State", "state"], ["Active", "num"], ["Total", "num"],
  ["Last check", "time"], ["Streak ok / failed", "streak"], ["Last error", "error"]];
let refreshes = 0;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function clock(d) {
  return d.toLocaleTimeString(undefined, {hour12: false});
}

function appSection(app) {
  const s = el("section");
  s.dataset.app = app.name;
  s.append(el("h2", app.name));
  const up = app.targets.filter(t => t.healthy).length;
  const listener = app.listener === "sk_lookup" ?
    "listener sk_lookup (" + app.steered_ports + " steered ports)" : "listener " + app.listener;
  s.append(el("p", "ports " + app.ports.join(", ") + " \u00b7 " + app.lb_policy + " \u00b7 " + listener + " \u00b7 " +
    up + " of " + app.targets.length + " targets up", up < app.targets.length ? "meta down" : "meta"));
  const table = el("table");
  const cols = el("colgroup");
  const head = el("tr");
  for (const [title, cls] of columns) {
    cols.append(el("col", undefined, cls));
    head.append(el("th", title, cls === "num" || cls === "streak" ? "num" : undefined));
  }
  table.append(cols, head);
  for (const t of app.targets) {
    const row = el("tr", undefined, t.healthy ? "up" : "down");
    row.dataset.target = t.address;
    row.append(el("td", t.address));
    const state = el("td");
    state.append(el("span", t.healthy ? "UP" : "DOWN", "state"));
    row.append(state);
    row.append(el("td", t.active_connections, "num"));
    row.append(el("td", t.total_connections, "num"));
    row.append(el("td", t.last_check ? clock(new Date(t.last_check)) : "never"));
    row.append(el("td", t.consecutive_successes + " / " + t.consecutive_failures, "num"));
    row.append(el("td", t.last_error, "error"));
    table.append(row);
  }
  s.append(table);
  return s;
}

function render(status) {
  const apps = document.getElementById("apps");
  if (status.apps.length === 0) {
    apps.replaceChildren(el("p", "No tcpproxy app is configured.", "meta"));
  } else {
    apps.replaceChildren(...status.apps.map(appSection));
  }
  const u = document.getElementById("updated");
  u.textContent = "Updated " + clock(new Date()) + ".";
  u.className = "";
}

async function refresh() {
  try {
    const resp = await fetch("status", {headers: {"Accept": "application/json"}, cache: "no-store"});
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    render(await resp.json());
    document.body.dataset.refreshes = String(++refreshes);
  } catch (err) {
    const u = document.getElementById("updated");
    u.textContent = "Refresh failed (" + err.message + "); showing older data.";
    u.className = "stale";
  }
}

render(JSON.parse(document.getElementById("initial-status").textContent));
setInterval(refresh, 2000);
</script>
</body>
</html>
`

// Interface guards.
var (
	_ caddy.Module      = adminAPI{}
	_ caddy.AdminRouter = adminAPI{}
)
