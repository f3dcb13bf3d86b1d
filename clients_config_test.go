package tcpproxy

import (
	"testing"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/clientlimit"
)

func TestClientBadValuesAreRejectedInEveryFormat(t *testing.T) {
	testBadValues(t, []badValue{
		{`"accept_proxy_protocol": ["10.0.0.0/33"]`, "\t\t\taccept_proxy_protocol 10.0.0.0/33\n",
			[]string{"accept_proxy_protocol", "10.0.0.0/33", "prefix length"}},
		{`"accept_proxy_protocol": ["lb.internal"]`, "\t\t\taccept_proxy_protocol lb.internal\n",
			[]string{"accept_proxy_protocol", "lb.internal", "CIDR"}},
		{`"accept_proxy_protocol": "10.0.0.0/8"`, "", []string{"accept_proxy_protocol", "a list"}},
		{`"allow": ["10.0.0.0/8", "1.2.3"]`, "\t\t\tallow 10.0.0.0/8 1.2.3\n", []string{"allow", `"1.2.3"`}},
		{`"allow": [""]`, "", []string{"allow", "empty entry"}},
		{`"deny": ["2001:db8::/129"]`, "\t\t\tdeny 2001:db8::/129\n", []string{"deny", "2001:db8::/129", "0 to 128"}},
		{`"deny": ["fe80::1%eth0"]`, "\t\t\tdeny fe80::1%eth0\n", []string{"deny", "fe80::1%eth0", "zone"}},
		{`"max_connections_per_client": -1`, "\t\t\tmax_connections_per_client -1\n",
			[]string{"max_connections_per_client", "-1"}},
		{`"max_connections_per_client": 3000000000`, "\t\t\tmax_connections_per_client 3000000000\n",
			[]string{"max_connections_per_client", "3000000000"}},
		{`"max_connections_per_client": "ten"`, "\t\t\tmax_connections_per_client ten\n",
			[]string{"max_connections_per_client", "ten"}},
		{`"client_rate_limit": {"connections": 0, "window": "10s"}`, "\t\t\tclient_rate_limit 0 10s\n",
			[]string{"client_rate_limit.connections", "got 0"}},
		{`"client_rate_limit": {"connections": -5, "window": "10s"}`, "\t\t\tclient_rate_limit -5 10s\n",
			[]string{"client_rate_limit.connections", "-5"}},
		{`"client_rate_limit": {"connections": 100}`, "\t\t\tclient_rate_limit 100\n",
			[]string{"client_rate_limit", "window"}},
		{`"client_rate_limit": {"connections": 100, "window": "-10s"}`, "\t\t\tclient_rate_limit 100 -10s\n",
			[]string{"client_rate_limit.window", "-10s"}},
		{`"client_rate_limit": {"connections": 100, "window": "off"}`, "\t\t\tclient_rate_limit 100 off\n",
			[]string{"client_rate_limit", "window", "off"}},
		{`"client_rate_limit": {"connections": "many", "window": "10s"}`, "\t\t\tclient_rate_limit many 10s\n",
			[]string{"client_rate_limit", "connections", "many"}},
		{`"client_rate_limit": {"connections": 100, "window": "soon"}`, "\t\t\tclient_rate_limit 100 soon\n",
			[]string{"client_rate_limit", "window", "soon"}},
		{`"client_rate_limit": {"conections": 100, "window": "10s"}`, "\t\t\tclient_rate_limit 100 10s extra\n",
			[]string{"client_rate_limit"}},
		{`"client_rate_limit": "100/10s"`, "", []string{"client_rate_limit", "100/10s"}},
	})
}

func TestClientSettingsAdaptAlikeInEveryFormat(t *testing.T) {
	fields := `"accept_proxy_protocol": ["10.0.0.0/8", "2001:db8::/32"], "allow": ["192.0.2.0/24", "10.1.2.3"],
		"deny": ["192.0.2.66"], "max_connections_per_client": 10,
		"client_rate_limit": {"connections": 100, "window": "10s"}`
	lines := "\t\t\taccept_proxy_protocol 10.0.0.0/8\n\t\t\taccept_proxy_protocol 2001:db8::/32\n" +
		"\t\t\tallow 192.0.2.0/24 10.1.2.3\n\t\t\tdeny 192.0.2.66\n" +
		"\t\t\tmax_connections_per_client 10\n\t\t\tclient_rate_limit 100 10s\n"
	native := sameInEveryFormat(t, fields, lines)
	want := clientlimit.Limits{MaxConcurrent: 10, Rate: 100, Window: 10 * time.Second}
	if got := native.Apps[0].limits(); got != want {
		t.Errorf("limits %+v, want %+v", got, want)
	}
	// Keys match case-insensitively in the plain format, nested ones too.
	mixed, err := decodeConfig(formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"],
		"Client_Rate_Limit": {"Connections": 100, "Window": "10s"}, "Max_Connections_Per_Client": 10,
		"Accept_Proxy_Protocol": ["10.0.0.0/8", "2001:db8::/32"], "Allow": ["192.0.2.0/24", "10.1.2.3"], "Deny": ["192.0.2.66"]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := appJSON(t, native), appJSON(t, mixed); a != b {
		t.Errorf("mixed-case keys give\n%s\nwant\n%s", b, a)
	}
}
