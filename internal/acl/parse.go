package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// example lists valid entries for error messages.
const example = `want an IP such as "10.0.0.1" or "2001:db8::1", or a CIDR such as "10.0.0.0/8" or "2001:db8::/32"`

// parseEntry reads one entry, an IP or a CIDR, into a masked prefix. An
// IPv4-mapped address with a prefix length of 96 or more becomes the IPv4
// prefix it stands for. Host bits set past the prefix length are cleared, as
// iptables and HAProxy do: "10.1.2.3/8" is 10.0.0.0/8.
func parseEntry(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf(`empty entry: %s`, example)
	}
	addrPart, bitsPart, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: not an IP address or CIDR (%s): %s", s, addrReason(addrPart, err), example)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: an IPv6 zone (%q) is not allowed in an entry: %s", s, a.Zone(), example)
	}
	bits := a.BitLen()
	if hasBits {
		if bits, err = parseBits(s, bitsPart, a.BitLen()); err != nil {
			return netip.Prefix{}, err
		}
	}
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parseBits reads the prefix length after the "/" of entry s: decimal digits
// only (no sign, no space), at most maxBits.
func parseBits(s, bitsPart string, maxBits int) (int, error) {
	family := "IPv4"
	if maxBits == 128 {
		family = "IPv6"
	}
	if bitsPart == "" {
		return 0, fmt.Errorf("%q: missing prefix length after \"/\": an %s prefix length is 0 to %d", s, family, maxBits)
	}
	bits := 0
	for _, c := range bitsPart {
		if c < '0' || c > '9' || bits > maxBits {
			return 0, fmt.Errorf("%q: invalid prefix length %q: an %s prefix length is 0 to %d", s, bitsPart, family, maxBits)
		}
		bits = bits*10 + int(c-'0')
	}
	if bits > maxBits {
		return 0, fmt.Errorf("%q: invalid prefix length %d: an %s prefix length is 0 to %d", s, bits, family, maxBits)
	}
	return bits, nil
}

// addrReason is netip's explanation of why addr is not an address, without
// its `ParseAddr("...")` prefix, which would repeat the entry.
func addrReason(addr string, err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "ParseAddr("+strconv.Quote(addr)+"): "); ok {
		return rest
	}
	return msg
}
