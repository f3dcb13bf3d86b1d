//go:build linux

package sklookup

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Tests that attach the program run in a network namespace of their own,
// never in the machine's (it has other listeners a route could steal): the
// test re-executes this test binary for itself alone, in a new network
// namespace, and reports the child's result.

// envChild marks a re-executed child; its value says what for.
const envChild = "SKLOOKUP_TEST_CHILD"

// childNetns is envChild's value for a child in a private network
// namespace; the parent's namespace follows the colon, so the child can
// check that it is not there.
const childNetns = "netns:"

// skipOrFail skips where the environment lacks what a test needs, but
// fails in CI (CI is set), which runs as root where everything works.
func skipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("CI is set, so this cannot be skipped: "+format, args...)
	}
	tb.Skipf(format, args...)
}

// inNetns reports whether the calling test should run its body: true in a
// child running in a private network namespace (with lo up and sk_lookup
// available); false in the parent, after it has run the test in such a
// child and reported the child's outcome as its own.
func inNetns(t *testing.T) bool {
	t.Helper()
	if strings.HasPrefix(os.Getenv(envChild), childNetns) {
		enterChild(t)
		return true
	}
	t.Parallel() // each child has a namespace, and an engine, of its own
	out, err := reexec(t, childNetns+netnsID(), true, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v")
	report(t, "in a private network namespace", out, err)
	return false
}

// enterChild checks that the child really is in a namespace of its own,
// brings lo up and checks that sk_lookup can be used.
func enterChild(tb testing.TB) {
	tb.Helper()
	parent := strings.TrimPrefix(os.Getenv(envChild), childNetns)
	if self := netnsID(); self == "" || parent == "" || self == parent {
		tb.Fatalf("refusing to attach sk_lookup: this process's network namespace %q is not known to differ "+
			"from the parent test's %q", self, parent)
	}
	if err := loUp(); err != nil {
		tb.Fatalf("bringing lo up in the test's network namespace: %v", err)
	}
	if err := Available(); err != nil {
		skipOrFail(tb, "sk_lookup unavailable: %v", err)
	}
}

// reexec runs this test binary again with args, marked with envChild=what,
// in a new network namespace if netns is set.
func reexec(tb testing.TB, what string, netns bool, args ...string) ([]byte, error) {
	tb.Helper()
	args = append(args, "-test.count=1", "-test.timeout=120s")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"="+what)
	if netns {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		skipOrFail(tb, "cannot start a child in a new network namespace (needs root or CAP_SYS_ADMIN): %v", err)
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

// report makes the child's outcome the parent's.
func report(t *testing.T, where string, out []byte, err error) {
	t.Helper()
	switch {
	case err != nil:
		t.Fatalf("%s: %v\n%s", where, err, out)
	case bytes.Contains(out, []byte("--- SKIP")):
		t.Skipf("%s:\n%s", where, out)
	case !bytes.Contains(out, []byte("--- PASS")):
		t.Fatalf("%s, the child ran no test:\n%s", where, out)
	}
	t.Logf("%s:\n%s", where, out)
}

// netnsID identifies this process's network namespace ("" if unknown).
func netnsID() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// loUp brings the loopback interface of this namespace up (a new
// namespace starts with it down), which also gives it 127.0.0.1/8 and ::1.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// benchInNetns is inNetns for benchmarks: the parent runs the benchmark
// (with its sub-benchmarks) in a child in a private namespace, copies the
// child's figures to its output and skips itself.
func benchInNetns(b *testing.B) bool {
	b.Helper()
	if strings.HasPrefix(os.Getenv(envChild), childNetns) {
		enterChild(b)
		return true
	}
	args := []string{"-test.run=^$", "-test.bench=^" + regexp.QuoteMeta(b.Name()) + "$", "-test.benchmem"}
	for _, name := range []string{"test.benchtime", "test.cpu"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			args = append(args, "-"+name+"="+f.Value.String())
		}
	}
	out, err := reexec(b, childNetns+netnsID(), true, args...)
	if err != nil {
		b.Fatalf("in a private network namespace: %v\n%s", err, out)
	}
	// Keep the figures and what the benchmarks logged; drop the child's
	// own header and PASS lines, which the parent prints too.
	var kept []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "    ") || strings.Contains(line, "SKIP") {
			kept = append(kept, line)
		}
	}
	fmt.Println(strings.Join(kept, "\n"))
	b.Skip("measured in a private network namespace: figures above")
	return false
}
