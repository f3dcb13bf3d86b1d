package tcpproxy

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The config surfaces: the plain config.json through our adapter, the
// Caddyfile through Caddy's caddyfile adapter, and native JSON as Caddy
// decodes it. These tests are pure config tests: nothing listens.

type configFormat string

const (
	formatPlain     configFormat = "config.json"
	formatCaddyfile configFormat = "Caddyfile"
	formatNative    configFormat = "native JSON"
)

// runAdapter runs the named registered config adapter on input.
func runAdapter(adapter string, input []byte) ([]byte, error) {
	a := caddyconfig.GetAdapter(adapter)
	if a == nil {
		return nil, fmt.Errorf("no config adapter %q", adapter)
	}
	out, _, err := a.Adapt(input, nil)
	return out, err
}

// decodeConfig takes input the way its format is loaded and returns the
// decoded, validated tcpproxy app.
func decodeConfig(format configFormat, input string) (*App, error) {
	body := []byte(input)
	switch format {
	case formatPlain:
		out, err := runAdapter("tcpproxy", body)
		if err != nil {
			return nil, err
		}
		return adaptedApp(out)
	case formatCaddyfile:
		out, err := runAdapter("caddyfile", body)
		if err != nil {
			return nil, err
		}
		return adaptedApp(out)
	}
	return decodeNative(body)
}

// decodeNative decodes and validates the native tcpproxy app config, as
// Caddy loads it.
func decodeNative(raw []byte) (*App, error) {
	app := new(App)
	if err := json.Unmarshal(raw, app); err != nil {
		return nil, err
	}
	return app, app.Validate()
}

// configApps returns the apps of a complete Caddy config.
func configApps(config []byte) (map[string]json.RawMessage, error) {
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	err := json.Unmarshal(config, &cfg)
	return cfg.Apps, err
}

// adaptedApp decodes and validates the `apps.tcpproxy` part of a complete
// Caddy config. It fails if the config holds any other app: our adapter
// and Caddyfile option must emit nothing else (above all, no `layer4`).
func adaptedApp(config []byte) (*App, error) {
	apps, err := configApps(config)
	if err != nil {
		return nil, err
	}
	if keys := slices.Sorted(maps.Keys(apps)); !slices.Equal(keys, []string{"tcpproxy"}) {
		return nil, fmt.Errorf("adapted config has apps %v, want only tcpproxy", keys)
	}
	return decodeNative(apps["tcpproxy"])
}

// appJSON is the app as JSON, for comparing configs.
func appJSON(t *testing.T, app *App) string {
	t.Helper()
	b, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustLoadExample loads an example file as Caddy would with the adapter
// of its format; the native example is a complete Caddy config.
func mustLoadExample(t *testing.T, format configFormat, path string) *App {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var app *App
	if format == formatNative {
		app, err = adaptedApp(body)
	} else {
		app, err = decodeConfig(format, string(body))
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return app
}

func TestExamplesAdaptToSameConfig(t *testing.T) {
	want := mustLoadExample(t, formatNative, "examples/caddy.json")
	if len(want.Apps) != 2 || want.GracePeriod == 0 {
		t.Fatalf("examples/caddy.json: want 2 apps and a grace_period, got %s", appJSON(t, want))
	}
	for path, format := range map[string]configFormat{
		"examples/config.json": formatPlain,
		"examples/Caddyfile":   formatCaddyfile,
	} {
		got := mustLoadExample(t, format, path)
		if appJSON(t, got) != appJSON(t, want) {
			t.Errorf("%s adapts to\n%s\nbut examples/caddy.json is\n%s", path, appJSON(t, got), appJSON(t, want))
		}
	}
}

// webApp is the native JSON of one valid app "web", with the members of
// the JSON object fields (such as `"ports": [0]`) added or replacing its own.
func webApp(t *testing.T, fields string) string {
	t.Helper()
	app := map[string]any{"name": "web", "ports": []int{5001}, "targets": []string{"127.0.0.1:9001"}}
	var extra map[string]any
	if err := json.Unmarshal([]byte("{"+fields+"}"), &extra); err != nil {
		t.Fatalf("test data %s: %v", fields, err)
	}
	maps.Copy(app, extra)
	b, err := json.Marshal(map[string]any{"apps": []any{app}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// inGlobalOption puts body into the `tcpproxy` global option of a
// Caddyfile: the first line of body is line 3 of the file.
func inGlobalOption(body string) string {
	return "{\n\ttcpproxy {\n" + body + "\t}\n}\n"
}

// webBlock is a Caddyfile with one valid app "web" (its `app` line is line
// 3) followed by lines, which start at line 6.
func webBlock(lines string) string {
	return inGlobalOption("\t\tapp web {\n\t\t\tports 5001\n\t\t\ttargets 127.0.0.1:9001\n" + lines + "\t\t}\n")
}

// badValue is one invalid setting of the app "web", written in the native
// and plain JSON formats (fields, as in webApp) and in the Caddyfile (lines
// of its app block, as in webBlock; "" where the Caddyfile cannot say it).
type badValue struct {
	json, caddyfile string
	want            []string // what each format's error must mention
}

// sameInEveryFormat checks that the app "web" with fields (native and
// plain JSON, as in webApp) and with lines (Caddyfile, as in webBlock)
// decodes to one config, and returns it.
func sameInEveryFormat(t *testing.T, fields, lines string) *App {
	t.Helper()
	native, err := decodeConfig(formatNative, webApp(t, fields))
	if err != nil {
		t.Fatal(err)
	}
	caddyfile, err := decodeConfig(formatCaddyfile, webBlock(lines))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := decodeConfig(formatPlain, webApp(t, fields))
	if err != nil {
		t.Fatal(err)
	}
	if a, b, c := appJSON(t, native), appJSON(t, caddyfile), appJSON(t, plain); a != b || a != c {
		t.Fatalf("formats differ:\nnative    %s\nCaddyfile %s\nplain     %s", a, b, c)
	}
	return native
}

// testBadValues checks that every format rejects each bad value with an
// error naming the app and mentioning want.
func testBadValues(t *testing.T, cases []badValue) {
	t.Helper()
	for _, c := range cases {
		native := webApp(t, c.json)
		inputs := map[configFormat]string{formatNative: native, formatPlain: native}
		if c.caddyfile != "" {
			inputs[formatCaddyfile] = webBlock(c.caddyfile)
		}
		for format, input := range inputs {
			t.Run(string(format)+"/"+c.json, func(t *testing.T) {
				_, err := decodeConfig(format, input)
				assertErrorMentions(t, err, append([]string{`app "web"`}, c.want...)...)
			})
		}
	}
}

func assertErrorMentions(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want an error mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// TestInvalidConfigsAreRejectedClearly: a bad config is rejected with one
// error that names the app, the field or value at fault, and for a
// Caddyfile or a JSON syntax error, where it is.
func TestInvalidConfigsAreRejectedClearly(t *testing.T) {
	twoApps := func(bindA, bindB string) string {
		return `{"Apps": [
			{"Name": "a", "Ports": [5001], "Targets": ["127.0.0.1:9001"]` + bindA + `},
			{"Name": "b", "Ports": [5001], "Targets": ["127.0.0.1:9002"]` + bindB + `}]}`
	}
	tests := []struct {
		name   string
		format configFormat
		input  string
		want   []string
	}{
		{"duplicate app names", formatNative, `{"apps": [
			{"name": "web", "ports": [5001], "targets": ["127.0.0.1:9001"]},
			{"name": "web", "ports": [5002], "targets": ["127.0.0.1:9002"]}]}`,
			[]string{`app "web": name: duplicate`}},
		{"duplicate app names across Caddyfile blocks", formatCaddyfile,
			"{\n\ttcpproxy {\n\t\tapp web {\n\t\t\tports 5001\n\t\t\ttargets 127.0.0.1:9001\n\t\t}\n\t}\n" +
				"\ttcpproxy {\n\t\tapp web {\n\t\t\tports 5002\n\t\t\ttargets 127.0.0.1:9002\n\t\t}\n\t}\n}\n",
			[]string{`app "web": name: duplicate`, "Caddyfile:9"}},
		{"port 0", formatNative, `{"apps": [{"name": "web", "ports": [0], "targets": ["127.0.0.1:9001"]}]}`,
			[]string{`app "web": ports: invalid port "0"`}},
		{"port 70000", formatPlain, `{"Apps": [{"Name": "web", "Ports": [70000], "Targets": ["127.0.0.1:9001"]}]}`,
			[]string{`app "web": ports: invalid port "70000"`}},
		{"reversed port range", formatCaddyfile, webBlock("\t\t\tports 9-3\n"),
			[]string{`app "web": ports: invalid port "9-3"`, "Caddyfile:3"}},
		{"port not a number", formatNative, `{"apps": [{"name": "web", "ports": ["abc"], "targets": ["127.0.0.1:9001"]}]}`,
			[]string{`app "web": ports: invalid port "abc"`}},
		{"same bind and port in two apps", formatPlain, twoApps(`, "bind": ["127.0.0.1"]`, `, "bind": ["127.0.0.1"]`),
			[]string{`app "b": ports: port 5001 on 127.0.0.1 is already used by app "a"`}},
		{"wildcard bind and specific bind on one port", formatPlain, twoApps(`, "bind": ["127.0.0.1"]`, ``),
			[]string{`app "b": ports: port 5001 on all interfaces is already used by app "a" on 127.0.0.1`}},
		{"wildcard bind in the Caddyfile", formatCaddyfile, inGlobalOption(
			"\t\tapp a {\n\t\t\tports 5001\n\t\t\ttargets 127.0.0.1:9001\n\t\t\tbind 127.0.0.1\n\t\t}\n" +
				"\t\tapp b {\n\t\t\tports 5000-5010\n\t\t\ttargets 127.0.0.1:9002\n\t\t\tbind 0.0.0.0\n\t\t}\n"),
			[]string{`app "b": ports: port 5001 on all interfaces is already used by app "a" on 127.0.0.1`, "Caddyfile:8"}},
		{"target without port", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": ["127.0.0.1"]}]}`,
			[]string{`app "web": targets: "127.0.0.1"`, "missing port"}},
		{"target with port 0", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:0"]}]}`,
			[]string{`app "web": targets: "127.0.0.1:0": invalid port "0"`}},
		{"empty targets", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": []}]}`,
			[]string{`app "web": targets: at least one target is required`}},
		{"targets without values", formatCaddyfile, webBlock("\t\t\ttargets\n"),
			[]string{`app "web": targets: want at least one value`, "Caddyfile:6"}},
		{"unknown lb_policy", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": ["127.0.0.1:9001"], "lb_policy": "random"}]}`,
			[]string{`app "web": lb_policy: unknown policy "random"`, `"least_conn"`}},
		{"negative dial_timeout", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"], "dial_timeout": "-1s"}]}`,
			[]string{`app "web": dial_timeout: must be positive, got "-1s"`}},
		{"dial_timeout off", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"], "dial_timeout": "off"}]}`,
			[]string{`app "web": dial_timeout: must be positive, got "off"`}},
		{"dns_refresh off", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"], "dns_refresh": "off"}]}`,
			[]string{`app "web": dns_refresh: must be positive, got "off"`}},
		{"health down_interval off", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"], "health_checks": {"down_interval": "off"}}]}`,
			[]string{`app "web": health_checks.down_interval: must be positive, got "off"`}},
		{"negative interval without zero units", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"], "health_checks": {"interval": "-30m"}}]}`,
			[]string{`app "web": health_checks.interval: must be positive, got "-30m"`}},
		{"bad duration string", formatCaddyfile, webBlock("\t\t\tdial_timeout soon\n"),
			[]string{`app "web": dial_timeout: want a duration such as "2s", got "soon"`, "Caddyfile:6"}},
		{"bad duration string in JSON", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"], "health_checks": {"interval": "soon"}}]}`,
			[]string{`app "web": health_checks.interval: want a duration such as "2s", got "soon"`}},
		{"bad grace_period", formatNative, `{"grace_period": "1 minute", "apps": []}`,
			[]string{`grace_period: want a duration such as "2s", got "1 minute"`}},
		{"unknown field", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Tagrets": ["127.0.0.1:9001"]}]}`,
			[]string{`app "web": unknown field "Tagrets"`, "targets"}},
		{"target weight of the wrong type", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": [{"address": "1.1.1.1:1", "weight": "2"}]}]}`,
			[]string{`app "web": targets: "1.1.1.1:1": weight: want an integer, got string "2"`}},
		{"unknown field of a target", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": [{"weight": 2, "address": "1.1.1.1:1", "wieght": 2}]}]}`,
			[]string{`app "web": targets: "1.1.1.1:1": unknown field "wieght"`}},
		{"unknown field of client_rate_limit", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": ["1.1.1.1:1"], "client_rate_limit": {"x": 1}}]}`,
			[]string{`app "web": unknown field "client_rate_limit.x" (valid: connections, window)`}},
		{"unknown field of health_checks", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": ["1.1.1.1:1"], "health_checks": {"x": 1}}]}`,
			[]string{`app "web": unknown field "health_checks.x" (valid: interval,`}},
		{"unknown top-level field", formatPlain, `{"Apps": [], "GracePeriod": "1s"}`,
			[]string{`unknown field "GracePeriod"`, "grace_period"}},
		{"bad proxy_protocol", formatNative, `{"apps": [{"name": "web", "ports": [5001], "targets": ["127.0.0.1:9001"], "proxy_protocol": "v3"}]}`,
			[]string{`app "web": proxy_protocol: unknown version "v3"`}},
		{"negative max_connections", formatCaddyfile, webBlock("\t\t\tmax_connections -5\n"),
			[]string{`app "web": max_connections: must be 0 (no limit) or positive, got -5`, "Caddyfile:3"}},
		{"bad bind IP", formatPlain, `{"Apps": [{"Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"], "bind": ["127.0.0.300"]}]}`,
			[]string{`app "web": bind: "127.0.0.300" is not an IP address`}},
		{"bad name characters", formatNative, `{"apps": [{"name": "my app", "ports": [5001], "targets": ["127.0.0.1:9001"]}]}`,
			[]string{`app "my app": name: "my app" may only contain`}},
		{"empty apps list", formatPlain, `{"Apps": []}`, []string{"no apps"}},
		{"empty file", formatPlain, "\n", []string{"no apps"}},
		{"native JSON given to the adapter", formatPlain, `{"apps": {"tcpproxy": {}}}`,
			[]string{"apps: want a list", "native Caddy JSON"}},
		{"JSON syntax error", formatPlain, "{\"Apps\": [\n  {\"Name\": \"web\",\n   \"Ports\": [5001,],\n", []string{"line 3, column 19", "invalid character ']'"}},
		{"JSON cut short", formatPlain, "{\"Apps\": [\n  {\"Name\": \"wéb\",\n", []string{"line 2, column 18", "unexpected end of JSON input"}},
		{"Caddyfile unknown subdirective", formatCaddyfile, webBlock("\t\t\ttagrets 127.0.0.1:9002\n"),
			[]string{`app "web": unknown subdirective "tagrets"`, "Caddyfile:6"}},
		{"Caddyfile unknown option subdirective", formatCaddyfile, inGlobalOption("\t\tgrace 5s\n"),
			[]string{`unknown subdirective "grace"`, "Caddyfile:3"}},
		{"Caddyfile missing argument", formatCaddyfile, webBlock("\t\t\thealth_rise\n"),
			[]string{`app "web": health_rise: want one value, got 0`, "Caddyfile:6"}},
		{"Caddyfile app without a name", formatCaddyfile, inGlobalOption("\t\tapp {\n\t\t\tports 5001\n\t\t}\n"),
			[]string{"app: missing name", "Caddyfile:3"}},
		{"Caddyfile non-numeric health_rise", formatCaddyfile, webBlock("\t\t\thealth_rise often\n"),
			[]string{`app "web": health_rise: want an integer, got "often"`, "Caddyfile:6"}},
		{"Caddyfile setting given twice", formatCaddyfile, webBlock("\t\t\tlb_policy least_conn\n\t\t\tlb_policy round_robin\n"),
			[]string{`app "web": lb_policy: given twice`, "Caddyfile:7"}},
		{"Caddyfile block after a setting", formatCaddyfile, webBlock("\t\t\tlb_policy least_conn {\n\t\t\t\tx\n\t\t\t}\n"),
			[]string{`app "web": lb_policy: takes no block`, "Caddyfile:6"}},
		{"Caddyfile grace_period given twice", formatCaddyfile, inGlobalOption("\t\tgrace_period 5s\n\t\tgrace_period 6s\n"),
			[]string{"grace_period: given twice", "Caddyfile:4"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format)+"/"+tt.name, func(t *testing.T) {
			_, err := decodeConfig(tt.format, tt.input)
			assertErrorMentions(t, err, tt.want...)
		})
	}
}

// TestBadConfigErrorNamesAppAndField is issue 2's requirement (SPEC.md,
// behaviour 7): a bad native config is rejected with an error naming the
// app, the field and the value.
func TestBadConfigErrorNamesAppAndField(t *testing.T) {
	tests := []struct {
		fields       string // replaces or adds fields of the valid app "web"
		field, value string
	}{
		{`"name": "web/1"`, "name", "web/1"},
		{`"ports": [0]`, "ports", "0"},
		{`"ports": [70000]`, "ports", "70000"},
		{`"ports": ["9-3"]`, "ports", "9-3"},
		{`"ports": ["abc"]`, "ports", "abc"},
		{`"ports": [5001.5]`, "ports", "5001.5"},
		{`"ports": "5001"`, "ports", "5001"},
		{`"ports": []`, "ports", "at least one"},
		{`"targets": ["127.0.0.1"]`, "targets", "127.0.0.1"},
		{`"targets": ["127.0.0.1:0"]`, "targets", "127.0.0.1:0"},
		{`"targets": ["127.0.0.1:9001", "127.0.0.1:9001"]`, "targets", "127.0.0.1:9001"},
		{`"targets": []`, "targets", "at least one"},
		{`"bind": ["localhost:80"]`, "bind", "localhost:80"},
		{`"lb_policy": "random"`, "lb_policy", "random"},
		{`"dial_timeout": "-1s"`, "dial_timeout", "-1s"},
		{`"dial_timeout": "fast"`, "dial_timeout", "fast"},
		{`"max_connections": -5`, "max_connections", "-5"},
		{`"max_connections": "many"`, "max_connections", "many"},
		{`"proxy_protocol": "v3"`, "proxy_protocol", "v3"},
		{`"health_checks": {"interval": "-1s"}`, "health_checks.interval", "-1s"},
		{`"health_checks": {"timeout": "soon"}`, "health_checks.timeout", "soon"},
		{`"health_checks": {"rise": -1}`, "health_checks.rise", "-1"},
		{`"health_checks": {"fall": "x"}`, "health_checks.fall", "x"},
		{`"health_checks": {"disabled": "yes"}`, "health_checks.disabled", "yes"},
		{`"health_checks": {"intervall": "1s"}`, "health_checks.intervall", "interval"},
		{`"health_checks": [1]`, "health_checks", "array"},
		{`"Tagrets": ["127.0.0.1:9001"]`, "Tagrets", "targets"},
	}
	for _, tt := range tests {
		t.Run(tt.fields, func(t *testing.T) {
			input := webApp(t, tt.fields)
			_, err := decodeConfig(formatNative, input)
			app := `app "web"`
			if tt.field == "name" {
				app = `app "web/1"`
			}
			assertErrorMentions(t, err, app, tt.field, tt.value)
		})
	}
}

// checkAccepted is the fuzz property of an accepted config: its tcpproxy
// part decodes into App, passes Validate, and is what that App encodes to,
// so Caddy loads exactly what the adapter produced.
func checkAccepted(t *testing.T, config []byte) {
	t.Helper()
	apps, err := configApps(config)
	if err != nil {
		t.Fatalf("accepted, but the output is not a Caddy config: %v\n%s", err, config)
	}
	raw, ok := apps["tcpproxy"]
	if !ok {
		return // a Caddyfile that no longer holds the option
	}
	app, err := decodeNative(raw)
	if err != nil {
		t.Fatalf("accepted, but Caddy would reject it: %v\n%s", err, raw)
	}
	if got := appJSON(t, app); got != string(raw) {
		t.Fatalf("accepted config changes when decoded:\nadapted %s\ndecoded %s", raw, got)
	}
}

// TestReadmeShowsTheExamplesAsTheyAre keeps the README's copies of the
// three example files in step with the files.
func TestReadmeShowsTheExamplesAsTheyAre(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []struct{ marker, lang, file string }{
		{"Plain config.json ([`examples/config.json`]", "json", "examples/config.json"},
		{"Caddyfile ([`examples/Caddyfile`]", "caddyfile", "examples/Caddyfile"},
		{"Native Caddy JSON ([`examples/caddy.json`]", "json", "examples/caddy.json"},
	} {
		text := string(readme)
		i := strings.Index(text, ex.marker)
		if i < 0 {
			t.Errorf("README has no %q", ex.marker)
			continue
		}
		start := strings.Index(text[i:], "```"+ex.lang+"\n") + i + len("```"+ex.lang+"\n")
		end := strings.Index(text[start:], "```\n") + start
		file, err := os.ReadFile(ex.file)
		if err != nil {
			t.Fatal(err)
		}
		want := string(file)
		if j := strings.Index(want, "{"); ex.lang == "caddyfile" && j >= 0 {
			want = want[j:] // the file's leading comment is not in the README
		}
		if got := text[start:end]; got != want {
			t.Errorf("README's copy of %s differs from the file; copy the file into the README", ex.file)
		}
	}
}

func TestDurationsAreWrittenAsTheyAreRead(t *testing.T) {
	for in, want := range map[string]string{`"30m"`: `"30m"`, `"1h"`: `"1h"`, `"90m"`: `"1h30m"`, `"2s"`: `"2s"`,
		`"1m30s"`: `"1m30s"`, `"500ms"`: `"500ms"`, `"off"`: `"off"`, `"-1s"`: `"off"`, `"1d"`: `"24h"`, `"10h0m"`: `"10h"`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got, _ := json.Marshal(d); string(got) != want {
			t.Errorf("%s is written back as %s, want %s", in, got, want)
		}
	}
}
