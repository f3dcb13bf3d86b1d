package tcpproxy

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestAdaptSpecPlainConfig(t *testing.T) {
	plain := `{
  "Apps": [
    { "Name": "five-thousand", "Ports": [5001, 5200, 5300, 5400],
      "Targets": ["echo-server:1234", "echo-server:5678"] }
  ]
}`
	out, err := runAdapter("tcpproxy", []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apps":{"tcpproxy":{"apps":[{"name":"five-thousand","ports":[5001,5200,5300,5400],"targets":["echo-server:1234","echo-server:5678"]}]}}}`
	if string(out) != want {
		t.Errorf("adapted to\n%s\nwant\n%s", out, want)
	}
	if _, err := caddy.GetModule("caddy.adapters.tcpproxy"); err != nil {
		t.Errorf("adapter module not registered: %v", err)
	}
}

// The plain format takes every optional native field under its native
// name, and its keys in any case.
func TestAdaptPlainConfigWithOptionalFields(t *testing.T) {
	plain := `{"GRACE_PERIOD": "20s", "apps": [{
		"name": "db", "ports": ["7000-7002", 7100], "targets": ["127.0.0.1:9001", "[::1]:9002"],
		"Bind": ["127.0.0.1", "::1"], "LB_Policy": "least_conn",
		"health_checks": {"Interval": "5s", "timeout": "1s", "rise": 2, "fall": 3, "disabled": true},
		"dial_timeout": "500ms", "max_connections": 10, "proxy_protocol": "v1"}]}`
	native := `{"grace_period": "20s", "apps": [{
		"name": "db", "ports": ["7000-7002", 7100], "targets": ["127.0.0.1:9001", "[::1]:9002"],
		"bind": ["127.0.0.1", "::1"], "lb_policy": "least_conn",
		"health_checks": {"interval": "5s", "timeout": "1s", "rise": 2, "fall": 3, "disabled": true},
		"dial_timeout": "500ms", "max_connections": 10, "proxy_protocol": "v1"}]}`
	got, err := decodeConfig(formatPlain, plain)
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeConfig(formatNative, native)
	if err != nil {
		t.Fatal(err)
	}
	if appJSON(t, got) != appJSON(t, want) {
		t.Errorf("plain config adapts to\n%s\nwant\n%s", appJSON(t, got), appJSON(t, want))
	}
}

// Caddy prints the adapter's error as is: it must say which file.
func TestAdaptErrorNamesFile(t *testing.T) {
	_, _, err := Adapter{}.Adapt([]byte("{\"Apps\": [}"), map[string]any{"filename": "config.json"})
	assertErrorMentions(t, err, "config.json: line 1, column 11")
}

var adapterSeeds = []string{
	`{"Apps":[{"Name":"five-thousand","Ports":[5001,5200,5300,5400],"Targets":["echo-server:1234","echo-server:5678"]}]}`,
	`{"grace_period":"5s","apps":[{"name":"a","ports":["6000-6099"],"targets":["[::1]:9"],"bind":["127.0.0.1","::"],` +
		`"lb_policy":"least_conn","health_checks":{"interval":"1s","timeout":"1s","rise":2,"fall":2,"disabled":false},` +
		`"dial_timeout":"1s","max_connections":3,"proxy_protocol":"v2"}]}`,
	`{"Apps":[{"Name":"a","Ports":[1],"Targets":["h:1"]},{"Name":"b","Ports":[1],"Targets":["h:2"],"Bind":["10.0.0.1"]}]}`,
	`{"Apps":[{"Name":"a","Ports":[0,"9-3","abc",70000],"Tagrets":[]}]}`,
	`{"Apps":[null,{"Name":""}], "x": 1}`,
	`{"Apps":[{"Name":"a","Ports":[5001,],`,
	`{"Apps":[{"Name":"r","Ports":[6379],"Targets":["h:1"],"close_on_down":true,"health_checks":{"down_interval":"1s",` +
		`"send":"info\r\n","expect":"role:master"}},{"Name":"p","Ports":[5432],"Targets":["h:2"],"health_checks":{"port":8008,` +
		`"uri":"/primary","method":"GET","headers":{"Host":["db"]},"expect_status":"2xx","expect_body":"ok$"}},` +
		`{"Name":"x","Ports":[7],"Targets":["h:3"],"health_checks":{"send_hex":"00 0a","expect_hex":"ca fe"}},{"Name":"y","Ports":[8],"Targets":["h:4"],"health_checks":{"uri":"/","expect_status":200}}]}`,
	`{"Apps":[{"Name":"d","Ports":[7000],"Targets":["srv:_pg._tcp.db.",{"address":"dns:db:5432","weight":2}],"resolvers":["10.0.0.2:53"],"dns_refresh":"5s"}]}`,
}

// FuzzAdapter feeds bytes to the tcpproxy adapter: it never panics, and
// whatever it accepts Caddy loads as it is.
func FuzzAdapter(f *testing.F) {
	for _, s := range adapterSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := runAdapter("tcpproxy", body)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		checkAccepted(t, out)
	})
}
