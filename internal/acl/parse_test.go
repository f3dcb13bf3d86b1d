package acl

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseEntry(t *testing.T) {
	good := []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"}, // host bits cleared
		{"192.0.2.7", "192.0.2.7/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"::/0", "::/0"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::ffff:0:0/96", "0.0.0.0/0"},
		{"::ffff:0:0/95", "::fffe:0:0/95"}, // shorter than /96: an IPv6 entry
		{"10.0.0.0/032", "10.0.0.0/32"},
	}
	for _, c := range good {
		p, err := parseEntry(c.in)
		if err != nil {
			t.Errorf("parseEntry(%q): %v", c.in, err)
			continue
		}
		if p != netip.MustParsePrefix(c.want) {
			t.Errorf("parseEntry(%q) = %v, want %v", c.in, p, c.want)
		}
	}

	bad := []struct{ in, want string }{
		{"", `empty entry: want an IP such as "10.0.0.1"`},
		{"10.0.0.0/33", `"10.0.0.0/33": invalid prefix length 33: an IPv4 prefix length is 0 to 32`},
		{"2001:db8::/129", `"2001:db8::/129": invalid prefix length 129: an IPv6 prefix length is 0 to 128`},
		{"10.0.0.0/", `"10.0.0.0/": missing prefix length after "/"`},
		{"10.0.0.0/x", `"10.0.0.0/x": invalid prefix length "x": an IPv4 prefix length is 0 to 32`},
		{"10.0.0.0/+8", `invalid prefix length "+8"`},
		{"10.0.0.0/ 8", `invalid prefix length " 8"`},
		{"10.0.0.0/99999999999999999999", `invalid prefix length "99999999999999999999"`},
		{"10.0.0.0/8/8", `invalid prefix length "8/8"`},
		{"300.1.1.1", `"300.1.1.1": not an IP address or CIDR (IPv4 field has value >255)`},
		{"example.com", `"example.com": not an IP address or CIDR (`},
		{" 10.0.0.1", `" 10.0.0.1": not an IP address or CIDR`},
		{"/8", `"/8": not an IP address or CIDR`},
		{"fe80::1%eth0", `"fe80::1%eth0": an IPv6 zone ("eth0") is not allowed`},
		{"fe80::%eth0/64", `"fe80::%eth0/64": an IPv6 zone ("eth0") is not allowed`},
	}
	for _, c := range bad {
		_, err := parseEntry(c.in)
		if err == nil {
			t.Errorf("parseEntry(%q): no error, want %q", c.in, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseEntry(%q) error %q, want it to contain %q", c.in, err, c.want)
		}
		if c.in != "" && !strings.Contains(err.Error(), "want") && !strings.Contains(err.Error(), " is 0 to ") {
			t.Errorf("parseEntry(%q) error %q does not say what would be valid", c.in, err)
		}
	}
}

func TestParseNamesFirstBadEntry(t *testing.T) {
	s, err := Parse([]string{"10.0.0.0/8", "10.0.0.0/33", "bogus"})
	if err == nil || !strings.HasPrefix(err.Error(), `"10.0.0.0/33": `) {
		t.Fatalf("Parse = %v, %v; want the error of entry \"10.0.0.0/33\"", s, err)
	}
	if s != nil {
		t.Fatalf("Parse returned a set with an error")
	}
}
