package tcpproxy

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(new(StatusHandler))
	httpcaddyfile.RegisterHandlerDirective("tcpproxy_status", parseStatusDirective)
	// Beside `metrics`: after the auth directives, so that basic_auth
	// in the same site guards it, and usable without a `route` block.
	httpcaddyfile.RegisterDirectiveOrder("tcpproxy_status", httpcaddyfile.After, "metrics")
}

// StatusHandler is the HTTP handler `http.handlers.tcpproxy_status`
// (Caddyfile directive `tcpproxy_status`): it serves the status page of
// the config's tcpproxy apps, and the same status as JSON to a client
// that asks for `application/json` or adds `?format=json`: what the admin
// API serves at `/tcpproxy/`, on a listener and behind the authentication
// the operator chooses. It answers every request it gets (it never calls
// the next handler): put a matcher or a `handle_path` in front of it to
// serve it on one path.
//
//	:8404 {
//		tcpproxy_status
//	}
type StatusHandler struct {
	ctx caddy.Context
}

// CaddyModule returns the Caddy module information.
func (*StatusHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tcpproxy_status",
		New: func() caddy.Module { return new(StatusHandler) },
	}
}

// Provision keeps the config's context: the tcpproxy app is looked up in
// it at request time, when every app of the config has been loaded.
func (h *StatusHandler) Provision(ctx caddy.Context) error {
	h.ctx = ctx
	return nil
}

// ServeHTTP answers GET and HEAD with the page or the JSON.
func (h *StatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed,
			fmt.Errorf("method %s not allowed: use GET", r.Method))
	}
	q, err := parseStatusQuery(r, false)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	a, err := tcpproxyApp(h.ctx)
	if err == nil {
		err = writeStatus(w, a, q)
	}
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return nil
}

// UnmarshalCaddyfile reads the directive, which takes no arguments and no
// block beyond the usual matcher:
//
//	tcpproxy_status [<matcher>]
func (h *StatusHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.Errf("tcpproxy_status takes no arguments, got %q", d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("tcpproxy_status takes no block, got %q", d.Val())
	}
	return nil
}

func parseStatusDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(StatusHandler)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*StatusHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*StatusHandler)(nil)
	_ caddyfile.Unmarshaler       = (*StatusHandler)(nil)
)
