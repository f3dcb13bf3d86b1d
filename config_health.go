package tcpproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/probe"
)

// Defaults of the health check settings.
const (
	defaultHealthInterval  = 30 * time.Second
	defaultHealthTimeout   = 2 * time.Second
	maxDefaultDownInterval = 5 * time.Second
)

// HealthChecks configures active health checks. A target never seen before
// starts healthy; `fall` consecutive failed probes mark it down and `rise`
// consecutive successful probes mark it up again.
//
// A probe connects to the target (or to Port on its host) and passes when
// the connection is made, or, with Expect or an HTTP request (URI), when
// the expected answer comes within Timeout.
type HealthChecks struct {
	// Interval between two probes of a target that is up. Default: 30s.
	Interval Duration `json:"interval,omitempty"`

	// Timeout of one probe: connect, send and the answer. Default: 2s.
	Timeout Duration `json:"timeout,omitempty"`

	// Rise is the number of consecutive successes that mark a down target
	// up. Default: 1.
	Rise int `json:"rise,omitempty"`

	// Fall is the number of consecutive failures that mark an up target
	// down. Default: 1.
	Fall int `json:"fall,omitempty"`

	// Disabled turns active probing off; passive checks (a failed dial
	// marks a target down) still apply, and a target they marked down is
	// tried again after DownInterval. Default: false.
	Disabled bool `json:"disabled,omitempty"`

	// DownInterval is how often a target that is down is probed, so that
	// a transient failure costs seconds rather than an Interval. With
	// checks disabled, a target marked down by a failed dial becomes
	// eligible again after it. Default: the smaller of Interval and 5s.
	DownInterval Duration `json:"down_interval,omitempty"`

	// Port, when set, is probed on the target's host instead of the
	// target's own port (a separate health endpoint). Default: the
	// target's port.
	Port int `json:"port,omitempty"`

	// Send is written once connected (as UTF-8 text); SendHex is the same
	// as hex digits, for any bytes. At most one of the two.
	Send    string `json:"send,omitempty"`
	SendHex string `json:"send_hex,omitempty"`

	// Expect, or ExpectHex as hex digits, must appear in what the target
	// sends within Timeout (at most 16 KiB is read). Default: connecting
	// is enough.
	Expect    string `json:"expect,omitempty"`
	ExpectHex string `json:"expect_hex,omitempty"`

	// URI makes the probe an HTTP/1.1 request for it, over plain TCP.
	// Not with Send, SendHex, Expect or ExpectHex.
	URI string `json:"uri,omitempty"`

	// Method of the HTTP probe. Default: GET.
	Method string `json:"method,omitempty"`

	// Headers of the HTTP probe, in Caddy's shape: {"Host": ["db.internal"]}.
	// Default Host: the target's host.
	Headers http.Header `json:"headers,omitempty"`

	// ExpectStatus is the status the HTTP probe must get: a code (200) or
	// a class ("2xx"). Default: any 2xx.
	ExpectStatus *HTTPStatus `json:"expect_status,omitempty"`

	// ExpectBody is a regular expression the HTTP response body must
	// match. Default: any body.
	ExpectBody string `json:"expect_body,omitempty"`
}

// DownPolicy is what becomes of a target's connections when active probes
// mark it down.
type DownPolicy struct {
	// CloseOnDown closes every connection proxied to a target when active
	// probes mark it down (after `fall` failed probes; a failed dial
	// never does it), with the reason `target_down`. Default: false, they
	// run on.
	CloseOnDown bool `json:"close_on_down,omitempty"`
}

// HTTPStatus is the status an HTTP probe expects: an integer code such as
// 200, or a class written as a string such as "2xx". It is written back as
// it was given, so that an adapted config reads as it was written.
type HTTPStatus struct {
	code   int    // given as an integer
	text   string // given as a string
	isText bool
}

// wantHTTPStatus says what an expect_status may be, for its errors.
const wantHTTPStatus = `want a code 100..599 or a class 1xx..5xx such as "2xx"`

// UnmarshalJSON reads an integer or a string; ranges are checked by
// validate, where the error can name the app.
func (s *HTTPStatus) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		s.isText = true
		return json.Unmarshal(b, &s.text)
	}
	if err := json.Unmarshal(b, &s.code); err != nil {
		return fmt.Errorf("%s, got %s", wantHTTPStatus, b)
	}
	return nil
}

// MarshalJSON writes the status as it was given.
func (s HTTPStatus) MarshalJSON() ([]byte, error) {
	if s.isText {
		return json.Marshal(s.text)
	}
	return []byte(strconv.Itoa(s.code)), nil
}

// parseHTTPStatus reads a status as the Caddyfile gives it: three digits
// are a code (an integer in JSON), anything else a class (a string), which
// validate rejects unless it is one: "0200" is refused as in JSON.
func parseHTTPStatus(s string) *HTTPStatus {
	if len(s) == 3 && strings.Trim(s, "0123456789") == "" {
		n, _ := strconv.Atoi(s)
		return &HTTPStatus{code: n}
	}
	return &HTTPStatus{text: s, isText: true}
}

func (s *HTTPStatus) String() string {
	if s.isText {
		return strconv.Quote(s.text)
	}
	return strconv.Itoa(s.code)
}

// codeAndClass returns the exact code or the class digit; ok is false
// when the status is neither (wantHTTPStatus says what is wanted).
func (s *HTTPStatus) codeAndClass() (code, class int, ok bool) {
	text := s.text
	if !s.isText {
		text = strconv.Itoa(s.code)
	}
	code, class, err := probe.ParseStatus(text)
	return code, class, err == nil
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
	for _, d := range []struct {
		name string
		v    Duration
	}{{"interval", hc.Interval}, {"timeout", hc.Timeout}, {"down_interval", hc.DownInterval}} {
		if d.v < 0 {
			return errorf("health_checks."+d.name, "must be positive, got %s", describeDuration(d.v))
		}
	}
	if hc.Rise < 0 {
		return errorf("health_checks.rise", "must be at least 1, got %d", hc.Rise)
	}
	if hc.Fall < 0 {
		return errorf("health_checks.fall", "must be at least 1, got %d", hc.Fall)
	}
	if err := hc.validateCombination(errorf); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(hc.Headers)) {
		if len(hc.Headers[name]) == 0 { // would never be sent
			return errorf("health_checks.headers", "%q: want at least one value", name)
		}
	}
	_, err := hc.prober("", errorf)
	return err
}

// validateCombination refuses settings that contradict each other: the
// same bytes given twice, an HTTP probe with raw bytes, and HTTP settings
// without an HTTP probe.
func (hc *HealthChecks) validateCombination(errorf func(field, format string, args ...any) error) error {
	if hc.Send != "" && hc.SendHex != "" {
		return errorf("health_checks.send_hex", "%q given with send %q: give the bytes once, as text (send) or as hex (send_hex)", hc.SendHex, hc.Send)
	}
	if hc.Expect != "" && hc.ExpectHex != "" {
		return errorf("health_checks.expect_hex", "%q given with expect %q: give the bytes once, as text (expect) or as hex (expect_hex)", hc.ExpectHex, hc.Expect)
	}
	if hc.URI != "" {
		for _, f := range []struct{ name, v string }{{"send", hc.Send}, {"send_hex", hc.SendHex}, {"expect", hc.Expect}, {"expect_hex", hc.ExpectHex}} {
			if f.v != "" {
				return errorf("health_checks.uri", "%q makes the probe an HTTP request, which cannot also have %s (%q)", hc.URI, f.name, f.v)
			}
		}
		return nil
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"method", hc.Method != ""}, {"headers", hc.Headers != nil}, {"expect_status", hc.ExpectStatus != nil}, {"expect_body", hc.ExpectBody != ""}} {
		if f.set {
			return errorf("health_checks."+f.name, "applies to an HTTP probe only: set uri too")
		}
	}
	return nil
}

// prober compiles the probe the settings describe, for an app that sends
// proxyProtocol ("", "v1", "v2") to its targets. An unset timeout counts
// as the default. Its errors name the field at fault through errorf.
func (hc *HealthChecks) prober(proxyProtocol string, errorf func(field, format string, args ...any) error) (*probe.Prober, error) {
	c := probe.Check{Timeout: time.Duration(hc.Timeout), Port: hc.Port, Send: []byte(hc.Send), Expect: []byte(hc.Expect)}
	if c.Timeout == 0 {
		c.Timeout = defaultHealthTimeout
	}
	switch proxyProtocol {
	case "v1":
		c.ProxyHeaderVersion = 1
	case "v2":
		c.ProxyHeaderVersion = 2
	}
	var err error
	if hc.SendHex != "" {
		if c.Send, err = probe.ParseHex(hc.SendHex); err != nil {
			return nil, errorf("health_checks.send_hex", "%v", err)
		}
	}
	if hc.ExpectHex != "" {
		if c.Expect, err = probe.ParseHex(hc.ExpectHex); err != nil {
			return nil, errorf("health_checks.expect_hex", "%v", err)
		}
	}
	if hc.URI != "" {
		if c.HTTP, err = hc.httpCheck(errorf); err != nil {
			return nil, err
		}
	}
	p, err := probe.New(c)
	if err != nil {
		var ce *probe.ConfigError
		if errors.As(err, &ce) && ce.Field != "proxy_protocol" {
			field := ce.Field
			if field == "expect" && hc.ExpectHex != "" {
				field = "expect_hex" // the bytes were given as hex
			}
			return nil, errorf("health_checks."+field, "%v", err)
		}
		return nil, errorf("health_checks", "%v", err)
	}
	return p, nil
}

// httpCheck is the HTTP part of the probe.
func (hc *HealthChecks) httpCheck(errorf func(field, format string, args ...any) error) (*probe.HTTP, error) {
	h := &probe.HTTP{URI: hc.URI, Method: hc.Method, Header: hc.Headers}
	if hc.ExpectStatus != nil {
		var ok bool
		if h.Status, h.StatusClass, ok = hc.ExpectStatus.codeAndClass(); !ok {
			return nil, errorf("health_checks.expect_status", "%s, got %s", wantHTTPStatus, hc.ExpectStatus)
		}
	}
	if hc.ExpectBody != "" {
		re, err := regexp.Compile(hc.ExpectBody)
		if err != nil {
			return nil, errorf("health_checks.expect_body", "%q is not a regular expression: %v", hc.ExpectBody, err)
		}
		h.Body = re
	}
	return h, nil
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
	if out.DownInterval == 0 {
		out.DownInterval = min(out.Interval, Duration(maxDefaultDownInterval))
	}
	return &out
}
