//go:build linux

package tcpproxy

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/netnstest"
)

// nobody is the user the unprivileged test runs as: setuid away from root
// clears every capability of every thread.
const nobody = 65534

// Without CAP_BPF and CAP_NET_ADMIN, `auto` falls back to one socket per
// port with one warning, and `sk_lookup` fails naming the app, the cause
// and what it needs. The child runs in a private network namespace (in
// case the capabilities were not dropped after all) and drops them there.
func TestListenerWithoutPrivileges(t *testing.T) {
	if !netnstest.Run(t, nil) {
		return
	}
	logDir, err := os.MkdirTemp("", "tcpproxy-unprivileged-") // t.TempDir's parent is root's alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(logDir) })
	if err := os.Chown(logDir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setgid(nobody); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setuid(nobody); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, "b")
	// Nothing is probed before Start: caddy validate works unprivileged.
	strict := app{"name": "strict", "ports": []string{"8100-8109"}, "bind": []string{"127.0.0.1"},
		"targets": addrs(b), "listener": "sk_lookup"}
	raw, err := json.Marshal(proxyConfig(strict))
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&caddy.Config{AppsRaw: caddy.ModuleMap{"tcpproxy": raw}}); err != nil {
		t.Fatalf("validating an sk_lookup config without privileges: %v", err)
	}

	logFile := logDir + "/caddy.log"
	auto := app{"name": "flexible", "ports": []string{"8000-8009"}, "bind": []string{"127.0.0.1"},
		"targets": addrs(b), "listener": "auto"}
	if err := tryLoadWith(proxyConfig(auto), withDebugLogFile(logFile)); err != nil {
		t.Fatalf("auto without privileges: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	for _, p := range []int{8000, 8005, 8009} {
		if name := echo(t, hostPort(p), "fallback"); name != "b" {
			t.Fatalf("port %d answered by %q", p, name)
		}
	}
	warnings := logEntries(t, logFile, "listener auto: sk_lookup is unavailable, listening with one socket per port")
	if len(warnings) != 1 || warnings[0]["level"] != "warn" {
		t.Fatalf("fallback log entries %v, want one at warn", warnings)
	}
	if apps, _ := warnings[0]["apps"].([]any); len(apps) != 1 || apps[0] != "flexible" {
		t.Errorf("the warning names apps %v, want [flexible]", warnings[0]["apps"])
	}
	if cause, _ := warnings[0]["error"].(string); !strings.Contains(cause, "CAP_BPF") {
		t.Errorf("the warning's error %q does not say what is missing", cause)
	}
	running := lookupRunning(t, "flexible")
	if running.listener != listenerSockets {
		t.Errorf("auto fell back to listener %q, want sockets", running.listener)
	}

	err = tryLoad(proxyConfig(auto, strict))
	if err == nil {
		t.Fatal("sk_lookup without privileges was loaded")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{`app "strict"`, "listener", "not permitted", "Linux ≥ 5.9", "CAP_BPF", "CAP_NET_ADMIN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The failed reload left the running config as it was.
	if name := echo(t, hostPort(8003), "still"); name != "b" {
		t.Fatalf("after the failed reload, port 8003 answered by %q", name)
	}
}

// lookupRunning returns the running app of that name in the active config.
func lookupRunning(t *testing.T, name string) *runningApp {
	t.Helper()
	v, err := caddy.ActiveContext().AppIfConfigured("tcpproxy")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range v.(*App).running {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("no running app %q", name)
	return nil
}
