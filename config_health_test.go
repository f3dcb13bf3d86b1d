package tcpproxy

import (
	"strings"
	"testing"
)

// The health probe settings in the three formats: the same config, with
// the Caddyfile's escapes, hex split over values and the headers block.
func TestHealthProbeSettingsAdaptToSameConfig(t *testing.T) {
	native := `{"apps": [
		{"name": "redis", "ports": [6379], "targets": ["10.0.0.1:6379", "10.0.0.2:6379"], "close_on_down": true,
		 "health_checks": {"interval": "2s", "down_interval": "1s", "timeout": "1s",
			"send": "info replication\r\n", "expect": "role:master"}},
		{"name": "raw", "ports": [7000], "targets": ["10.0.0.1:7000"],
		 "health_checks": {"send_hex": "00 01 ff", "expect_hex": "ca fe", "port": 7001}},
		{"name": "pg", "ports": [5432], "targets": ["10.0.0.1:5432"],
		 "health_checks": {"port": 8008, "uri": "/primary", "method": "GET", "expect_status": 200,
			"headers": {"Host": ["db.internal"], "X-Probe": ["a", "b"]}}},
		{"name": "web", "ports": [8080], "targets": ["10.0.0.1:80"],
		 "health_checks": {"uri": "/health", "expect_status": "2xx", "expect_body": "\"status\":\\s*\"ok\""}}]}`
	plain := `{"Apps": [
		{"Name": "redis", "Ports": [6379], "Targets": ["10.0.0.1:6379", "10.0.0.2:6379"], "Close_On_Down": true,
		 "Health_Checks": {"Interval": "2s", "Down_Interval": "1s", "Timeout": "1s",
			"Send": "info replication\r\n", "Expect": "role:master"}},
		{"Name": "raw", "Ports": [7000], "Targets": ["10.0.0.1:7000"],
		 "health_checks": {"SEND_HEX": "00 01 ff", "expect_hex": "ca fe", "port": 7001}},
		{"Name": "pg", "Ports": [5432], "Targets": ["10.0.0.1:5432"],
		 "health_checks": {"port": 8008, "uri": "/primary", "method": "GET", "expect_status": 200,
			"headers": {"Host": ["db.internal"], "X-Probe": ["a", "b"]}}},
		{"Name": "web", "Ports": [8080], "Targets": ["10.0.0.1:80"],
		 "health_checks": {"uri": "/health", "expect_status": "2xx", "expect_body": "\"status\":\\s*\"ok\""}}]}`
	caddyfile := inGlobalOption(`
		app redis {
			ports 6379
			targets 10.0.0.1:6379 10.0.0.2:6379
			health_interval 2s
			health_down_interval 1s
			health_timeout 1s
			health_send "info replication\r\n"
			health_expect role:master
			close_on_down
		}
		app raw {
			ports 7000
			targets 10.0.0.1:7000
			health_send_hex 00 01 ff
			health_expect_hex cafe
			health_port 7001
		}
		app pg {
			ports 5432
			targets 10.0.0.1:5432
			health_port 8008
			health_uri /primary
			health_method GET
			health_headers {
				Host db.internal
				X-Probe a
				X-Probe b
			}
			health_status 200
		}
		app web {
			ports 8080
			targets 10.0.0.1:80
			health_uri /health
			health_status 2xx
			health_body "\"status\":\s*\"ok\""
		}
`)
	want, err := decodeConfig(formatNative, native)
	if err != nil {
		t.Fatal(err)
	}
	// Hex is kept as written: only the Caddyfile's value differs.
	wantJSON := appJSON(t, want)
	for format, input := range map[configFormat]string{formatPlain: plain, formatCaddyfile: caddyfile} {
		got, err := decodeConfig(format, input)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		gotJSON := strings.Replace(appJSON(t, got), `"expect_hex":"cafe"`, `"expect_hex":"ca fe"`, 1)
		if gotJSON != wantJSON {
			t.Errorf("%s adapts to\n%s\nwant\n%s", format, gotJSON, wantJSON)
		}
	}
	hc := want.Apps[0].HealthChecks
	if hc.Send != "info replication\r\n" || !want.Apps[0].CloseOnDown {
		t.Errorf("redis app: send %q, close_on_down %v", hc.Send, want.Apps[0].CloseOnDown)
	}
	if !strings.Contains(wantJSON, `"expect_status":200`) || !strings.Contains(wantJSON, `"expect_status":"2xx"`) {
		t.Errorf("expect_status not written back as given: %s", wantJSON)
	}
}

// down_interval defaults to the smaller of interval and 5s.
func TestDownIntervalDefault(t *testing.T) {
	for _, c := range []struct {
		hc   *HealthChecks
		want Duration
	}{
		{nil, Duration(5e9)},
		{&HealthChecks{Interval: Duration(2e9)}, Duration(2e9)},
		{&HealthChecks{Interval: Duration(60e9)}, Duration(5e9)},
		{&HealthChecks{Interval: Duration(2e9), DownInterval: Duration(7e9)}, Duration(7e9)},
		{&HealthChecks{Disabled: true}, Duration(5e9)},
	} {
		if got := c.hc.withDefaults().DownInterval; got != c.want {
			t.Errorf("%+v: down_interval %v, want %v", c.hc, got, c.want)
		}
	}
}

// Each bad probe setting is one error naming the app, the field and the
// value, in all three formats.
func TestBadHealthProbeSettings(t *testing.T) {
	testBadValues(t, []badValue{
		{`"health_checks": {"uri": "/health", "send": "PING\r\n"}`, "\t\t\thealth_uri /health\n\t\t\thealth_send PING\n",
			[]string{"health_checks.uri", `"/health"`, "send"}},
		{`"health_checks": {"uri": "/health", "expect_hex": "2b"}`, "\t\t\thealth_expect_hex 2b\n\t\t\thealth_uri /health\n",
			[]string{"health_checks.uri", `"/health"`, "expect_hex"}},
		{`"health_checks": {"send": "PING", "send_hex": "50"}`, "\t\t\thealth_send PING\n\t\t\thealth_send_hex 50\n",
			[]string{"health_checks.send_hex", `"50"`, `"PING"`}},
		{`"health_checks": {"expect": "+PONG", "expect_hex": "2b"}`, "\t\t\thealth_expect +PONG\n\t\t\thealth_expect_hex 2b\n",
			[]string{"health_checks.expect_hex", `"2b"`, `"+PONG"`}},
		{`"health_checks": {"send_hex": "zz"}`, "\t\t\thealth_send_hex zz\n",
			[]string{"health_checks.send_hex", `"zz"`, "not a hex digit"}},
		{`"health_checks": {"expect_hex": "abc"}`, "\t\t\thealth_expect_hex abc\n",
			[]string{"health_checks.expect_hex", `"abc"`, "two hex digits"}},
		{`"health_checks": {"uri": "/", "expect_body": "(unclosed"}`, "\t\t\thealth_uri /\n\t\t\thealth_body (unclosed\n",
			[]string{"health_checks.expect_body", `"(unclosed"`, "not a regular expression"}},
		{`"health_checks": {"uri": "/", "expect_status": 999}`, "\t\t\thealth_uri /\n\t\t\thealth_status 999\n",
			[]string{"health_checks.expect_status", "999", `"2xx"`}},
		{`"health_checks": {"uri": "/", "expect_status": "0200"}`, "\t\t\thealth_uri /\n\t\t\thealth_status 0200\n",
			[]string{"health_checks.expect_status", `"0200"`, `"2xx"`}},
		{`"health_checks": {"uri": "/", "expect_status": "6xx"}`, "\t\t\thealth_uri /\n\t\t\thealth_status 6xx\n",
			[]string{"health_checks.expect_status", `"6xx"`}},
		{`"health_checks": {"uri": "/", "expect_status": "OK"}`, "\t\t\thealth_uri /\n\t\t\thealth_status OK\n",
			[]string{"health_checks.expect_status", `"OK"`}},
		{`"health_checks": {"uri": "/", "expect_status": 2.5}`, "",
			[]string{"health_checks.expect_status", "2.5"}},
		{`"health_checks": {"uri": "health"}`, "\t\t\thealth_uri health\n",
			[]string{"health_checks.uri", `"health"`}},
		{`"health_checks": {"uri": "/", "method": "GE T"}`, "\t\t\thealth_uri /\n\t\t\thealth_method \"GE T\"\n",
			[]string{"health_checks.method", `"GE T"`}},
		{`"health_checks": {"uri": "/", "headers": {"X:Y": ["1"]}}`, "\t\t\thealth_uri /\n\t\t\thealth_headers {\n\t\t\t\tX:Y 1\n\t\t\t}\n",
			[]string{"health_checks.headers", `"X:Y"`}},
		{`"health_checks": {"uri": "/", "headers": {"Host": ["db"], "X-A": []}}`, "",
			[]string{"health_checks.headers", `"X-A"`, "want at least one value"}},
		{`"health_checks": {"uri": "/", "headers": {"Host": "db"}}`, "",
			[]string{"health_checks.headers", `"db"`}},
		{`"health_checks": {"method": "HEAD"}`, "\t\t\thealth_method HEAD\n",
			[]string{"health_checks.method", "set uri"}},
		{`"health_checks": {"expect_status": 200}`, "\t\t\thealth_status 200\n",
			[]string{"health_checks.expect_status", "set uri"}},
		{`"health_checks": {"port": 70000}`, "\t\t\thealth_port 70000\n",
			[]string{"health_checks.port", "70000"}},
		{`"health_checks": {"down_interval": "-1s"}`, "\t\t\thealth_down_interval -1s\n",
			[]string{"health_checks.down_interval", "-1s"}},
		{`"health_checks": {"down_interval": "soon"}`, "\t\t\thealth_down_interval soon\n",
			[]string{"down_interval", `"soon"`}},
		{`"health_checks": {"expect": "` + strings.Repeat("x", 16385) + `"}`, "",
			[]string{"health_checks.expect", "16385 bytes"}},
		{`"health_checks": {"expect_hex": "` + strings.Repeat("2b", 16385) + `"}`, "\t\t\thealth_expect_hex " + strings.Repeat("2b", 16385) + "\n",
			[]string{"health_checks.expect_hex:", "16385 bytes"}},
		{`"close_on_down": "yes"`, "\t\t\tclose_on_down yes\n",
			[]string{"close_on_down", `yes`}},
	})
}

// Caddyfile-only mistakes: escapes, a headers block without headers.
func TestBadHealthProbeCaddyfile(t *testing.T) {
	for _, c := range []struct{ lines, want string }{
		{"\t\t\thealth_send \"PING\\q\"\n", `health_send: "PING\\q": \q is not an escape`},
		{"\t\t\thealth_expect \"\\x4\"\n", `health_expect: "\\x4": \x wants two hex digits`},
		{"\t\t\thealth_send \"\\xff\"\n", `give such bytes with health_send_hex`},
		{"\t\t\thealth_uri /\n\t\t\thealth_headers {\n\t\t\t}\n", "health_headers: want a block"},
		{"\t\t\thealth_uri /\n\t\t\thealth_headers {\n\t\t\t\tHost\n\t\t\t}\n", "health_headers: Host: want at least one value"},
		{"\t\t\thealth_uri /\n\t\t\thealth_headers Host db\n", `health_headers: want a block { <name> <value>... }, got "Host"`},
		{"\t\t\thealth_send_hex\n", "health_send_hex: want hex digits"},
	} {
		_, err := decodeConfig(formatCaddyfile, webBlock(c.lines))
		assertErrorMentions(t, err, `app "web"`, c.want)
	}
}

// The probe examples (README: Redis primary, Patroni) load, and the
// Caddyfile and the native JSON describe the same apps.
func TestHealthProbeExamplesAdaptToSameConfig(t *testing.T) {
	want := mustLoadExample(t, formatNative, "examples/health-probes.json")
	got := mustLoadExample(t, formatCaddyfile, "examples/health-probes.Caddyfile")
	if appJSON(t, got) != appJSON(t, want) {
		t.Errorf("examples/health-probes.Caddyfile adapts to\n%s\nbut examples/health-probes.json is\n%s", appJSON(t, got), appJSON(t, want))
	}
	if len(want.Apps) != 2 || want.Apps[0].HealthChecks.Expect != "role:master" || want.Apps[1].HealthChecks.Port != 8008 {
		t.Errorf("examples/health-probes.json: want the redis and postgres apps, got %s", appJSON(t, want))
	}
}
