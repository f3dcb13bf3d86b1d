// Command caddy is Caddy with its standard modules, caddy-l4 and the
// tcpproxy plugin compiled in, so the plugin runs without xcaddy:
//
//	go run ./cmd/caddy run --config examples/demo.json
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddy-tcpproxy/caddy-tcpproxy"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4"
)

func main() {
	caddycmd.Main()
}
