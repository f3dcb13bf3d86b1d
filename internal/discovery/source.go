package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Kinds of Source.
const (
	KindSRV = "srv" // srv:<name>: the SRV records of name
	KindDNS = "dns" // dns:<host>:<port>: the A and AAAA records of host
)

// Source is one target address that names DNS records instead of a target.
type Source struct {
	Kind string // KindSRV or KindDNS
	Name string // the DNS name looked up, as written
	Port int    // KindDNS only: the port of every record
	Spec string // the address as configured, e.g. "srv:_pg._tcp.db.internal"
}

// Parse reads a target address. ok is false when spec is no discovery
// address at all (it does not start with "srv:" or "dns:", in any case): the
// caller treats it as a plain host:port. A spec whose prefix is followed by
// nothing but a port number ("dns:53") is also not one: it is the plain
// address of a host named "dns" or "srv", which worked before these
// prefixes existed. With ok true, err says what is wrong with the rest.
//
// A name is looked up as written, so the system's search domains apply to a
// name without a trailing dot, as for any other lookup; end it with a dot
// ("srv:_pg._tcp.db.internal.") to look up only that name.
func Parse(spec string) (src Source, ok bool, err error) {
	prefix, rest, found := strings.Cut(spec, ":")
	if !found {
		return Source{}, false, nil
	}
	kind := strings.ToLower(prefix)
	if kind != KindSRV && kind != KindDNS || isPort(rest) {
		return Source{}, false, nil
	}
	src = Source{Kind: kind, Spec: spec}
	if i := strings.IndexFunc(rest, isSpace); i >= 0 {
		return src, true, fmt.Errorf("target %q contains a space: write %s:<name> with no spaces", spec, kind)
	}
	if kind == KindSRV {
		return parseSRV(src, rest)
	}
	return parseDNS(src, rest)
}

func parseSRV(src Source, name string) (Source, bool, error) {
	if name == "" {
		return src, true, fmt.Errorf("target %q has no name: write srv:<name>, e.g. srv:_pg._tcp.db.internal", src.Spec)
	}
	if strings.Contains(name, ":") {
		return src, true, fmt.Errorf("target %q has a port: write srv:<name> alone, each SRV record gives its port", src.Spec)
	}
	if err := checkName(name); err != nil {
		return src, true, fmt.Errorf("target %q: %v", src.Spec, err)
	}
	src.Name = name
	return src, true, nil
}

func parseDNS(src Source, hostport string) (Source, bool, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return src, true, fmt.Errorf("target %q is not dns:<host>:<port> (e.g. dns:db.internal:5432): %v", src.Spec, err)
	}
	if host == "" {
		return src, true, fmt.Errorf("target %q has no host: write dns:<host>:<port>, e.g. dns:db.internal:5432", src.Spec)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return src, true, fmt.Errorf("target %q: port %q is not a number from 1 to 65535", src.Spec, port)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		if err := checkName(host); err != nil {
			return src, true, fmt.Errorf("target %q: %v", src.Spec, err)
		}
	}
	src.Name, src.Port = host, n
	return src, true, nil
}

// checkName applies the rules Go's resolver applies before it sends a
// query (it answers "no such host" for a name that breaks them, which would
// read like a DNS answer), so a bad name fails at config load instead.
func checkName(name string) error {
	if len(name) > 253 && !(len(name) == 254 && name[253] == '.') {
		return fmt.Errorf("name %q is longer than 253 characters", name)
	}
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	for _, l := range labels {
		switch {
		case l == "":
			return fmt.Errorf("name %q has an empty label: labels are separated by single dots", name)
		case len(l) > 63:
			return fmt.Errorf("name %q has a label longer than 63 characters: %q", name, l)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("name %q has a label that starts or ends with '-': %q", name, l)
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("name %q contains %q: a name has letters, digits, '-', '_' and dots", name, c)
			}
		}
	}
	return nil
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535 && s[0] != '+' && s[0] != '-'
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}
