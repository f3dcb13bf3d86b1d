package tcpproxy

import (
	"fmt"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/discovery"
)

// Discovery configures the targets an app takes from DNS: the target
// addresses `srv:<name>` (the SRV records of name) and `dns:<host>:<port>`
// (every A and AAAA record of host, at port). Each record is a target of
// its own; the set follows DNS without a reload.
type Discovery struct {
	// Resolvers are the DNS servers asked, in order (the next one when a
	// server does not answer, refuses or fails): "ip:port", or "ip" for
	// port 53. Host names are not accepted. Default: the system's
	// (/etc/resolv.conf).
	Resolvers []string `json:"resolvers,omitempty"`

	// DNSRefresh is the time between two lookups of each `srv:`/`dns:`
	// target, and of each target written with a host name. After a
	// failed lookup the next comes sooner (1s, doubling up to
	// dns_refresh; 1s for a host name). Default: 30s.
	DNSRefresh Duration `json:"dns_refresh,omitempty"`
}

func (d *Discovery) validate(errorf func(field, format string, args ...any) error) error {
	if d.DNSRefresh < 0 {
		return errorf("dns_refresh", "must be positive, got %s", describeDuration(d.DNSRefresh))
	}
	if _, err := discovery.ParseResolvers(d.Resolvers); err != nil {
		return errorf("resolvers", "%v", err)
	}
	return nil
}

// withDefaults fills dns_refresh.
func (d Discovery) withDefaults() Discovery {
	if d.DNSRefresh == 0 {
		d.DNSRefresh = Duration(discovery.DefaultRefresh)
	}
	return d
}

// discoverySource returns the DNS source a target names; ok is false for
// a plain host:port target. err says what is wrong with a `srv:` or
// `dns:` target: a bad name, or a weight or backup flag on `srv:`, whose
// records carry their own (SRV weight and priority).
func discoverySource(t TargetConfig) (src discovery.Source, ok bool, err error) {
	src, ok, err = discovery.Parse(t.Address)
	if !ok || err != nil {
		return src, ok, err
	}
	if src.Kind == discovery.KindSRV && (t.Weight != 0 || t.Backup) {
		return src, true, fmt.Errorf("target %q: an SRV record gives its own weight and priority (the lowest priority is primary, the others backups): "+
			"remove weight and backup, or use dns:<host>:<port>, whose records all take the target's weight and backup flag", t.Address)
	}
	return src, true, nil
}

// hasDiscovery reports whether some target is a `srv:` or `dns:` one.
func hasDiscovery(ts []TargetConfig) (string, bool) {
	for _, t := range ts {
		if _, ok, _ := discoverySource(t); ok {
			return t.Address, true
		}
	}
	return "", false
}
