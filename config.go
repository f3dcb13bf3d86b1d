package tcpproxy

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/balance"
)

// quoted lists names as "a", "b", "c".
func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// Defaults of the optional fields.
const (
	defaultGracePeriod = 10 * time.Second
	defaultDialTimeout = 2 * time.Second
)

// AppConfig is one proxied application: a name, the ports it listens on and
// the targets its connections are forwarded to.
type AppConfig struct {
	// Name identifies the app in logs, metrics and the status API. It must
	// be unique and match `[A-Za-z0-9._-]+`. Required.
	Name string `json:"name,omitempty"`

	// Ports to listen on: numbers 1..65535, or strings "low-high" for an
	// inclusive range. A (bind, port) pair may appear once in the whole
	// config, and a wildcard bind conflicts with any other bind on the same
	// port. Required, at least one.
	Ports []PortRange `json:"ports,omitempty"`

	// Bind lists the hosts (IP addresses) to listen on. Default: all
	// interfaces.
	Bind []string `json:"bind,omitempty"`

	Listening

	Upstreams
}

// Upstreams is where and how an app's connections are forwarded. The app
// and the layer4 handler share it.
type Upstreams struct {
	// Targets are where connections are forwarded: `host:port` strings, or
	// objects with a weight and a backup flag (see TargetConfig). Host
	// names are looked up in the background when the config starts and
	// every dns_refresh after (sooner after a failed lookup or a failed
	// dial), so DNS changes are followed. `srv:<name>` and
	// `dns:<host>:<port>` make each DNS record a target (see Discovery).
	// Required, at least one.
	Targets []TargetConfig `json:"targets,omitempty"`

	// LBPolicy chooses an eligible (healthy and ready) target for each
	// connection: `round_robin` (smooth weighted round robin, one
	// rotation per app shared by all its ports), `least_conn` (fewest
	// active connections per unit of weight, ties broken round-robin) or
	// `ip_hash` (weighted rendezvous hashing of the client IP: a client
	// keeps its target while the eligible set is unchanged). Backup
	// targets take connections only while no other target is eligible.
	// Default: `round_robin`.
	LBPolicy string `json:"lb_policy,omitempty"`

	// HealthChecks configures the active probe of every target: a TCP
	// connect, optionally sending bytes and expecting an answer, or an
	// HTTP request (see HealthChecks). Default: a connect every 30s.
	HealthChecks *HealthChecks `json:"health_checks,omitempty"`

	// DialTimeout bounds each dial to a target. Default: 2s.
	DialTimeout Duration `json:"dial_timeout,omitempty"`

	// MaxConnections caps the app's concurrent connections; beyond it a new
	// connection is closed at once and counted. Default: 0, no limit.
	MaxConnections int `json:"max_connections,omitempty"`

	// ProxyProtocol sends a PROXY protocol header carrying the client's
	// address to the target before any payload: `v1` or `v2`. Default: none.
	ProxyProtocol string `json:"proxy_protocol,omitempty"`

	Lifecycle
	DownPolicy
	Discovery
	Clients
}

// Duration is a Caddy duration ("500ms", "2s", "1m30s", "1d", or an integer
// of nanoseconds) that is written back as a string, so that a config adapted
// with `caddy adapt` reads as it was written.
type Duration caddy.Duration

// MarshalJSON writes the duration as a string such as "2s", and a
// negative one (a timer that is off) as "off".
func (d Duration) MarshalJSON() ([]byte, error) {
	if d < 0 {
		return []byte(`"off"`), nil
	}
	return json.Marshal(d.String())
}

// String writes the duration as Go does, without the zero units Go
// appends: "30m", "1h", "1h30m" rather than "30m0s", "1h0m0s", "1h30m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalJSON reads a duration as Caddy does, and "off" as -1 (a timer
// that is off).
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == `"off"` {
		*d = -1
		return nil
	}
	return (*caddy.Duration)(d).UnmarshalJSON(b)
}

// PortRange is a port (`5001`) or an inclusive range of ports
// (`"6000-6099"`). In JSON it is a number or a string.
type PortRange struct {
	Low, High int
	invalid   bool   // not a port or range; raw says what was written
	raw       string // as written, for error messages
}

// UnmarshalJSON accepts a JSON number or a string. Range checks happen in
// Validate, where the error can name the app.
func (p *PortRange) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	*p = parsePortRange(s)
	return nil
}

// MarshalJSON writes a single port as a number and a range as a string.
func (p PortRange) MarshalJSON() ([]byte, error) {
	if p.invalid {
		return json.Marshal(p.raw)
	}
	if p.Low == p.High {
		return []byte(strconv.Itoa(p.Low)), nil
	}
	return json.Marshal(p.String())
}

func (p PortRange) String() string {
	if p.invalid {
		return p.raw
	}
	if p.Low == p.High {
		return strconv.Itoa(p.Low)
	}
	return fmt.Sprintf("%d-%d", p.Low, p.High)
}

// parsePortRange parses "5001" or "6000-6099". An invalid value keeps its
// text in raw so that Validate can report it.
func parsePortRange(s string) PortRange {
	s = strings.TrimSpace(s)
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return PortRange{invalid: true, raw: s}
	}
	return PortRange{Low: l, High: h}
}

// Count is the number of ports in the range.
func (p PortRange) Count() int { return p.High - p.Low + 1 }

var appNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// maxAppNameLen bounds an app name: it labels every metric of the app and
// names its logger and layer4 server, and every log line and error quotes
// it. A name of megabytes is a mistake or an attack, never a name.
const maxAppNameLen = 128

// Validate checks every field of the tcpproxy app and returns the first
// problem, naming the app, the field and the value.
func (a *App) Validate() error {
	if a.GracePeriod < 0 {
		return fmt.Errorf("grace_period: must not be negative, got %s", describeDuration(a.GracePeriod))
	}
	names := make(map[string]int, len(a.Apps))
	var used []portClaimed
	for i, app := range a.Apps {
		if app == nil {
			return fmt.Errorf("apps[%d]: null app", i)
		}
		if err := app.validate(); err != nil {
			return err
		}
		if j, dup := names[app.Name]; dup {
			return fmt.Errorf("app %q: name: duplicate, apps[%d] and apps[%d] are both named %q", app.Name, j, i, app.Name)
		}
		names[app.Name] = i
		if err := app.claimPorts(&used); err != nil {
			return err
		}
	}
	return nil
}

// bindHosts are the hosts the app listens on: "" (all interfaces) when
// bind is not set.
func (c *AppConfig) bindHosts() []string {
	if len(c.Bind) == 0 {
		return []string{""}
	}
	out := make([]string, len(c.Bind))
	for i, b := range c.Bind {
		out[i] = strings.Trim(b, "[]") // "[::1]" is ::1
	}
	return out
}

// errorf prefixes an error with the app and field it concerns.
func (c *AppConfig) errorf(field, format string, args ...any) error {
	return appErrorf(c.Name)(field, format, args...)
}

// appErrorf returns an error constructor naming the app; the app config and
// the handler report their mistakes the same way. Long values are clipped.
func appErrorf(app string) func(field, format string, args ...any) error {
	return func(field, format string, args ...any) error {
		return fmt.Errorf("app %q: %s: %s", clip(app), field, fmt.Sprintf(format, clipArgs(args)...))
	}
}

// validateAppName checks an app name; field is where the name was given.
func validateAppName(name, field string, errorf func(field, format string, args ...any) error) error {
	if name == "" {
		return errorf(field, "required")
	}
	if len(name) > maxAppNameLen {
		return errorf(field, "%d characters long, at most %d", len(name), maxAppNameLen)
	}
	if !appNameRE.MatchString(name) {
		return errorf(field, "%q may only contain letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

func (c *AppConfig) validate() error {
	if err := validateAppName(c.Name, "name", c.errorf); err != nil {
		return err
	}
	if len(c.Ports) == 0 {
		return c.errorf("ports", "at least one port is required")
	}
	for _, p := range c.Ports {
		if p.invalid {
			return c.errorf("ports", "invalid port %q: want a number 1..65535 or a range \"low-high\"", p.raw)
		}
	}
	for i, h := range c.bindHosts() {
		if h != "" && net.ParseIP(h) == nil {
			return c.errorf("bind", "%q is not an IP address", c.Bind[i])
		}
	}
	if err := c.Listening.validate(c.errorf); err != nil {
		return err
	}
	return c.Upstreams.validate(c.errorf)
}

// portClaimed is the ports an app claimed on one bind host, for
// Validate.
type portClaimed struct {
	host, app string // host normalized: "" for all interfaces
	ports     *portSet
}

// claimPorts records the app's (bind, port) pairs in used and fails on a
// pair that another app, or this one, already claimed. A wildcard bind
// ("") conflicts with any bind on the same port. It works on port sets,
// so that a 64,000-port app validates in well under a millisecond.
func (c *AppConfig) claimPorts(used *[]portClaimed) error {
	ports := new(portSet)
	for _, p := range c.Ports {
		for port := p.Low; port <= p.High; port++ {
			if ports.has(uint16(port)) {
				host := normalizeHost(c.bindHosts()[0])
				return c.errorf("ports", "port %d on %s is already used by app %q on %s",
					port, describeHost(host), c.Name, describeHost(host))
			}
			ports.add(uint16(port))
		}
	}
	for _, b := range c.bindHosts() {
		host := normalizeHost(b)
		for _, other := range *used {
			if other.host != host && other.host != "" && host != "" {
				continue
			}
			if port, ok := other.ports.firstCommon(ports); ok {
				return c.errorf("ports", "port %d on %s is already used by app %q on %s",
					port, describeHost(host), other.app, describeHost(other.host))
			}
		}
		*used = append(*used, portClaimed{host: host, app: c.Name, ports: ports})
	}
	return nil
}

// normalizeHost writes a host of bindHosts (brackets already trimmed)
// one way: "" for all interfaces, an IP address in its canonical form.
func normalizeHost(h string) string {
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsUnspecified() {
			return ""
		}
		return ip.String()
	}
	return h
}

func describeHost(h string) string {
	if h == "" {
		return "all interfaces"
	}
	return h
}

// validate checks the upstream settings; errorf names the owner (an app).
func (u *Upstreams) validate(errorf func(field, format string, args ...any) error) error {
	if err := validateTargets(u.Targets, errorf); err != nil {
		return err
	}
	if u.LBPolicy != "" && !slices.Contains(balance.Policies(), u.LBPolicy) {
		return errorf("lb_policy", "unknown policy %q: want one of %s", u.LBPolicy, quoted(balance.Policies()))
	}
	if u.DialTimeout < 0 {
		return errorf("dial_timeout", "must be positive, got %s", describeDuration(u.DialTimeout))
	}
	if u.MaxConnections < 0 {
		return errorf("max_connections", "must be 0 (no limit) or positive, got %d", u.MaxConnections)
	}
	switch u.ProxyProtocol {
	case "", "v1", "v2":
	default:
		return errorf("proxy_protocol", "unknown version %q: want \"v1\" or \"v2\"", u.ProxyProtocol)
	}
	if err := u.Lifecycle.validate(errorf); err != nil {
		return err
	}
	if err := u.Discovery.validate(errorf); err != nil {
		return err
	}
	if err := u.Clients.validate(errorf); err != nil {
		return err
	}
	return u.HealthChecks.validate(errorf)
}

// withDefaults returns the settings with every unset optional field filled.
func (u Upstreams) withDefaults() Upstreams {
	if u.LBPolicy == "" {
		u.LBPolicy = "round_robin"
	}
	if u.DialTimeout == 0 {
		u.DialTimeout = Duration(defaultDialTimeout)
	}
	u.HealthChecks = u.HealthChecks.withDefaults()
	u.Lifecycle = u.Lifecycle.withDefaults()
	u.Discovery = u.Discovery.withDefaults()
	return u
}
