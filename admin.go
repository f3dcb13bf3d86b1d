package tcpproxy

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the admin API module `admin.api.tcpproxy`. On Caddy's admin
// address it serves:
//
//   - `GET /tcpproxy/status`: every app with its ports, load-balancing
//     policy, rejections and targets (health, state, connection and byte
//     counts, last probe and error) and their history, as JSON (status.go);
//   - `POST /tcpproxy/targets`: sets a target's runtime state (ready,
//     drain, maint), see handleTargets;
//   - `GET /tcpproxy/` (or `/tcpproxy/status` asked for with
//     `Accept: text/html`): the same as the status page (status.html).
//
// Browsers can open the page here only when the admin API allows the
// empty origin; the `tcpproxy_status` HTTP handler (status_handler.go)
// serves the same page and JSON on a listener of the operator's choice.
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
		{Pattern: "/tcpproxy/targets", Handler: caddy.AdminHandlerFunc(handleTargets)},
		{Pattern: "/tcpproxy/", Handler: caddy.AdminHandlerFunc(handleStatusPage)},
	}
}

// handleStatus serves the status as JSON, or as the page to a client
// that asks for HTML (a browser opening the URL); see parseStatusQuery.
func handleStatus(w http.ResponseWriter, r *http.Request) error {
	if err := requireGET(w, r); err != nil {
		return err
	}
	return serveAdminStatus(w, r, true)
}

// handleStatusPage serves the page at `/tcpproxy/` (the JSON with
// ?format=json, as the page's script asks); any other path under it is
// not found.
func handleStatusPage(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path != "/tcpproxy/" {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("not found: %s", r.URL.Path)}
	}
	if err := requireGET(w, r); err != nil {
		return err
	}
	return serveAdminStatus(w, r, false)
}

// serveAdminStatus answers a status request about the running config.
func serveAdminStatus(w http.ResponseWriter, r *http.Request, jsonByDefault bool) error {
	q, err := parseStatusQuery(r, jsonByDefault)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	a, err := tcpproxyApp(caddy.ActiveContext())
	if err == nil {
		err = writeStatus(w, a, q)
	}
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return nil
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

// Interface guards.
var (
	_ caddy.Module      = adminAPI{}
	_ caddy.AdminRouter = adminAPI{}
)
