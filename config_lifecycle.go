package tcpproxy

import (
	"net"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// Defaults of the connection lifecycle settings.
const (
	defaultIdleTimeout       = time.Hour
	defaultHalfCloseTimeout  = 60 * time.Second
	defaultKeepaliveIdle     = 15 * time.Second
	defaultKeepaliveInterval = 15 * time.Second
	defaultKeepaliveCount    = 9
)

// Lifecycle bounds the life of each proxied connection, sets TCP
// keepalive on its sockets and turns its access log on. A connection
// keeps the settings of the config that accepted it, across reloads.
type Lifecycle struct {
	// IdleTimeout closes a proxied connection (both sockets) when no byte
	// has moved in either direction for this long. Keepalive probes are
	// not traffic. A negative value (Caddyfile: `off`; JSON also "off")
	// turns it off. Default: 1h.
	IdleTimeout Duration `json:"idle_timeout,omitempty"`

	// HalfCloseTimeout: once one direction has ended (its EOF was passed
	// on), the connection is closed when the other direction moves no
	// byte for this long. Negative (`off`): no limit. Default: 60s.
	HalfCloseTimeout Duration `json:"half_close_timeout,omitempty"`

	// MaxConnectionDuration closes a proxied connection this long after
	// it was accepted, whatever its traffic. Default: no limit.
	MaxConnectionDuration Duration `json:"max_connection_duration,omitempty"`

	// Keepalive sets TCP keepalive on the client's and the target's
	// socket. Default: idle 15s, interval 15s, count 9 (Go's and Caddy's
	// own default, made explicit).
	Keepalive *Keepalive `json:"keepalive,omitempty"`

	// AccessLog writes one entry per client connection when it ends, at
	// INFO (WARN when no target could be reached), on the logger
	// `tcpproxy.access.<app>` with the message "connection closed".
	// Default: off.
	AccessLog bool `json:"access_log,omitempty"`
}

// Keepalive is TCP keepalive: after Idle without traffic the kernel sends
// a probe every Interval, and drops the connection after Count unanswered
// probes. Linux counts in whole seconds.
type Keepalive struct {
	// Idle time before the first probe. Default: 15s.
	Idle Duration `json:"idle,omitempty"`
	// Interval between probes. Default: 15s.
	Interval Duration `json:"interval,omitempty"`
	// Count of unanswered probes that drop the connection. Default: 9.
	Count int `json:"count,omitempty"`
	// Disabled turns keepalive off; the other fields must then be unset.
	Disabled bool `json:"disabled,omitempty"`
}

// UnmarshalJSON decodes the keepalive settings strictly.
func (k *Keepalive) UnmarshalJSON(b []byte) error {
	type plain Keepalive // no methods: avoids recursion
	return decodeFields(b, (*plain)(k), "keepalive.")
}

// Linux's limits for the keepalive socket options.
const (
	maxKeepaliveSeconds = 32767
	maxKeepaliveCount   = 127
)

func (l *Lifecycle) validate(errorf func(field, format string, args ...any) error) error {
	if l.MaxConnectionDuration < 0 {
		return errorf("max_connection_duration", "must be positive (leave it unset for no limit), got %s",
			describeDuration(l.MaxConnectionDuration))
	}
	k := l.Keepalive
	if k == nil {
		return nil
	}
	if k.Disabled && (k.Idle != 0 || k.Interval != 0 || k.Count != 0) {
		return errorf("keepalive", "disabled, but idle, interval or count is set too")
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"keepalive.idle", k.Idle}, {"keepalive.interval", k.Interval}} {
		if v := time.Duration(d.v); v != 0 && (v < time.Second || v > maxKeepaliveSeconds*time.Second) {
			return errorf(d.name, "must be between 1s and %ds (Linux counts whole seconds), got %s", maxKeepaliveSeconds, describeDuration(d.v))
		}
	}
	if k.Count < 0 || k.Count > maxKeepaliveCount {
		return errorf("keepalive.count", "must be between 1 and %d, got %d", maxKeepaliveCount, k.Count)
	}
	return nil
}

// withDefaults fills the unset lifecycle settings.
func (l Lifecycle) withDefaults() Lifecycle {
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(defaultIdleTimeout)
	}
	if l.HalfCloseTimeout == 0 {
		l.HalfCloseTimeout = Duration(defaultHalfCloseTimeout)
	}
	k := Keepalive{}
	if l.Keepalive != nil {
		k = *l.Keepalive
	}
	if !k.Disabled {
		if k.Idle == 0 {
			k.Idle = Duration(defaultKeepaliveIdle)
		}
		if k.Interval == 0 {
			k.Interval = Duration(defaultKeepaliveInterval)
		}
		if k.Count == 0 {
			k.Count = defaultKeepaliveCount
		}
	}
	l.Keepalive = &k
	return l
}

// timeouts are the relay's timers; off (negative) becomes 0.
func (l Lifecycle) timeouts() relay.Timeouts {
	on := func(d Duration) time.Duration { return max(time.Duration(d), 0) }
	return relay.Timeouts{Idle: on(l.IdleTimeout), HalfClose: on(l.HalfCloseTimeout), MaxDuration: on(l.MaxConnectionDuration)}
}

// keepAliveConfig is the keepalive of Go's net package; keepalive must
// have its defaults filled.
func (k *Keepalive) keepAliveConfig() net.KeepAliveConfig {
	if k.Disabled {
		return net.KeepAliveConfig{Enable: false, Idle: -1, Interval: -1, Count: -1}
	}
	return net.KeepAliveConfig{Enable: true, Idle: time.Duration(k.Idle), Interval: time.Duration(k.Interval), Count: k.Count}
}
