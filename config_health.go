package tcpproxy

import (
	"time"
)

// Defaults of the health check settings.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 2 * time.Second
)

// HealthChecks configures active health checks. A target never seen before
// starts healthy; `fall` consecutive failed probes mark it down and `rise`
// consecutive successful probes mark it up again.
type HealthChecks struct {
	// Interval between two probe rounds. Default: 30s.
	Interval Duration `json:"interval,omitempty"`

	// Timeout of one probe (a TCP connect). Default: 2s.
	Timeout Duration `json:"timeout,omitempty"`

	// Rise is the number of consecutive successes that mark a down target
	// up. Default: 1.
	Rise int `json:"rise,omitempty"`

	// Fall is the number of consecutive failures that mark an up target
	// down. Default: 1.
	Fall int `json:"fall,omitempty"`

	// Disabled turns active probing off; passive checks (a failed dial
	// marks a target down) still apply. Default: false.
	Disabled bool `json:"disabled,omitempty"`
}

// UnmarshalJSON decodes the health check settings strictly.
func (h *HealthChecks) UnmarshalJSON(b []byte) error {
	type plain HealthChecks // no methods: avoids recursion
	return decodeFields(b, (*plain)(h), "health_checks.")
}

// validate checks the health check settings (nil: all defaults); errorf
// names the owner (an app).
func (hc *HealthChecks) validate(errorf func(field, format string, args ...any) error) error {
	if hc == nil {
		return nil
	}
	if hc.Interval < 0 {
		return errorf("health_checks.interval", "must be positive, got %s", time.Duration(hc.Interval))
	}
	if hc.Timeout < 0 {
		return errorf("health_checks.timeout", "must be positive, got %s", time.Duration(hc.Timeout))
	}
	if hc.Rise < 0 {
		return errorf("health_checks.rise", "must be at least 1, got %d", hc.Rise)
	}
	if hc.Fall < 0 {
		return errorf("health_checks.fall", "must be at least 1, got %d", hc.Fall)
	}
	return nil
}

// withDefaults returns a copy of the settings (nil: none given) with every
// unset field filled.
func (hc *HealthChecks) withDefaults() *HealthChecks {
	out := HealthChecks{}
	if hc != nil {
		out = *hc
	}
	if out.Interval == 0 {
		out.Interval = Duration(defaultHealthInterval)
	}
	if out.Timeout == 0 {
		out.Timeout = Duration(defaultHealthTimeout)
	}
	if out.Rise == 0 {
		out.Rise = 1
	}
	if out.Fall == 0 {
		out.Fall = 1
	}
	return &out
}
