package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// EMFILE for real: a child process (this test binary re-executed) lowers
// its own descriptor limit, uses it up and probes; its probe error is
// local. The test process keeps its limit.
func TestIsLocalEMFILE(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("needs setrlimit")
	}
	cmd, out := helper(t, "emfile")
	msg, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v (exit %v)", err, cmd.Wait())
	}
	local, _ := out.ReadString('\n')
	if !strings.Contains(msg, "too many open files") || strings.TrimSpace(local) != "true" {
		t.Fatalf("probe out of descriptors: error %q, IsLocal %q", strings.TrimSpace(msg), strings.TrimSpace(local))
	}
}

// EADDRNOTAVAIL for real: binding to an address this machine does not
// have (TEST-NET-1, nothing is sent).
func TestIsLocalEADDRNOTAVAIL(t *testing.T) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)}, Timeout: 2 * time.Second}
	_, err := d.Dial("tcp", closedAddr(t))
	if err == nil || !strings.Contains(err.Error(), "cannot assign requested address") {
		t.Fatalf("dial from 192.0.2.1: %v", err)
	}
	if !IsLocal(err) || !IsLocal(fmt.Errorf("wrapped: %w", err)) {
		t.Fatalf("IsLocal(%v) is false", err)
	}
}

// Failures of the target are not local: refused, timed out, closed early,
// and no error at all.
func TestIsLocalTargetFailures(t *testing.T) {
	_, refused := net.Dial("tcp", closedAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	var d net.Dialer
	_, timedOut := d.DialContext(ctx, "tcp", closedAddr(t))
	for _, err := range []error{refused, timedOut, nil, errors.New("too many open files")} {
		if IsLocal(err) {
			t.Errorf("IsLocal(%v) is true", err)
		}
	}
	if refused == nil || timedOut == nil {
		t.Fatalf("dials did not fail: %v, %v", refused, timedOut)
	}
}
