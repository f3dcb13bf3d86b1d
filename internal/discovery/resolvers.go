package discovery

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseResolvers checks an app's resolvers and returns them as "ip:port"
// strings, in the order given (the order of failover). Each entry is an IP
// address with a port ("10.0.0.2:53", "[fd00::2]:53") or, like Caddy's own
// resolvers options, a bare IP address meaning port 53. Host names are
// refused: finding the resolver would itself need a resolver.
func ParseResolvers(addrs []string) ([]string, error) {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		ap, err := parseResolver(a)
		if err != nil {
			return nil, err
		}
		s := ap.String()
		for _, seen := range out {
			if seen == s {
				return nil, fmt.Errorf("resolver %q is listed twice", a)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func parseResolver(a string) (netip.AddrPort, error) {
	if a == "" {
		return netip.AddrPort{}, fmt.Errorf(`resolver "" is empty: write an IP address with an optional port, e.g. "10.0.0.2:53"`)
	}
	if strings.IndexFunc(a, isSpace) >= 0 {
		return netip.AddrPort{}, fmt.Errorf("resolver %q contains a space: write ip:port, e.g. \"10.0.0.2:53\"", a)
	}
	if ip, err := netip.ParseAddr(a); err == nil {
		return netip.AddrPortFrom(ip, 53), nil
	}
	ap, err := netip.ParseAddrPort(a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolver %q is not an IP address with an optional port: write \"ip:port\" or \"ip\" (port 53), e.g. \"10.0.0.2:53\" or \"[fd00::2]:53\"", a)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolver %q has port 0: the port is 1 to 65535 (DNS is 53)", a)
	}
	return ap, nil
}
