package tcpproxy

import "testing"

// A port or a bind given twice in one app conflicts with itself.
func TestPortClaimedTwiceByOneApp(t *testing.T) {
	for fields, want := range map[string]string{
		`"ports": [5001, "5000-5010"]`:                    `app "web": ports: port 5001 on all interfaces is already used by app "web"`,
		`"bind": ["127.0.0.1", "127.0.0.1"]`:              `app "web": ports: port 5001 on 127.0.0.1 is already used by app "web" on 127.0.0.1`,
		`"bind": ["127.0.0.1", "0.0.0.0"], "ports": [80]`: `port 80 on all interfaces is already used by app "web" on 127.0.0.1`,
	} {
		_, err := decodeConfig(formatNative, webApp(t, fields))
		assertErrorMentions(t, err, want)
	}
}

// BenchmarkValidate64000Ports validates one app of 64,000 ports (an
// sk_lookup app's range), as every load and `caddy validate` does.
func BenchmarkValidate64000Ports(b *testing.B) {
	a := &App{Apps: []*AppConfig{{Name: "wide", Ports: []PortRange{{Low: 1025, High: 65024}},
		Upstreams: Upstreams{Targets: []TargetConfig{{Address: "127.0.0.1:9001"}}}}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
