package tcpproxy

import (
	"fmt"
	"strings"
	"testing"
)

// Hostile or mistaken input through the admin API (issue 14, fault 8):
// megabytes where a name or a value goes.

// TestAppNameLengthIsBounded: a name of 10 MiB passed validation (it has
// only valid characters) and was loaded: it would have labelled every
// metric and been quoted in every log line of the app.
func TestAppNameLengthIsBounded(t *testing.T) {
	ok := strings.Repeat("n", maxAppNameLen)
	if _, err := decodeConfig(formatNative, fmt.Sprintf(`{"apps": [{"name": %q, "ports": [5001], "targets": ["127.0.0.1:9001"]}]}`, ok)); err != nil {
		t.Errorf("a name of %d characters: %v", maxAppNameLen, err)
	}
	for _, n := range []int{maxAppNameLen + 1, 1 << 20} {
		name := strings.Repeat("n", n)
		for format, input := range map[configFormat]string{
			formatNative:    fmt.Sprintf(`{"apps": [{"name": %q, "ports": [5001], "targets": ["127.0.0.1:9001"]}]}`, name),
			formatPlain:     fmt.Sprintf(`{"Apps": [{"Name": %q, "Ports": [5001], "Targets": ["127.0.0.1:9001"]}]}`, name),
			formatCaddyfile: inGlobalOption(fmt.Sprintf("\t\tapp %s {\n\t\t\tports 5001\n\t\t\ttargets 127.0.0.1:9001\n\t\t}\n", name)),
		} {
			_, err := decodeConfig(format, input)
			assertErrorMentions(t, err, "name", fmt.Sprintf("%d characters long, at most %d", n, maxAppNameLen))
			if err != nil && len(err.Error()) > 2*maxQuoted+200 {
				t.Errorf("%s, name of %d characters: the error is %d bytes long", format, n, len(err.Error()))
			}
		}
	}
}

// TestErrorsClipHugeValues: an error quotes at most maxQuoted bytes of a
// value, and says how long it was: a 10 MiB value came back whole in the
// admin API's answer and in the log line of the failed load. (1 MiB here:
// the same, faster.)
func TestErrorsClipHugeValues(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	// (The count is of the value as written: with its quotes, and for a
	// list its brackets.)
	cases := []struct {
		name   string
		fields string // as in webApp
		want   string
	}{
		{"bad target", fmt.Sprintf(`"targets": [%q]`, huge), "targets"},
		{"bad port", fmt.Sprintf(`"ports": [%q]`, huge), "ports"},
		{"bad duration", fmt.Sprintf(`"dial_timeout": %q`, huge), "dial_timeout"},
		{"bad policy", fmt.Sprintf(`"lb_policy": %q`, huge), "lb_policy"},
		{"bad bind", fmt.Sprintf(`"bind": [%q]`, huge), "bind"},
		{"unknown field", fmt.Sprintf(`%q: 1`, huge), "unknown field"},
		{"wrong type", fmt.Sprintf(`"health_checks": [%q]`, huge), "health_checks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeConfig(formatNative, webApp(t, c.fields))
			assertErrorMentions(t, err, `app "web"`, c.want, "... (10", " bytes)")
			if err != nil && len(err.Error()) > 2*maxQuoted+300 {
				t.Errorf("the error is %d bytes long: %.300s", len(err.Error()), err)
			}
		})
	}
	if got := clip("short"); got != "short" {
		t.Errorf("clip(%q) = %q", "short", got)
	}
	// Cut at a character boundary: no broken UTF-8.
	if got := clip(strings.Repeat("é", maxQuoted)); !strings.HasPrefix(got, strings.Repeat("é", maxQuoted/2)+"...") {
		t.Errorf("clip cut a character: %q", got[maxQuoted-4:])
	}
}
