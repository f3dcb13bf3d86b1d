//go:build linux

package sklookup

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Available reports whether this process can use sk_lookup steering: it
// creates the engine's maps and loads its program in miniature, then closes
// them (a few milliseconds; nothing is attached). The error names the cause
// and what is needed: Linux ≥ 5.9, CAP_BPF and CAP_NET_ADMIN (or root).
// Call it where a listener is started, never at package init or in config
// validation; while the engine is in use it answers nil at once.
func Available() error {
	shared.mu.Lock()
	inUse := shared.refs > 0
	shared.mu.Unlock()
	if inUse {
		return nil
	}
	o, err := loadObjects(1, 1)
	if err != nil {
		return err
	}
	o.close()
	return nil
}

// explain turns an error from creating a map or loading the program into
// one that says what the system lacks. cilium/ebpf suggests raising
// RLIMIT_MEMLOCK on EPERM, but since Linux 5.11 BPF memory is charged to
// the cgroup and EPERM means a missing capability.
func explain(step string, err error) error {
	release := kernelRelease()
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		msg := fmt.Sprintf("sk_lookup is not permitted (%s): it needs CAP_BPF and CAP_NET_ADMIN (or root)", step)
		if missing := missingCapabilities(); missing != "" {
			msg += "; this process lacks " + missing
		}
		if older(release, 5, 11) {
			msg += fmt.Sprintf("; on Linux %s, a low RLIMIT_MEMLOCK also causes this", release)
		}
		return fmt.Errorf("%s: %w", msg, unix.EPERM)
	case older(release, 5, 9):
		return fmt.Errorf("sk_lookup needs Linux ≥ 5.9, this kernel is %q: %s: %w", release, step, err)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EINVAL):
		return fmt.Errorf("sk_lookup is not supported by this kernel (%q; needs Linux ≥ 5.9 with BPF): %s: %w",
			release, step, err)
	}
	return fmt.Errorf("sk_lookup: %s: %w", step, err)
}

// missingCapabilities names the capabilities sk_lookup needs that the
// calling thread does not have in its effective set ("" when none is
// missing or they cannot be read). CAP_SYS_ADMIN stands in for CAP_BPF.
func missingCapabilities() string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return ""
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(uint(c)%32)) != 0 }
	var missing []string
	if !has(unix.CAP_BPF) && !has(unix.CAP_SYS_ADMIN) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(unix.CAP_NET_ADMIN) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	return strings.Join(missing, " and ")
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// older reports whether a kernel release such as "5.10.0-21-amd64" is
// older than major.minor; false when it cannot be parsed.
func older(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(leadingDigits(parts[0]))
	min, err2 := strconv.Atoi(leadingDigits(parts[1]))
	if err1 != nil || err2 != nil {
		return false
	}
	return maj < major || (maj == major && min < minor)
}

// leadingDigits returns the digits s starts with ("10" of "10-rc1").
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
