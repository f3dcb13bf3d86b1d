//go:build linux

package tcpproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// clientLoad is clients connecting in a loop to random ports, each
// reading the backend's greeting and checking one echo, with failures
// counted by kind.
type clientLoad struct {
	ok, refused, reset, other atomic.Int64
	stop                      chan struct{}
	wg                        sync.WaitGroup
	mu                        sync.Mutex
	lastOther                 error
}

// startLoad runs workers clients against ports until stop is called or
// the deadline passes.
func startLoad(workers int, ports []int, deadline time.Time) *clientLoad {
	l := &clientLoad{stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				default:
				}
				l.count(exchange(hostPort(ports[rand.IntN(len(ports))])))
			}
		}()
	}
	return l
}

func (l *clientLoad) count(err error) {
	switch {
	case err == nil:
		l.ok.Add(1)
	case errors.Is(err, syscall.ECONNREFUSED):
		l.refused.Add(1)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		l.reset.Add(1)
	default:
		l.other.Add(1)
		l.mu.Lock()
		l.lastOther = fmt.Errorf("%s: %w", time.Now().Format("15:04:05.000000"), err)
		l.mu.Unlock()
	}
}

// finish stops the clients and returns what they saw.
func (l *clientLoad) finish() string {
	close(l.stop)
	l.wg.Wait()
	return fmt.Sprintf("%d ok, %d refused, %d reset, %d other failures (last: %v)",
		l.ok.Load(), l.refused.Load(), l.reset.Load(), l.other.Load(), l.lastOther)
}

func (l *clientLoad) failed() int64 { return l.refused.Load() + l.reset.Load() + l.other.Load() }

// exchange connects, reads the greeting of a test backend, and checks one
// echo.
func exchange(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	if buf[n-1] != '\n' {
		return fmt.Errorf("greeting %q is not one line", buf[:n])
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	if _, err := c.Read(buf[:4]); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if string(buf[:4]) != "ping" {
		return fmt.Errorf("echo %q, want ping", buf[:4])
	}
	return nil
}

// reloadUnderLoad loads configs[0], then reloads through configs in turn
// (reloads times) while clients connect to ports, and returns what the
// clients saw; each reload waits for some connections to succeed first.
func reloadUnderLoad(t *testing.T, ports []int, reloads int, configs ...map[string]any) *clientLoad {
	t.Helper()
	loadConfig(t, configs[0])
	load := startLoad(4, ports, time.Now().Add(90*time.Second))
	for i := 1; i <= reloads; i++ {
		before := load.ok.Load()
		waitFor(t, 30*time.Second, "clients to get through", func() bool { return load.ok.Load() >= before+20 })
		if err := tryLoad(configs[i%len(configs)]); err != nil {
			load.finish()
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	before := load.ok.Load()
	waitFor(t, 30*time.Second, "clients to get through", func() bool { return load.ok.Load() >= before+20 })
	t.Logf("%d reloads: %s", reloads, load.finish())
	return load
}

// Reloads that change the targets and add and drop a port, while clients
// connect to the kept ports: none is refused or reset.
func TestSkLookupReloadUnderLoadRefusesNothing(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	b1, b2 := newBackend(t, "b1"), newBackend(t, "b2")
	kept := make([]int, 0, 100)
	for p := 6000; p < 6100; p++ {
		kept = append(kept, p)
	}
	cfg := func(extra int, targets ...string) map[string]any {
		return proxyConfig(steeredApp("busy", []any{"6000-6099", extra}, targets...))
	}
	load := reloadUnderLoad(t, kept, 20, cfg(6200, b1.addr, b2.addr), cfg(6201, b2.addr))
	if load.failed() != 0 {
		t.Fatalf("connections to kept ports failed during reloads")
	}
}

// Reloads that switch the app between the sockets and sk_lookup modes
// under load: the foreign-listener guard does not count the other mode's
// sockets, no connection is refused, and none queued on the sockets the
// switch leaves behind is reset (Stop lets them drain).
func TestSkLookupReloadSwitchingModesUnderLoad(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	b := newBackend(t, "b")
	ports := []int{7000, 7001, 7002, 7003}
	cfg := func(mode string) map[string]any {
		c := steeredApp("switching", ports, b.addr)
		c["listener"] = mode
		return proxyConfig(c)
	}
	load := reloadUnderLoad(t, ports, 20, cfg("sockets"), cfg("sk_lookup"))
	if load.failed() != 0 {
		t.Fatalf("connections failed while switching modes")
	}
	if n := attachedPrograms(t); n != 0 {
		t.Fatalf("%d sk_lookup programs attached in sockets mode, want 0", n)
	}
}

// Reloads that switch the app between all interfaces and 0.0.0.0, whose
// routes share the engine's IPv4 wildcard key, under load: each config's
// socket takes the ports over, none is refused or reset.
func TestSkLookupReloadSwitchingWildcardBindsUnderLoad(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	b := newBackend(t, "b")
	ports := []int{7100, 7101, 7102, 7103}
	cfg := func(bind ...string) map[string]any {
		c := steeredApp("wildcards", ports, b.addr)
		c["bind"] = bind
		return proxyConfig(c)
	}
	load := reloadUnderLoad(t, ports, 10, cfg(), cfg("0.0.0.0"))
	if load.failed() != 0 {
		t.Fatalf("connections failed while switching between wildcard binds")
	}
}
