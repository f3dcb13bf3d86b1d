package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestExitGivesInFlightConnectionsTheGracePeriod: behaviour 6. On SIGTERM
// the listeners close at once, a connection that ends within grace_period
// completes, one still busy is cut when grace_period is over, and the
// process exits with status 0.
func TestExitGivesInFlightConnectionsTheGracePeriod(t *testing.T) {
	const grace = 3 * time.Second
	be := newEchoBackend(t, "E")
	port := freePort(t)
	cfg := proxyCfg{GracePeriod: "3s", Apps: []appCfg{app("exit", []int{port}, be.addr)}}
	cfg.Apps[0].AccessLog = true
	proc := startCaddy(t, cfg)

	// A stream that stays busy past the grace period, opened under a
	// config that a reload then replaces: on exit the current config
	// drains the connections of the configs before it too.
	busy := openStream(t, port, 7, 1024, 10*time.Millisecond)
	cfg.Apps[0].DialTimeout = "3s"
	if err := proc.load(cfg); err != nil {
		t.Fatal(err)
	}
	// A connection that finishes 1s after SIGTERM: it sends its payload
	// in two halves around the signal and half-closes at +1s.
	short, err := dialProxy(port)
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	shortR := bufio.NewReader(short)
	_ = short.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := greeting(shortR); err != nil {
		t.Fatalf("short connection: %v", err)
	}
	payload := bytes.Repeat([]byte("in-flight-at-exit "), 4096) // 72 KiB
	half := len(payload) / 2
	if _, err := short.Write(payload[:half]); err != nil {
		t.Fatal(err)
	}
	shortDone := make(chan error, 1)
	var shortEnded time.Time
	go func() {
		got, err := io.ReadAll(shortR) // until the proxy passes the backend's EOF on
		shortEnded = time.Now()
		switch {
		case err != nil:
			shortDone <- err
		case !bytes.Equal(got, payload):
			shortDone <- errors.New("echo differs from the payload")
		default:
			shortDone <- nil
		}
	}()
	// The busy stream is flowing before the signal.
	if !waitFor(10*time.Second, func() bool { return busy.verified.Load() > 16<<10 }) {
		t.Fatalf("stream not flowing before SIGTERM: %d bytes verified", busy.verified.Load())
	}

	sigAt := time.Now()
	if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// New connections are refused within a second.
	var refusedAfter time.Duration
	refused := waitFor(time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return false
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			refusedAfter = time.Since(sigAt)
			return true
		}
		return false
	})
	if !refused {
		t.Errorf("connections to the port still accepted 1s after SIGTERM")
	}

	// The short connection finishes at +1s.
	time.Sleep(time.Until(sigAt.Add(time.Second))) // the scenario's timing, not a synchronization
	verifiedAt1s := busy.verified.Load()
	if _, err := short.Write(payload[half:]); err != nil {
		t.Fatalf("short connection, write after SIGTERM: %v", err)
	}
	if err := short.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-shortDone:
		if err != nil {
			t.Errorf("connection ending 1s after SIGTERM: %v", err)
		} else {
			t.Logf("connection ending 1s after SIGTERM: %d bytes echoed intact, done at +%s",
				len(payload), shortEnded.Sub(sigAt).Round(time.Millisecond))
		}
	case <-time.After(10 * time.Second):
		t.Error("connection ending 1s after SIGTERM: no EOF")
	}

	// The busy stream keeps flowing, then is cut when the grace period ends.
	select {
	case <-busy.readerDone:
	case <-time.After(15 * time.Second):
		t.Fatal("busy stream not cut 15s after SIGTERM")
	}
	ferr, cutAt := busy.failure()
	cut := cutAt.Sub(sigAt)
	var ce *connError
	switch {
	case ferr == nil:
		t.Error("busy stream ended without an error")
	case errors.As(ferr, &ce) && ce.kind == kindCorrupt:
		t.Errorf("busy stream corrupted: %v", ferr)
	case cut < grace-500*time.Millisecond || cut > 2*grace:
		t.Errorf("busy stream cut %s after SIGTERM, want about %s (%v)", cut.Round(time.Millisecond), grace, ferr)
	}
	if busy.verified.Load() <= verifiedAt1s {
		t.Errorf("busy stream stopped flowing after SIGTERM: %d bytes verified at +1s, %d at the cut", verifiedAt1s, busy.verified.Load())
	}

	code, err := proc.waitExit(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	exitAfter := time.Since(sigAt)
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	t.Logf("SIGTERM: refused after %s; busy stream cut after %s (%v) with %d bytes verified; exit %d after %s",
		refusedAfter.Round(time.Millisecond), cut.Round(time.Millisecond), ferr, busy.verified.Load(), code, exitAfter.Round(time.Millisecond))
	if !proc.logContains("grace period over") {
		t.Error(`log has no "grace period over" line for the 1 connection cut`)
	}
	// The access log has the cut connection (reason shutdown) and the one
	// that ended within the grace period (normal).
	for _, reason := range []string{"shutdown", "normal"} {
		if !proc.logContains(`"logger":"tcpproxy.access.exit"`, `"msg":"connection closed"`, `"reason":"`+reason+`"`) {
			t.Errorf("access log has no entry with reason %s", reason)
		}
	}
}

// TestStopCommandAndSIGINTExitCleanly: behaviour 6 through the other two
// ways out: `caddy stop` and SIGINT also close the listeners, give a busy
// connection grace_period, and exit with status 0.
func TestStopCommandAndSIGINTExitCleanly(t *testing.T) {
	for _, how := range []string{"caddy stop", "SIGINT"} {
		t.Run(how, func(t *testing.T) {
			const grace = time.Second
			be := newEchoBackend(t, "S")
			port := freePort(t)
			proc := startCaddy(t, proxyCfg{GracePeriod: "1s", Apps: []appCfg{app("stop", []int{port}, be.addr)}})
			busy := openStream(t, port, 9, 1024, 10*time.Millisecond)
			if !waitFor(10*time.Second, func() bool { return busy.verified.Load() > 8<<10 }) {
				t.Fatal("stream not flowing")
			}
			at := time.Now()
			if how == "SIGINT" {
				if err := proc.cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			} else {
				out, err := exec.Command(caddyBin, "stop", "--address", proc.admin).CombinedOutput()
				if err != nil {
					t.Fatalf("caddy stop: %v: %s", err, out)
				}
			}
			if !waitFor(time.Second, func() bool {
				c, err := net.DialTimeout("tcp", addr(port), 200*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return errors.Is(err, syscall.ECONNREFUSED)
			}) {
				t.Errorf("connections still accepted 1s after %s", how)
			}
			code, err := proc.waitExit(15 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-busy.readerDone:
			case <-time.After(5 * time.Second):
				t.Fatal("busy stream not cut after the process exited")
			}
			ferr, cutAt := busy.failure()
			cut := cutAt.Sub(at)
			var ce *connError
			if errors.As(ferr, &ce) && ce.kind == kindCorrupt {
				t.Errorf("busy stream corrupted: %v", ferr)
			}
			if cut < grace-300*time.Millisecond || cut > 4*grace {
				t.Errorf("busy stream cut %s after %s, want about %s (%v)", cut.Round(time.Millisecond), how, grace, ferr)
			}
			if code != 0 {
				t.Errorf("exit status %d after %s, want 0", code, how)
			}
			t.Logf("%s: stream cut after %s with %d bytes verified, exit %d", how, cut.Round(time.Millisecond), busy.verified.Load(), code)
		})
	}
}
