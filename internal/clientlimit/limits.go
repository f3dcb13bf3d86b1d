package clientlimit

import (
	"fmt"
	"math"
	"time"
)

// Limits are an app's per-client limits. A zero field is no limit.
type Limits struct {
	// MaxConcurrent is max_connections_per_client: open connections of
	// one client IP.
	MaxConcurrent int
	// Rate and Window are client_rate_limit: at most Rate new
	// connections of one client IP in any Window.
	Rate   int
	Window time.Duration
}

// Validate says what is wrong with l, naming the config field and the
// value, or returns nil.
func (l Limits) Validate() error {
	switch {
	case l.MaxConcurrent < 0 || l.MaxConcurrent > math.MaxInt32:
		return fmt.Errorf("max_connections_per_client %d: want 0 (no limit) or a number from 1 to %d", l.MaxConcurrent, math.MaxInt32)
	case l.Rate < 0 || l.Rate > math.MaxInt32:
		return fmt.Errorf("client_rate_limit connections %d: want a number from 1 to %d", l.Rate, math.MaxInt32)
	case l.Rate > 0 && l.Window <= 0:
		return fmt.Errorf("client_rate_limit window %q: want a positive duration such as \"10s\"", l.Window)
	case l.Rate == 0 && l.Window != 0:
		return fmt.Errorf("client_rate_limit connections 0 with window %q: want 1 or more connections, or no client_rate_limit", l.Window)
	}
	return nil
}

// params are Limits as the hot path uses them. A Limiter swaps them as a
// whole, so one Acquire sees one consistent set.
type params struct {
	maxConns int32  // 0: no limit
	rate     uint32 // 0: no limit
	width    int64  // nanoseconds per ring slot; 0 when rate is 0
	gen      uint32 // changes when the meaning of a ring slot changes
	limits   Limits // as given
}

// paramsOf derives params from valid limits. prev, the params they
// replace (nil for a new Limiter), decides the generation: rate history
// counted with another slot width means nothing now and is dropped, while a
// new Rate with the same Window keeps it.
func paramsOf(l Limits, prev *params) *params {
	p := &params{maxConns: int32(l.MaxConcurrent), rate: uint32(l.Rate), limits: l}
	if l.Rate > 0 {
		// ring slots before the current one cover at least one Window
		p.width = (int64(l.Window) + slots - 2) / (slots - 1)
	}
	if prev != nil {
		p.gen = prev.gen
		if p.width != prev.width {
			p.gen++
		}
	}
	return p
}

// Verdict is Acquire's answer.
type Verdict uint8

const (
	// OK: the connection is admitted and counted; call Release when it ends.
	OK Verdict = iota
	// ClientLimit: the client already has MaxConcurrent open connections.
	ClientLimit
	// RateLimited: the client has had Rate new connections in the last
	// Window.
	RateLimited
)

// String is the rejection reason of the spec ("client_limit",
// "rate_limited"), or "ok".
func (v Verdict) String() string {
	switch v {
	case OK:
		return "ok"
	case ClientLimit:
		return "client_limit"
	case RateLimited:
		return "rate_limited"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}
