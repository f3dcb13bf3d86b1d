package tcpproxy

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestAcceptFailuresLogAtMostOneLineASecond: out of file descriptors,
// the accept loops of every listening socket fail every time they retry;
// the log gets one line a second at most, saying how many failed since
// the line before (issue 14, fault 6: before, it said nothing at all).
func TestAcceptFailuresLogAtMostOneLineASecond(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	if err := tryLoadWith(nil, withDebugLogFile(logFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	acceptFailures.last.Store(0)
	acceptFailures.skipped.Store(0)

	// Two sockets failing together, as fast as the loop's shortest backoff.
	const failures = 300
	start := time.Now()
	for i := 0; i < failures; i++ {
		logAcceptFailure("127.0.0.1:5001", syscall.EMFILE, 5*time.Millisecond)
		logAcceptFailure("127.0.0.1:5002", syscall.EMFILE, 5*time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	lines := logEntries(t, logFile, "accept failed: retrying")
	if max := int(elapsed/time.Second) + 1; len(lines) == 0 || len(lines) > max {
		t.Fatalf("%d log lines for %d failed accepts in %s, want 1 to %d", len(lines), 2*failures, elapsed, max)
	}
	logged := 0.0
	for _, e := range lines {
		if e["level"] != "error" || e["logger"] != "tcpproxy" || e["address"] == nil || e["error"] != syscall.EMFILE.Error() || e["retry_in"] == nil {
			t.Errorf("line %v: want level error, logger tcpproxy, the address, the error and retry_in", e)
		}
		n, _ := e["failed_accepts"].(float64)
		logged += n
	}
	// The failures since the last line are counted in the next one.
	if pending := acceptFailures.skipped.Load(); logged+float64(pending) != 2*failures {
		t.Errorf("lines count %v failed accepts and %d are pending, want %d in all", logged, pending, 2*failures)
	}
	t.Logf("%d failed accepts in %s: %d log lines", 2*failures, elapsed.Round(time.Millisecond), len(lines))
}
