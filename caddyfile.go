package tcpproxy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/balance"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tcpproxy", parseCaddyfile)
}

// parseCaddyfile sets up the tcpproxy app from the global option. Syntax:
//
//	tcpproxy {
//		grace_period <duration>
//		app <name> {
//			ports           <port|low-high>...
//			targets         <host:port>...
//			target          <host:port> [weight <n>] [backup]
//			bind            <ip>...
//			listener        sockets|sk_lookup|auto
//			lb_policy       round_robin|least_conn|ip_hash
//			health_interval <duration>
//			health_timeout  <duration>
//			health_rise     <count>
//			health_fall     <count>
//			health_disabled
//			health_down_interval <duration>
//			health_port     <port>
//			health_send     "<text>"     (escapes \r \n \t \0 \\ \" \xHH)
//			health_send_hex <hex>...
//			health_expect   "<text>"
//			health_expect_hex <hex>...
//			health_uri      <uri>
//			health_method   <method>
//			health_headers {
//				<name> <value>...
//			}
//			health_status   <code>|<n>xx
//			health_body     <regexp>
//			close_on_down
//			dial_timeout    <duration>
//			max_connections <count>
//			proxy_protocol  v1|v2
//			idle_timeout    <duration>|off
//			half_close_timeout <duration>|off
//			max_connection_duration <duration>
//			keepalive       off | <idle> [<interval> [<count>]]
//			access_log
//			resolvers       <ip[:port]>...
//			dns_refresh     <duration>
//			accept_proxy_protocol <ip|cidr>...
//			allow           <ip|cidr>...
//			deny            <ip|cidr>...
//			max_connections_per_client <count>
//			client_rate_limit <connections> <window>
//		}
//	}
//
// A target may also be `srv:<name>` or `dns:<host>:<port>` (its DNS
// records are targets). `ports`, `targets`, `target`, `bind`,
// `resolvers`, `accept_proxy_protocol`, `allow` and `deny` may be
// repeated and add up; any other setting may be given once. Several
// `tcpproxy` blocks are merged.
func parseCaddyfile(d *caddyfile.Dispenser, existingVal any) (any, error) {
	app, err := existingApp(d, existingVal)
	if err != nil {
		return nil, err
	}
	p := &optionParser{app: app, graceSet: app.GracePeriod != 0}
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := p.subdirective(d.NewFromNextSegment()); err != nil {
			return nil, err
		}
	}
	// The same validation as the JSON configs.
	if err := app.Validate(); err != nil {
		return nil, p.blame(d, err)
	}
	return httpcaddyfile.App{Name: "tcpproxy", Value: caddyconfig.JSON(app, nil)}, nil
}

// optionParser collects the subdirectives of `tcpproxy` blocks into app.
type optionParser struct {
	app      *App
	graceSet bool
	steps    []parseStep
}

// parseStep is the config as it was after one subdirective.
type parseStep struct {
	seg         *caddyfile.Dispenser // the subdirective, for its line
	gracePeriod Duration
	apps        []*AppConfig
}

// subdirective parses `grace_period` or an `app` block; seg holds just it.
func (p *optionParser) subdirective(seg *caddyfile.Dispenser) error {
	seg.Next()
	var err error
	switch seg.Val() {
	case "grace_period":
		if p.graceSet {
			return seg.Errf("grace_period: given twice")
		}
		p.graceSet = true
		if err = parseDuration(seg, &p.app.GracePeriod); err == nil {
			err = refuseBlock(seg, "grace_period")
		}
	case "app":
		var cfg *AppConfig
		cfg, err = parseAppBlock(seg)
		p.app.Apps = append(p.app.Apps, cfg)
	default:
		err = seg.Errf("unknown subdirective %q (valid: grace_period, app)", seg.Val())
	}
	p.steps = append(p.steps, parseStep{seg, p.app.GracePeriod, p.app.Apps})
	return err
}

// blame reports a Validate error at the line of the subdirective that made
// the config invalid: the first after which the config so far fails.
// Validate reports the first problem in config order, so every config
// before that step is valid and every one after it fails with the same
// error; a binary search finds it without validating at every step.
func (p *optionParser) blame(d *caddyfile.Dispenser, err error) error {
	i := sort.Search(len(p.steps), func(i int) bool {
		s := p.steps[i]
		return (&App{GracePeriod: s.gracePeriod, Apps: s.apps}).Validate() != nil
	})
	if i == len(p.steps) {
		return d.WrapErr(err)
	}
	seg := p.steps[i].seg
	seg.Reset()
	seg.Next()
	return seg.WrapErr(err)
}

// existingApp decodes what earlier `tcpproxy` blocks configured.
func existingApp(d *caddyfile.Dispenser, existingVal any) (*App, error) {
	app := new(App)
	if existingVal == nil {
		return app, nil
	}
	prev, ok := existingVal.(httpcaddyfile.App)
	if !ok {
		return nil, d.Errf("existing tcpproxy config of unexpected type %T", existingVal)
	}
	if err := json.Unmarshal(prev.Value, app); err != nil {
		return nil, d.Errf("existing tcpproxy config: %v", err)
	}
	return app, nil
}

// appDirective parses one subdirective of an `app` block into the app.
type appDirective struct {
	parse      func(d *caddyfile.Dispenser, c *AppConfig) error
	repeatable bool // lists add up; a setting given twice is an error
	block      bool // takes a block of its own (parse reads it)
}

// appDirectives are the subdirectives of an `app` block. A new field of
// the app is one line here.
var appDirectives = map[string]appDirective{
	"ports": {repeatable: true, parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		for _, p := range d.RemainingArgs() {
			c.Ports = append(c.Ports, parsePortRange(p))
		}
		return nil
	}},
	"targets": {repeatable: true, parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		for _, a := range d.RemainingArgs() {
			c.Targets = append(c.Targets, TargetConfig{Address: a})
		}
		return nil
	}},
	"target": {repeatable: true, parse: parseTarget},
	"bind":   listDirective(func(c *AppConfig) *[]string { return &c.Bind }),
	"listener": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseString(d, &c.Listener)
	}},
	"lb_policy": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseString(d, &c.LBPolicy)
	}},
	"proxy_protocol": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseString(d, &c.ProxyProtocol)
	}},
	"dial_timeout": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDuration(d, &c.DialTimeout)
	}},
	"max_connections": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseInt(d, &c.MaxConnections)
	}},
	"health_interval": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDuration(d, &health(c).Interval)
	}},
	"health_timeout": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDuration(d, &health(c).Timeout)
	}},
	"health_rise": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseInt(d, &health(c).Rise)
	}},
	"health_fall": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseInt(d, &health(c).Fall)
	}},
	"health_disabled": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseFlag(d, &health(c).Disabled)
	}},
	"health_down_interval": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDuration(d, &health(c).DownInterval)
	}},
	"health_port": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseInt(d, &health(c).Port)
	}},
	"health_send": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseEscaped(d, &health(c).Send)
	}},
	"health_send_hex": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseHexArgs(d, &health(c).SendHex)
	}},
	"health_expect": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseEscaped(d, &health(c).Expect)
	}},
	"health_expect_hex": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseHexArgs(d, &health(c).ExpectHex)
	}},
	"health_uri": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseString(d, &health(c).URI)
	}},
	"health_method": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseString(d, &health(c).Method)
	}},
	"health_headers": {parse: parseHealthHeaders, block: true},
	"health_status": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseValue(d, &health(c).ExpectStatus, func(s string) (*HTTPStatus, error) { return parseHTTPStatus(s), nil })
	}},
	"health_body": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseString(d, &health(c).ExpectBody)
	}},
	"close_on_down": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error { return parseFlag(d, &c.CloseOnDown) }},
	"idle_timeout": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDurationOrOff(d, &c.IdleTimeout)
	}},
	"half_close_timeout": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDurationOrOff(d, &c.HalfCloseTimeout)
	}},
	"max_connection_duration": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDuration(d, &c.MaxConnectionDuration)
	}},
	"keepalive":  {parse: parseKeepalive},
	"access_log": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error { return parseFlag(d, &c.AccessLog) }},
	"resolvers":  listDirective(func(c *AppConfig) *[]string { return &c.Resolvers }),
	"dns_refresh": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseDuration(d, &c.DNSRefresh)
	}},

	// Client address, access control and per-client limits (Clients).
	"accept_proxy_protocol": listDirective(func(c *AppConfig) *[]string { return &c.AcceptProxyProtocol }),
	"allow":                 listDirective(func(c *AppConfig) *[]string { return &c.Allow }),
	"deny":                  listDirective(func(c *AppConfig) *[]string { return &c.Deny }),
	"max_connections_per_client": {parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		return parseInt(d, &c.MaxConnectionsPerClient)
	}},
	"client_rate_limit": {parse: parseClientRateLimit},
}

// listDirective is a repeatable subdirective whose values add up in the
// list that field returns.
func listDirective(field func(c *AppConfig) *[]string) appDirective {
	return appDirective{repeatable: true, parse: func(d *caddyfile.Dispenser, c *AppConfig) error {
		list := field(c)
		*list = append(*list, d.RemainingArgs()...)
		return nil
	}}
}

// parseTarget parses `target <address> [weight <n>] [backup]`.
func parseTarget(d *caddyfile.Dispenser, c *AppConfig) error {
	args := d.RemainingArgs()
	t := TargetConfig{Address: args[0]}
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "backup" && !t.Backup:
			t.Backup = true
		case args[i] == "weight" && t.Weight == 0 && i+1 < len(args):
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil {
				return d.Errf("target %s: weight: want an integer, got %q", t.Address, args[i])
			}
			if n == 0 { // 0 would read as "unset" in JSON; validate checks the others
				return d.Errf("target %s: weight: %v", t.Address, balance.CheckWeight(n))
			}
			t.Weight = n
		default:
			return d.Errf("target %s: unexpected %q: want target <address> [weight <n>] [backup]", t.Address, args[i])
		}
	}
	c.Targets = append(c.Targets, t)
	return nil
}

// parseFlag sets a setting that takes no value.
func parseFlag(d *caddyfile.Dispenser, dst *bool) error {
	name := d.Val()
	if d.NextArg() {
		return d.Errf("%s: takes no value, got %q", name, d.Val())
	}
	*dst = true
	return nil
}

// parseDurationOrOff parses a duration, or `off` (stored as -1: no timer).
func parseDurationOrOff(d *caddyfile.Dispenser, dst *Duration) error {
	if d.CountRemainingArgs() == 1 && d.NextArg() {
		if d.Val() == "off" {
			*dst = -1
			return nil
		}
		d.Prev()
	}
	return parseDuration(d, dst)
}

// parseKeepalive parses `keepalive off` or
// `keepalive <idle> [<interval> [<count>]]`.
func parseKeepalive(d *caddyfile.Dispenser, c *AppConfig) error {
	args := d.RemainingArgs()
	k := new(Keepalive)
	c.Keepalive = k
	switch {
	case len(args) == 1 && args[0] == "off":
		k.Disabled = true
		return nil
	case len(args) < 1 || len(args) > 3:
		return d.Errf("keepalive: want off, or <idle> [<interval> [<count>]], got %d values", len(args))
	}
	for i, dst := range []*Duration{&k.Idle, &k.Interval} {
		if i >= len(args) {
			return nil
		}
		v, err := caddy.ParseDuration(args[i])
		if err != nil {
			return d.Errf("keepalive: want a duration such as \"15s\" or off, got %q", args[i])
		}
		*dst = Duration(v)
	}
	if len(args) == 3 {
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return d.Errf("keepalive: count: want an integer, got %q", args[2])
		}
		k.Count = n
	}
	return nil
}

// parseClientRateLimit parses `client_rate_limit <connections> <window>`.
func parseClientRateLimit(d *caddyfile.Dispenser, c *AppConfig) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("client_rate_limit: want <connections> <window>, such as 100 10s; got %d values", len(args))
	}
	r := new(ClientRateLimit)
	c.ClientRateLimit = r
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return d.Errf("client_rate_limit: connections: want an integer, got %q", args[0])
	}
	w, err := caddy.ParseDuration(args[1])
	if err != nil {
		return d.Errf("client_rate_limit: window: want a duration such as \"10s\", got %q", args[1])
	}
	r.Connections, r.Window = n, Duration(w)
	return nil
}

// parseAppBlock parses `app <name> { ... }`; d holds just that segment,
// positioned on `app`.
func parseAppBlock(d *caddyfile.Dispenser) (*AppConfig, error) {
	c := new(AppConfig)
	if !d.NextArg() {
		return c, d.Errf("app: missing name, want app <name> { ... }")
	}
	c.Name = d.Val()
	if d.NextArg() {
		return c, d.Errf("app %q: unexpected argument %q after the name", c.Name, d.Val())
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		dir, ok := appDirectives[name]
		if !ok {
			return c, d.Errf("app %q: unknown subdirective %q (valid: %s)", c.Name, name, appDirectiveNames())
		}
		if seen[name] && !dir.repeatable {
			return c, d.Errf("app %q: %s: given twice", c.Name, name)
		}
		seen[name] = true
		if dir.repeatable && d.CountRemainingArgs() == 0 {
			return c, d.Errf("app %q: %s: want at least one value", c.Name, name)
		}
		if err := dir.parse(d, c); err != nil {
			return c, appError(c.Name, err)
		}
		if dir.block {
			continue
		}
		if err := refuseBlock(d, name); err != nil {
			return c, appError(c.Name, err)
		}
	}
	return c, nil
}

// refuseBlock fails if the subdirective just parsed opens a block: only
// `app` and those marked block take one, and anything in another block
// would be lost.
func refuseBlock(d *caddyfile.Dispenser, name string) error {
	if d.NextBlock(d.Nesting()) {
		d.Prev() // back to the brace, on the subdirective's line
		return d.Errf("%s: takes no block", name)
	}
	return nil
}

// health returns the app's health check settings, creating them on first use.
func health(c *AppConfig) *HealthChecks {
	if c.HealthChecks == nil {
		c.HealthChecks = new(HealthChecks)
	}
	return c.HealthChecks
}

// oneArg reads the single value of the current subdirective.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.Errf("%s: want one value, got %d", name, len(args))
	}
	return args[0], nil
}

func parseString(d *caddyfile.Dispenser, dst *string) error {
	return parseValue(d, dst, func(s string) (string, error) { return s, nil })
}

func parseDuration(d *caddyfile.Dispenser, dst *Duration) error {
	return parseValue(d, dst, func(s string) (Duration, error) {
		dur, err := caddy.ParseDuration(s)
		return Duration(dur), err
	})
}

func parseInt(d *caddyfile.Dispenser, dst *int) error {
	return parseValue(d, dst, strconv.Atoi)
}

// parseValue parses the one value of the current subdirective into dst. Its
// error says what was wanted in the words of the JSON decoder's errors.
func parseValue[T any](d *caddyfile.Dispenser, dst *T, parse func(string) (T, error)) error {
	name := d.Val()
	val, err := oneArg(d)
	if err != nil {
		return err
	}
	v, err := parse(val)
	if err != nil {
		return d.Errf("%s: want %s, got %q", name, describeType(reflect.TypeFor[T]()), val)
	}
	*dst = v
	return nil
}

// appError names the app in an error of one of its subdirectives.
func appError(name string, err error) error {
	return fmt.Errorf("app %q: %w", clip(name), err)
}

func appDirectiveNames() string {
	names := make([]string, 0, len(appDirectives))
	for n := range appDirectives {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
