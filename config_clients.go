package tcpproxy

import (
	"math"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/acl"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/clientlimit"
)

// Clients says who an app's clients are and which of them it serves:
// the PROXY headers it accepts, the addresses it allows and denies, and
// its per-client limits. Each connection is checked in that order, then
// against max_connections, before any target is chosen or dialed.
type Clients struct {
	// AcceptProxyProtocol lists the sources (IPs and CIDRs) that must
	// start each connection with a PROXY protocol v1 or v2 header within
	// 5s, such as an outer load balancer. The header's source address is
	// then the client's address for everything that follows: allow, deny,
	// the per-client limits, target choice, the access log and the PROXY
	// header sent to targets. A v2 LOCAL header (a health check of the
	// balancer) keeps the connection's own address. A missing, malformed
	// or oversized header closes the connection (bad_proxy_header).
	// Connections from other sources are plain clients whose bytes are
	// never parsed. Default: none.
	AcceptProxyProtocol []string `json:"accept_proxy_protocol,omitempty"`

	// Allow, when non-empty, lists the only clients (IPs and CIDRs) that
	// are served; others are closed at once (denied). Default: all.
	Allow []string `json:"allow,omitempty"`

	// Deny lists clients (IPs and CIDRs) that are closed at once
	// (denied); it is checked before Allow. Default: none.
	Deny []string `json:"deny,omitempty"`

	// MaxConnectionsPerClient caps the concurrent connections of one
	// client IP; beyond it a new one is closed at once (client_limit).
	// Default: 0, no limit.
	MaxConnectionsPerClient int `json:"max_connections_per_client,omitempty"`

	// ClientRateLimit caps the new connections of one client IP in any
	// sliding window; beyond it a new one is closed at once
	// (rate_limited). Default: no limit.
	ClientRateLimit *ClientRateLimit `json:"client_rate_limit,omitempty"`
}

// ClientRateLimit is at most Connections new connections of one client IP
// in any sliding Window: {"connections": 100, "window": "10s"}.
type ClientRateLimit struct {
	// Connections admitted per Window. Required, at least 1.
	Connections int `json:"connections,omitempty"`
	// Window is the length of the sliding window. Required.
	Window Duration `json:"window,omitempty"`
}

// UnmarshalJSON decodes the rate limit strictly.
func (r *ClientRateLimit) UnmarshalJSON(b []byte) error {
	type plain ClientRateLimit // no methods: avoids recursion
	return decodeFields(b, (*plain)(r), "client_rate_limit.")
}

func (c *Clients) validate(errorf func(field, format string, args ...any) error) error {
	for _, l := range []struct {
		field   string
		entries []string
	}{{"accept_proxy_protocol", c.AcceptProxyProtocol}, {"allow", c.Allow}, {"deny", c.Deny}} {
		if _, err := acl.Parse(l.entries); err != nil {
			return errorf(l.field, "%v", err)
		}
	}
	if n := c.MaxConnectionsPerClient; n < 0 || n > math.MaxInt32 {
		return errorf("max_connections_per_client", "must be 0 (no limit) or 1 to %d, got %d", math.MaxInt32, n)
	}
	r := c.ClientRateLimit
	if r == nil {
		return nil
	}
	if r.Connections < 1 || r.Connections > math.MaxInt32 {
		return errorf("client_rate_limit.connections", "must be 1 to %d, got %d", math.MaxInt32, r.Connections)
	}
	if r.Window <= 0 {
		return errorf("client_rate_limit.window", "must be a positive duration such as \"10s\", got %s", describeDuration(r.Window))
	}
	return nil
}

// describeDuration writes a duration as the config would: "off" for a
// timer that is off, "none" for a missing one.
func describeDuration(d Duration) string {
	switch d {
	case -1:
		return `"off"`
	case 0:
		return "none"
	}
	return `"` + d.String() + `"`
}

// limits are the per-client limits as the engine takes them.
func (c *Clients) limits() clientlimit.Limits {
	l := clientlimit.Limits{MaxConcurrent: c.MaxConnectionsPerClient}
	if r := c.ClientRateLimit; r != nil {
		l.Rate, l.Window = r.Connections, time.Duration(r.Window)
	}
	return l
}
