//go:build linux

package tcpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/netnstest"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/sklookup"
)

// Helpers of the sk_lookup listener tests. Those tests attach a BPF
// program, which steals the ports it routes from every process of the
// network namespace: they run in a child of the test binary in a private
// namespace (netnstest), where Caddy is loaded in-process as in the other
// tests. The child's namespace holds only its own sockets, so ports are
// picked freely there.

// inSkLookupNetns reports whether the calling test should run its body:
// true in the child, with sk_lookup available; false in the parent, which
// has reported the child's outcome.
func inSkLookupNetns(t *testing.T) bool {
	t.Helper()
	return netnstest.Run(t, sklookup.Available)
}

// steeredApp is an app in sk_lookup mode on 127.0.0.1; ports is a list,
// or one range such as "2000-2099".
func steeredApp(name string, ports any, targets ...string) app {
	if r, ok := ports.(string); ok {
		ports = []string{r}
	}
	return app{"name": name, "ports": ports, "bind": []string{"127.0.0.1"}, "targets": targets,
		"listener": "sk_lookup", "health_checks": map[string]any{"interval": "1h"}}
}

// portRangeString is "low-high" for n ports from low on.
func portRangeString(low, n int) string { return fmt.Sprintf("%d-%d", low, low+n-1) }

// newPortBackend starts a target that expects a PROXY protocol v1 header
// and answers with the destination port it names (the port the client
// dialled at the proxy) and a newline, then closes.
func newPortBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				f := strings.Fields(line)
				if err != nil || len(f) != 6 || f[0] != "PROXY" {
					fmt.Fprintf(c, "bad header %q\n", line)
					return
				}
				fmt.Fprintf(c, "%s\n", f[5])
			}()
		}
	}()
	return ln.Addr().String()
}

// dialledPort connects to addr through a proxy in front of a port
// backend and returns the destination port the backend was told.
func dialledPort(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the answer through %s: %w", addr, err)
	}
	return strconv.Atoi(strings.TrimSpace(line))
}

// mustSeePort checks that a connection to port on 127.0.0.1 is proxied
// with that port as its local address.
func mustSeePort(t *testing.T, port int) {
	t.Helper()
	got, err := dialledPort(hostPort(port))
	if err != nil {
		t.Fatalf("port %d: %v", port, err)
	}
	if got != port {
		t.Fatalf("a connection to port %d reached the target as one to port %d", port, got)
	}
}

// portRefused checks that a connection to port on 127.0.0.1 is refused.
func portRefused(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", hostPort(port), 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("port %d accepted a connection, want it refused", port)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("port %d: %v, want connection refused", port, err)
	}
}

// listeningSockets returns the TCP sockets in LISTEN state in this network
// namespace (every process's), by inode.
func listeningSockets(t *testing.T) []sklookup.Listener {
	t.Helper()
	ls, err := sklookup.ForeignListeners(netip.Addr{}, allPorts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func allPorts() []uint16 {
	ports := make([]uint16, 0, 65535)
	for p := 1; p <= 65535; p++ {
		ports = append(ports, uint16(p))
	}
	return ports
}

// steeredSocketPort is the loopback port the app's steered socket itself
// listens on (connections to it reach the app too).
func steeredSocketPort(t *testing.T, app string) int {
	t.Helper()
	sockets.mu.Lock()
	defer sockets.mu.Unlock()
	s, ok := sockets.steered[steerKey{app, "127.0.0.1"}]
	if !ok {
		t.Fatalf("app %q has no steered socket on 127.0.0.1", app)
	}
	return s.ln.Addr().(*net.TCPAddr).Port
}

// attachedPrograms counts the sk_lookup programs attached to the test's
// network namespace.
func attachedPrograms(t *testing.T) int {
	t.Helper()
	n, err := sklookup.AttachedPrograms()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
