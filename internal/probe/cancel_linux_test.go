package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fullListener returns the address of a listener whose accept queue is
// full: Linux drops further SYNs, so a dial to it hangs until its
// deadline.
func fullListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// listen(2) again with backlog 0: the queue holds one connection.
	rc.Control(func(fd uintptr) { err = syscall.Listen(int(fd), 0) })
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
		if err != nil {
			return ln.Addr().String() // this one hung: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue of a loopback listener")
	return ""
}

// synSent says whether a socket of this process's network namespace is in
// SYN_SENT towards addr (from /proc/net/tcp: state 02, remote port in hex).
func synSent(t *testing.T, addr string) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	remote := fmt.Sprintf("0100007F:%04X", n)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[2] == remote && f[3] == "02" {
			return true
		}
	}
	return false
}

// A probe stuck in connect returns at once when its context is cancelled.
func TestCancelMidDial(t *testing.T) {
	baseline := runtime.NumGoroutine()
	addr := fullListener(t)
	p := mustNew(t, Check{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, addr) }()
	eventually(t, "the probe's SYN to be sent", func() bool { return synSent(t, addr) })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a probe cancelled in connect did not return")
	}
	checkGoroutines(t, baseline)
}

// The same hanging connect without cancellation ends at the timeout with
// a dial error that is not local.
func TestDialTimeoutNotLocal(t *testing.T) {
	addr := fullListener(t)
	p := mustNew(t, Check{Timeout: 200 * time.Millisecond})
	err := run(p, addr)
	if err == nil || IsLocal(err) {
		t.Fatalf("dial to a full queue: %v (local %t)", err, IsLocal(err))
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial error %v is not a timeout", err)
	}
}
