package discovery

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		spec string
		want Source
	}{
		{"srv:_pg._tcp.db.internal", Source{Kind: KindSRV, Name: "_pg._tcp.db.internal"}},
		{"srv:_pg._tcp.db.internal.", Source{Kind: KindSRV, Name: "_pg._tcp.db.internal."}},
		{"SRV:_pg._tcp.db", Source{Kind: KindSRV, Name: "_pg._tcp.db"}},
		{"dns:db.internal:5432", Source{Kind: KindDNS, Name: "db.internal", Port: 5432}},
		{"dns:db:1", Source{Kind: KindDNS, Name: "db", Port: 1}},
		{"dns:10.0.0.1:80", Source{Kind: KindDNS, Name: "10.0.0.1", Port: 80}},
		{"dns:[fd00::1]:80", Source{Kind: KindDNS, Name: "fd00::1", Port: 80}},
	}
	for _, tc := range good {
		got, ok, err := Parse(tc.spec)
		tc.want.Spec = tc.spec
		if !ok || err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v, %v; want %+v, true, nil", tc.spec, got, ok, err, tc.want)
		}
	}

	// Plain host:port addresses, including hosts named "dns" or "srv".
	for _, spec := range []string{"10.0.0.1:80", "db.internal:5432", "[::1]:53", "dns:53", "srv:8080", "localhost", "dnsx:db:1"} {
		if _, ok, err := Parse(spec); ok || err != nil {
			t.Errorf("Parse(%q) = ok %v, err %v; want a plain address (false, nil)", spec, ok, err)
		}
	}

	bad := []struct{ spec, wantErr string }{
		{"srv:", "has no name"},
		{"srv:_pg._tcp.db:5432", "has a port"},
		{"srv:a..b", "empty label"},
		{"srv:_pg._tcp.db internal", "contains a space"},
		{"srv: _pg._tcp.db", "contains a space"},
		{"srv:-a.b", "starts or ends with '-'"},
		{"srv:a/b", "contains '/'"},
		{"srv:" + strings.Repeat("a", 64) + ".b", "longer than 63"},
		{"srv:" + strings.Repeat("abcdefghi.", 26), "longer than 253"},
		{"dns:db.internal", "is not dns:<host>:<port>"},
		{"dns::5432", "has no host"},
		{"dns:db:", `port ""`},
		{"dns:db:0", `port "0"`},
		{"dns:db:65536", `port "65536"`},
		{"dns:db:pg", `port "pg"`},
		{"dns:db_x!:5432", `contains '!'`},
		{"dns:db :5432", "contains a space"},
	}
	for _, tc := range bad {
		_, ok, err := Parse(tc.spec)
		if !ok || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Parse(%q) = ok %v, err %v; want an error containing %q", tc.spec, ok, err, tc.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tc.spec) && !strings.Contains(err.Error(), strings.TrimSpace(tc.spec)) {
			t.Errorf("Parse(%q): error %q does not quote the spec", tc.spec, err)
		}
	}
}

func TestParseResolvers(t *testing.T) {
	got, err := ParseResolvers([]string{"10.0.0.2:53", "10.0.0.3", "[fd00::2]:5353", "fd00::3", "127.0.0.1:1053"})
	want := []string{"10.0.0.2:53", "10.0.0.3:53", "[fd00::2]:5353", "[fd00::3]:53", "127.0.0.1:1053"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ParseResolvers = %q, %v; want %q", got, err, want)
	}
	if got, err := ParseResolvers(nil); err != nil || len(got) != 0 {
		t.Fatalf("ParseResolvers(nil) = %q, %v; want empty (the system's)", got, err)
	}
	bad := []struct {
		addrs   []string
		wantErr string
	}{
		{[]string{"ns1.example.com:53"}, `"ns1.example.com:53" is not an IP address`},
		{[]string{"ns1.example.com"}, "is not an IP address"},
		{[]string{"10.0.0.2:0"}, "has port 0"},
		{[]string{"10.0.0.2:65536"}, "is not an IP address with an optional port"},
		{[]string{""}, "is empty"},
		{[]string{"10.0.0.2 :53"}, "contains a space"},
		{[]string{"10.0.0.2:53", "10.0.0.2"}, `"10.0.0.2" is listed twice`},
		{[]string{"fd00::2:53:"}, "is not an IP address"},
	}
	for _, tc := range bad {
		_, err := ParseResolvers(tc.addrs)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseResolvers(%q) error = %v; want one containing %q", tc.addrs, err, tc.wantErr)
		}
	}
}
