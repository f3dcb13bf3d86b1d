package e2e

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkServes runs a few short connections on each port.
func checkServes(t *testing.T, what string, ports ...int) {
	t.Helper()
	for _, p := range ports {
		for i := 0; i < 3; i++ {
			if _, cerr := exchange(p, []byte("still-serving")); cerr != nil {
				t.Errorf("%s: port %d: %v", what, p, cerr)
				return
			}
		}
	}
}

// TestFailedReloadKeepsOldConfigServing: behaviour 7. A reload that fails
// (an invalid field; a port held by another listener) returns an error
// naming the app and the field or port, leaves the old config serving, and
// holds nothing of the port it could not get.
func TestFailedReloadKeepsOldConfigServing(t *testing.T) {
	be := newEchoBackend(t, "F")
	ports := freePorts(t, 2)
	good := proxyCfg{Apps: []appCfg{app("keeper", ports, be.addr)}}
	proc := startCaddy(t, good)
	checkServes(t, "initial config", ports...)

	t.Run("invalid field", func(t *testing.T) {
		bad := proxyCfg{Apps: []appCfg{app("keeper", ports, be.addr)}}
		bad.Apps[0].LBPolicy = "fastest"
		err := proc.load(bad)
		if err == nil {
			t.Fatal("a config with lb_policy \"fastest\" was accepted")
		}
		t.Logf("rejected: %v", err)
		for _, want := range []string{`app "keeper"`, "lb_policy", "fastest"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %s: %v", want, err)
			}
		}
		bad = proxyCfg{Apps: []appCfg{app("keeper", ports, be.addr), app("other", []int{ports[0]}, be.addr)}}
		if err := proc.load(bad); err == nil {
			t.Error("a config using a port twice was accepted")
		} else if !strings.Contains(err.Error(), `app "other"`) || !strings.Contains(err.Error(), strconv.Itoa(ports[0])) {
			t.Errorf("error does not name the app and the port: %v", err)
		}
		checkServes(t, "after the rejected configs", ports...)
	})

	t.Run("bind switched to all interfaces", func(t *testing.T) {
		// The running config holds 127.0.0.1:P; all interfaces on P
		// conflicts with it until the old config lets go.
		moved := proxyCfg{Apps: []appCfg{app("keeper", ports, be.addr)}}
		moved.Apps[0].Bind = nil
		err := proc.load(moved)
		if err == nil {
			// Fine too, if the product learns to do it: then it serves.
			checkServes(t, "after switching to all interfaces", ports...)
			return
		}
		t.Logf("rejected: %v", err)
		for _, want := range []string{`app "keeper"`, strconv.Itoa(ports[0]), "running config", "two reloads"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q: %v", want, err)
			}
		}
		checkServes(t, "after the failed bind switch", ports...)
	})

	t.Run("port held by another listener", func(t *testing.T) {
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		heldPort := held.Addr().(*net.TCPAddr).Port
		// The held listener never accepts: a connection our process
		// made to it would sit in its queue, which we check is empty.
		bad := proxyCfg{Apps: []appCfg{app("keeper", ports, be.addr), app("newcomer", []int{heldPort}, be.addr)}}
		err = proc.load(bad)
		if err == nil {
			t.Fatalf("a config listening on port %d, held by another listener, was accepted", heldPort)
		}
		t.Logf("rejected: %v", err)
		for _, want := range []string{`app "newcomer"`, strconv.Itoa(heldPort), "address already in use"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %s: %v", want, err)
			}
		}
		checkServes(t, "after the failed reload", ports...)

		// Nothing of ours holds the port: once the test's listener is
		// closed the port is free (connections refused, a new bind works).
		held.Close()
		c, err := net.DialTimeout("tcp", addr(heldPort), 2*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("port %d still accepts connections after the failed reload and closing the test's listener", heldPort)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %d: %v, want connection refused", heldPort, err)
		}
		rebound, err := net.Listen("tcp", addr(heldPort))
		if err != nil {
			t.Fatalf("re-binding port %d after the failed reload: %v", heldPort, err)
		}
		rebound.Close()

		// And the same config loads once the port is free.
		if err := proc.load(bad); err != nil {
			t.Fatalf("the config with port %d, now free: %v", heldPort, err)
		}
		checkServes(t, "after loading the new port", append(ports, heldPort)...)
	})
}
