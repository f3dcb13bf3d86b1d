package tcpproxy

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// stopListening closes the backend's listener but not its connections:
// new connections are refused while established ones run on.
func (b *backend) stopListening() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
}

// close_on_down: when the probes mark a target down, its connections are
// closed (reason target_down) within a couple of intervals, with the
// option on; with it off they run on. A failed dial alone never closes
// them.
func TestCloseOnDown(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		be := newBackend(t, "a")
		health, err := net.Listen("tcp", "127.0.0.1:0") // the health port: connecting is enough
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { health.Close() })
		go acceptAndClose(health)
		healthPort := health.Addr().(*net.TCPAddr).Port
		backendPorts.Store(healthPort, true)

		ports := freePorts(t, 2)
		logFile := filepath.Join(t.TempDir(), "access.log")
		hc := map[string]any{"interval": "100ms", "timeout": "300ms", "fall": 2, "port": healthPort}
		common := func(name string, port int) app {
			return app{"name": name, "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(be),
				"access_log": true, "health_checks": hc}
		}
		closingApp, keepingApp := common("closing", ports[0]), common("keeping", ports[1])
		closingApp["close_on_down"] = true
		if err := tryLoadWith(proxyConfig(closingApp, keepingApp), withAccessLogFile(logFile)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = caddy.Stop() })
		closing, keeping := dial(t, hostPort(ports[0])), dial(t, hostPort(ports[1]))
		defer closing.Close()
		defer keeping.Close()
		echoOn(t, closing, "x")
		echoOn(t, keeping, "x")

		// A failed dial marks the target down, but closes nothing; the probes
		// (on the health port) bring it back.
		be.stopListening()
		refused := dial(t, hostPort(ports[0]))
		if closed, data := closedWithin(refused, 5*time.Second); !closed || data != "" {
			t.Fatalf("a client while the target refuses: closed %v, read %q", closed, data)
		}
		refused.Close()
		tc := lookupTarget(t, "closing", be.addr)
		be.restart()
		waitFor(t, 10*time.Second, "the probes to bring the target back", func() bool { return tc.healthy.Load() })
		if closed, _ := closedWithin(closing, 300*time.Millisecond); closed {
			t.Fatal("a failed dial closed an established connection")
		}
		echoOnAgain(t, closing, "after the failed dial")

		// The probes fail: down after fall (2) failures, then closed.
		health.Close()
		start := time.Now()
		closed, _ := closedWithin(closing, 10*time.Second)
		took := time.Since(start)
		if !closed {
			t.Fatal("close_on_down: the connection was not closed after the target went down")
		}
		t.Logf("close_on_down: connection closed %s after the health port closed (interval 100ms, fall 2)", took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("closed after %s, want within a couple of intervals", took)
		}
		tk := lookupTarget(t, "keeping", be.addr)
		waitFor(t, 10*time.Second, "the keeping app's probes to mark the target down", func() bool { return !tk.healthy.Load() })
		if closed, _ := closedWithin(keeping, 500*time.Millisecond); closed {
			t.Fatal("close_on_down off: the connection was closed")
		}
		echoOnAgain(t, keeping, "still here")

		if got := testutilCounter(t, closedTotal.WithLabelValues("closing", "target_down")); got != 1 {
			t.Errorf("closed_connections_total{app=closing,reason=target_down} = %v, want 1", got)
		}
		if got := testutilCounter(t, closedTotal.WithLabelValues("keeping", "target_down")); got != 0 {
			t.Errorf("closed_connections_total{app=keeping,reason=target_down} = %v, want 0", got)
		}
		port := closing.LocalAddr().(*net.TCPAddr).Port
		waitFor(t, 5*time.Second, "the access log entry of the closed connection", func() bool {
			e, ok := accessEntries(t, logFile)[port]
			return ok && e["reason"] == "target_down" && e["app"] == "closing"
		})
	})
}

// echoOnAgain checks that an open connection whose greeting was read
// still echoes.
func echoOnAgain(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: %q %v, want %q", got, err, msg)
	}
}

// A probe waiting on a target ends with its config: a reload that drops
// the app cuts it short at once, not at its one-minute timeout.
func TestProbesEndWithTheirConfig(t *testing.T) {
	hang := newProbeServer(t, "", true) // reads the probe's line, never answers
	other := newBackend(t, "o")
	loadConfig(t, proxyConfig(app{"name": "hanging", "ports": []int{freePort(t)}, "bind": []string{"127.0.0.1"},
		"targets":       []string{hang.addr},
		"health_checks": map[string]any{"interval": "100ms", "timeout": "1m", "send": "PING\r\n", "expect": "+PONG"}}))
	waitFor(t, 10*time.Second, "a probe to wait on the target", func() bool { return hang.open.Load() == 1 })
	if err := tryLoad(proxyConfig(app{"name": "other", "ports": []int{freePort(t)}, "bind": []string{"127.0.0.1"},
		"targets": addrs(other)})); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "the old config's probe to end", func() bool { return hang.open.Load() == 0 })
	t.Logf("the old config's probe ended %s after the reload", time.Since(start).Round(time.Millisecond))
	if n := hang.accepted.Load(); n != 1 {
		t.Errorf("%d probes of the hanging target: one was started while another ran", n)
	}
}

// acceptAndClose accepts connections and closes them at once, until ln
// closes.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
