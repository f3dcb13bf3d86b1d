// Package tcpproxy is a Caddy plugin that proxies TCP: every app listens on
// many ports and forwards each connection to one of its healthy targets,
// round-robin or least-connections, with active and passive health checks
// and reloads that drop no connection.
//
//	{ "apps": { "tcpproxy": { "apps": [ {
//	    "name": "five-thousand",
//	    "ports": [5001, 5200, "6000-6099"],
//	    "targets": ["10.0.0.1:1234", "backend.internal:5678"]
//	} ] } } }
//
// The app (App) turns each app into a caddy-l4 server whose route ends in
// the layer4 handler (Handler); health.go probes the targets; listener.go
// keeps listening sockets alive across reloads; copy.go and internal/relay
// move the bytes; history.go samples the counters into the last 15
// minutes of history; status.go builds the status that the admin API
// (admin.go) and the `tcpproxy_status` HTTP handler (status_handler.go)
// serve as JSON and as a page (status.html).
package tcpproxy

import (
	"github.com/caddyserver/caddy/v2"

	// The layer4 app and its modules, so that users need only one --with.
	_ "github.com/mholt/caddy-l4"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(Handler))
}
