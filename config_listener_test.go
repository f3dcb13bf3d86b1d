package tcpproxy

import "testing"

func TestListenerModeBadValues(t *testing.T) {
	testBadValues(t, []badValue{
		{`"listener": "ebpf"`, "\t\t\tlistener ebpf\n", []string{"listener", `"ebpf"`, "sockets", "sk_lookup", "auto"}},
		{`"listener": "SK_LOOKUP"`, "\t\t\tlistener SK_LOOKUP\n", []string{"listener", `"SK_LOOKUP"`}},
		{`"listener": 1`, "\t\t\tlistener\n", []string{"listener"}},
		{`"listener": ["auto"]`, "\t\t\tlistener auto sockets\n", []string{"listener"}},
	})
}

func TestListenerModeAdaptsAlikeInEveryFormat(t *testing.T) {
	for _, mode := range []string{"sockets", "sk_lookup", "auto"} {
		native, err := decodeConfig(formatNative, webApp(t, `"listener": "`+mode+`"`))
		if err != nil {
			t.Fatal(err)
		}
		caddyfile, err := decodeConfig(formatCaddyfile, webBlock("\t\t\tlistener "+mode+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := decodeConfig(formatPlain, webApp(t, `"Listener": "`+mode+`"`))
		if err != nil {
			t.Fatal(err)
		}
		if a, b, c := appJSON(t, native), appJSON(t, caddyfile), appJSON(t, plain); a != b || a != c {
			t.Fatalf("listener %s: formats differ:\nnative    %s\nCaddyfile %s\nplain     %s", mode, a, b, c)
		}
		if got := native.Apps[0].Listener; got != mode {
			t.Errorf("listener %s decoded as %q", mode, got)
		}
	}
}

// The default mode is sockets: an app without the field listens on one
// address per port range, as before the field existed.
func TestListenerModeDefaultsToSockets(t *testing.T) {
	app, err := decodeConfig(formatNative, webApp(t, `"ports": [5001, "6000-6099"]`))
	if err != nil {
		t.Fatal(err)
	}
	c := app.Apps[0]
	if m := c.Listening.withDefaults().Listener; m != listenerSockets {
		t.Fatalf("default listener %q, want sockets", m)
	}
	srv, err := c.server()
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.Listen) != 2 || srv.Listen[0] != "tcpproxy/:5001" || srv.Listen[1] != "tcpproxy/:6000-6099" {
		t.Fatalf("default listen addresses %q, want one per port range on the tcpproxy network", srv.Listen)
	}
	c.Listener = listenerSkLookup
	c.Bind = []string{"127.0.0.1", "[::1]"}
	if srv, _ = c.server(); len(srv.Listen) != 2 || srv.Listen[0] != "tcpproxy-app/web@127.0.0.1:0" ||
		srv.Listen[1] != "tcpproxy-app/[web@::1]:0" {
		t.Fatalf("sk_lookup listen addresses %q, want one per bind host on the tcpproxy-app network", srv.Listen)
	}
}
