//go:build linux

package sklookup

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/netnstest"
)

// childCaps is the prefix of what a child that gives up capabilities
// before calling Available runs for (netnstest.Child); the case name
// follows.
const childCaps = "caps:"

// Available, without the capabilities sk_lookup needs, says which are
// missing, and not cilium/ebpf's MEMLOCK hint.
func TestAvailableNamesMissingCapabilities(t *testing.T) {
	cases := map[string]struct {
		drop func() error
		want string
	}{
		// setuid away from root clears every capability of every thread.
		"nobody": {func() error {
			if err := syscall.Setgid(65534); err != nil {
				return err
			}
			return syscall.Setuid(65534)
		}, "this process lacks CAP_BPF and CAP_NET_ADMIN"},
		// Capabilities are per thread: keep CAP_BPF alone on the thread
		// that makes the bpf calls.
		"bpf only": {func() error {
			runtime.LockOSThread()
			return setEffectiveCaps(unix.CAP_BPF)
		}, "this process lacks CAP_NET_ADMIN"},
	}
	what, _ := netnstest.Child()
	if c, ok := strings.CutPrefix(what, childCaps); ok {
		if err := cases[c].drop(); err != nil {
			t.Fatalf("dropping capabilities: %v", err)
		}
		err := Available()
		t.Logf("Available() = %v", err)
		if err == nil || !errors.Is(err, unix.EPERM) {
			t.Fatalf("Available() without capabilities = %v, want EPERM", err)
		}
		for _, want := range []string{"needs CAP_BPF and CAP_NET_ADMIN (or root)", cases[c].want} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Available() = %q, want it to say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "MEMLOCK") {
			t.Errorf("Available() = %q repeats the misleading MEMLOCK hint", err)
		}
		return
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root, to drop capabilities in a child")
	}
	for c := range cases {
		t.Run(c, func(t *testing.T) {
			out, err := netnstest.Reexec(t, childCaps+c, false, "-test.run=^TestAvailableNamesMissingCapabilities$", "-test.v")
			netnstest.Report(t, "in a child without capabilities", out, err)
		})
	}
}

// setEffectiveCaps leaves the calling thread with only caps effective.
func setEffectiveCaps(caps ...int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Effective, data[1].Effective = 0, 0
	for _, c := range caps {
		data[c/32].Effective |= 1 << (uint(c) % 32)
	}
	return unix.Capset(&hdr, &data[0])
}

func TestAvailableAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
	if err := Available(); err != nil {
		skipOrFail(t, "sk_lookup unavailable as root: %v", err)
	}
}

func TestOlderKernel(t *testing.T) {
	for _, c := range []struct {
		release      string
		major, minor int
		want         bool
	}{
		{"5.8.0-1-amd64", 5, 9, true},
		{"5.9.0", 5, 9, false},
		{"5.10-rc1", 5, 11, true},
		{"5.10-rc1", 5, 9, false},
		{"6.18.44-fc-v1045", 5, 11, false},
		{"4.19.0", 5, 9, true},
		{"junk", 5, 9, false},
	} {
		if got := older(c.release, c.major, c.minor); got != c.want {
			t.Errorf("older(%q, %d, %d) = %v, want %v", c.release, c.major, c.minor, got, c.want)
		}
	}
}
