package tcpproxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The Caddyfile example of SPEC.md adapts to the native JSON it stands for.
func TestCaddyfileSpecSyntax(t *testing.T) {
	got, err := decodeConfig(formatCaddyfile, inGlobalOption(`		grace_period 30s
		app five-thousand {
			ports 5001 5200 5300 5400
			targets echo-server:1234 echo-server:5678
			bind 127.0.0.1
			lb_policy least_conn
			health_interval 10s
			health_timeout 2s
			health_rise 2
			health_fall 3
			dial_timeout 2s
			max_connections 10000
			proxy_protocol v2
		}
		app range {
			ports 6000-6099
			ports 7000
			targets 127.0.0.1:9001
			targets [::1]:9002
			health_disabled
		}
`))
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeConfig(formatNative, `{"grace_period": "30s", "apps": [{
		"name": "five-thousand", "ports": [5001, 5200, 5300, 5400],
		"targets": ["echo-server:1234", "echo-server:5678"], "bind": ["127.0.0.1"],
		"lb_policy": "least_conn",
		"health_checks": {"interval": "10s", "timeout": "2s", "rise": 2, "fall": 3},
		"dial_timeout": "2s", "max_connections": 10000, "proxy_protocol": "v2"
	}, {
		"name": "range", "ports": ["6000-6099", 7000],
		"targets": ["127.0.0.1:9001", "[::1]:9002"], "health_checks": {"disabled": true}
	}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if appJSON(t, got) != appJSON(t, want) {
		t.Errorf("Caddyfile adapts to\n%s\nwant\n%s", appJSON(t, got), appJSON(t, want))
	}
}

// A Caddyfile that holds only the global option is a complete config that
// Caddy accepts (provisioned, not started).
func TestCaddyfileOnlyGlobalOptionIsValidConfig(t *testing.T) {
	out, err := runAdapter("caddyfile", []byte(webBlock("")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adaptedApp(out); err != nil {
		t.Fatal(err)
	}
	cfg := new(caddy.Config)
	if err := json.Unmarshal(out, cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(cfg); err != nil {
		t.Errorf("caddy rejects %s: %v", out, err)
	}
}

// Repeated tcpproxy blocks add up to one app config.
func TestCaddyfileRepeatedBlocksMerge(t *testing.T) {
	app, err := decodeConfig(formatCaddyfile, `{
	tcpproxy {
		app a {
			ports 5001
			targets 127.0.0.1:9001
		}
	}
	tcpproxy {
		grace_period 3s
		app b {
			ports 5002
			targets 127.0.0.1:9002
		}
	}
}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Apps) != 2 || app.Apps[0].Name != "a" || app.Apps[1].Name != "b" || app.GracePeriod != Duration(3e9) {
		t.Errorf("merged to %s, want apps a and b and grace_period 3s", appJSON(t, app))
	}
}

// caddy-l4's own global option writes the layer4 app; ours must leave it.
func TestCaddyfileKeepsLayer4Option(t *testing.T) {
	out, err := runAdapter("caddyfile", []byte(`{
	layer4 {
		127.0.0.1:5999 {
			route {
				proxy 127.0.0.1:9000
			}
		}
	}
	tcpproxy {
		app web {
			ports 5001
			targets 127.0.0.1:9001
		}
	}
}
`))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := configApps(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(apps["layer4"]), "127.0.0.1:5999") || !strings.Contains(string(apps["tcpproxy"]), `"web"`) {
		t.Errorf("want both the layer4 and the tcpproxy app, got %s", out)
	}
}

var caddyfileSeeds = []string{
	"\t\tgrace_period 30s\n\t\tapp five-thousand {\n\t\t\tports 5001 5200 5300 5400\n" +
		"\t\t\ttargets echo-server:1234 echo-server:5678\n\t\t\tbind 127.0.0.1\n\t\t\tlb_policy least_conn\n" +
		"\t\t\thealth_interval 10s\n\t\t\thealth_timeout 2s\n\t\t\thealth_rise 2\n\t\t\thealth_fall 3\n" +
		"\t\t\tdial_timeout 2s\n\t\t\tmax_connections 10000\n\t\t\tproxy_protocol v2\n\t\t}\n",
	"app a {\nports 6000-6099\ntargets [::1]:1\nhealth_disabled\n}\napp b {\nports 6100\ntargets h:2\nbind ::1 10.0.0.1\n}\n",
	"app a {\nports 0 9-3 abc\ntargets h\nhealth_rise x\ntagrets\n}\ngrace_period 1s\ngrace_period 2s\n",
	"app {\n}\napp a b {\n}\n",
	"app r {\nports 6379\ntargets h:1\nhealth_down_interval 1s\nhealth_send \"info\\r\\n\"\nhealth_expect role:master\nclose_on_down\n}\n" +
		"app p {\nports 5432\ntargets h:2\nhealth_port 8008\nhealth_uri /primary\nhealth_headers {\nHost db\n}\nhealth_status 2xx\nhealth_body ok$\n}\n" +
		"app x {\nports 7\ntargets h:3\nhealth_send_hex 00 0a\nhealth_expect_hex cafe\n}\n",
	"app d {\nports 7000\ntargets srv:_pg._tcp.db. dns:db:5432\ntarget dns:[::1]:1 weight 3 backup\nresolvers 10.0.0.2 [fd00::2]:53\ndns_refresh 5s\n}\n",
}

// FuzzCaddyfile feeds text, as the body of the tcpproxy global option, to
// the caddyfile adapter: it never panics, and whatever it accepts Caddy
// loads as it is.
func FuzzCaddyfile(f *testing.F) {
	for _, s := range caddyfileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Contains(body, "import") {
			return // reads files: not what this fuzzes
		}
		out, err := runAdapter("caddyfile", []byte(inGlobalOption(body)))
		if err != nil {
			return
		}
		checkAccepted(t, out)
	})
}

// A conflict found when the whole config is validated is reported at the
// line of the app block that caused it, however many apps come before and
// after it.
func TestCaddyfileErrorLineAmongManyApps(t *testing.T) {
	var body strings.Builder
	for i := range 50 {
		port := 10000 + i
		if i == 37 {
			port = 10003 // app3's port
		}
		fmt.Fprintf(&body, "\t\tapp app%d {\n\t\t\tports %d\n\t\t\ttargets 127.0.0.1:9001\n\t\t}\n", i, port)
	}
	_, err := decodeConfig(formatCaddyfile, inGlobalOption(body.String()))
	// Each app block is 4 lines and the first starts at line 3.
	assertErrorMentions(t, err, `app "app37": ports: port 10003`, `app "app3"`, fmt.Sprintf("Caddyfile:%d", 3+37*4))
}
