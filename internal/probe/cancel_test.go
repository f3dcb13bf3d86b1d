package probe

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A probe waiting for an answer returns at once when its context is
// cancelled, with an error wrapping context.Canceled, and leaves no
// goroutine behind.
func TestCancelMidProbe(t *testing.T) {
	baseline := runtime.NumGoroutine()
	const probes = 50
	srv, got := replyServer(t, len("PING\r\n"), "")
	p := mustNew(t, Check{Timeout: time.Minute, Send: []byte("PING\r\n"), Expect: []byte("+PONG")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, probes)
	for range probes {
		go func() { done <- p.Run(ctx, srv.Addr()) }()
	}
	for i := range probes {
		select {
		case <-got:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d probes reached the target", i, probes)
		}
	}
	cancel()
	start := time.Now()
	for range probes {
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) || err.Error() != "probe cancelled: context canceled" {
				t.Fatalf("cancelled probe: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a cancelled probe did not return")
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled probes took %s to return", took)
	}
	srv.Close()
	checkGoroutines(t, baseline)
}

// A context deadline before the probe's timeout ends the probe.
func TestContextDeadline(t *testing.T) {
	srv := startServer(t, drain)
	p := mustNew(t, Check{Timeout: time.Minute, Expect: []byte("220")})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Run(ctx, srv.Addr())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("probe took %s with a 200ms context", took)
	}
}

// A context that has ended already: no connection is made.
func TestCancelledBeforeStart(t *testing.T) {
	srv := startServer(t, drain)
	p := mustNew(t, Check{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx, srv.Addr()); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "probe cancelled") {
		t.Fatalf("got %v", err)
	}
	select {
	case a := <-srv.accepted:
		t.Fatalf("a cancelled probe connected from %s", a)
	default:
	}
}
