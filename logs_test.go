package tcpproxy

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	// The file log writer and the JSON encoder.
	_ "github.com/caddyserver/caddy/v2/modules/logging"
)

// Tests of SPEC.md behaviour 9, on the JSON lines Caddy's logger writes
// to a file.

func TestLogTargetDownAndUpAreOneLineEachWithAppTargetAndCause(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	if err := tryLoadWith(proxyConfig(app{"name": "logged", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(a, b), "health_checks": map[string]any{"interval": "50ms", "timeout": "500ms"}}),
		withDebugLogFile(logFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	tb := lookupTarget(t, "logged", b.addr)

	b.stop()
	waitFor(t, 10*time.Second, "a 'target down' line", func() bool { return len(logEntries(t, logFile, "target down")) > 0 })
	// Several more failed rounds must not repeat the line.
	waitFor(t, 10*time.Second, "5 failed probes in a row", func() bool { return tb.status().ConsecutiveFailures >= 5 })
	down := logEntries(t, logFile, "target down")
	if len(down) != 1 {
		t.Fatalf("%d 'target down' lines, want 1: %v", len(down), down)
	}
	if e := down[0]; e["level"] != "warn" || e["app"] != "logged" || e["target"] != b.addr || e["error"] == nil || e["error"] == "" {
		t.Errorf("target down line %v: want level warn, app, target and the error", e)
	}

	b.restart()
	waitFor(t, 10*time.Second, "a 'target up' line", func() bool { return len(logEntries(t, logFile, "target up")) > 0 })
	waitFor(t, 10*time.Second, "5 good probes in a row", func() bool { return tb.status().ConsecutiveSuccesses >= 5 })
	up := logEntries(t, logFile, "target up")
	if len(up) != 1 {
		t.Fatalf("%d 'target up' lines, want 1: %v", len(up), up)
	}
	if e := up[0]; e["level"] != "info" || e["app"] != "logged" || e["target"] != b.addr || e["cause"] == nil || e["cause"] == "" {
		t.Errorf("target up line %v: want level info, app, target and cause", e)
	}
	// a never changed state.
	for _, e := range append(down, up...) {
		if e["target"] == a.addr {
			t.Errorf("transition logged for the healthy target: %v", e)
		}
	}
}

func TestLogNoHealthyTargetWarnsAtMostOncePerSecond(t *testing.T) {
	dead := newBackend(t, "dead")
	dead.stop()
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	if err := tryLoadWith(proxyConfig(app{"name": "lonely", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": []string{dead.addr}, "health_checks": map[string]any{"disabled": true}}),
		withDebugLogFile(logFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	const n = 20
	start := time.Now()
	for i := 0; i < n; i++ {
		mustBeClosed(t, hostPort(port))
	}
	elapsed := time.Since(start)

	const warnMsg = "connection rejected: no target could be reached"
	rejectionLines := func() (warns, debugs []map[string]any) {
		for _, e := range logEntries(t, logFile, "") {
			if e["app"] != "lonely" {
				continue
			}
			switch {
			case e["msg"] == warnMsg && e["level"] == "warn":
				warns = append(warns, e)
			case e["msg"] == "connection rejected" && e["level"] == "debug":
				debugs = append(debugs, e)
			}
		}
		return warns, debugs
	}
	waitFor(t, 10*time.Second, "a log line for every rejection", func() bool {
		w, d := rejectionLines()
		return len(w)+len(d) >= n
	})
	warns, debugs := rejectionLines()
	// One warning per second at most: 1 if the connections took under a
	// second (as they do on an idle machine), one more per second beyond.
	if most := 1 + int(elapsed/time.Second); len(warns) < 1 || len(warns) > most {
		t.Errorf("%d warnings for %d rejections in %s, want 1..%d", len(warns), n, elapsed, most)
	}
	if len(warns)+len(debugs) != n {
		t.Errorf("%d warnings + %d debug lines, want one line per rejection (%d)", len(warns), len(debugs), n)
	}
	if w := warns[0]; w["reason"] != reasonDialFailed.String() || w["rejected_since_last_warning"] != float64(1) {
		t.Errorf("first warning %v: want reason dial_failed (the target was still marked up) and a count of 1", w)
	}
	var counted float64
	for _, w := range warns {
		counted += w["rejected_since_last_warning"].(float64)
	}
	if counted > n {
		t.Errorf("warnings count %v rejections, more than the %d made", counted, n)
	}
}
