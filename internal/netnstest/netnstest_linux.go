//go:build linux

// Package netnstest runs a test, or a benchmark, in a network namespace of
// its own, for code that must never touch the machine's namespace (an
// sk_lookup program attached there would steal the ports of every other
// process). The test binary re-executes itself for that test alone in a
// new network namespace (CLONE_NEWNET, so it needs root), the child brings
// lo up and runs the test body, and the parent reports the child's outcome
// as its own:
//
//	func TestSteering(t *testing.T) {
//		if !netnstest.Run(t, sklookup.Available) {
//			return // the parent: the child ran the body and passed or failed
//		}
//		... // the child, in its own namespace with lo up
//	}
//
// Where that is impossible (not root, or need fails) the test is skipped,
// but fails in CI (the environment variable CI set), which runs as root
// where everything works. It is imported by tests only.
package netnstest

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

// envChild marks a re-executed child; its value says what for.
const envChild = "NETNSTEST_CHILD"

// childNetns is envChild's prefix for a child in a private network
// namespace; the parent's namespace follows, so the child can check that
// it is not there.
const childNetns = "netns:"

// SkipOrFail skips where the environment lacks what a test needs, but
// fails in CI (CI is set), which runs as root where everything works.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("CI is set, so this cannot be skipped: "+format, args...)
	}
	tb.Skipf(format, args...)
}

// Child returns what this process was re-executed for by Reexec, and
// whether it was.
func Child() (what string, ok bool) {
	return os.LookupEnv(envChild)
}

// Run reports whether the calling test should run its body: true in a
// child running in a private network namespace (lo up, need satisfied);
// false in the parent, after it has run the test in such a child and
// reported the child's outcome as its own. need may be nil; when it fails
// in the child the test is skipped (SkipOrFail) with its error.
func Run(t *testing.T, need func() error) bool {
	t.Helper()
	if what, _ := Child(); strings.HasPrefix(what, childNetns) {
		enter(t, need)
		return true
	}
	out, err := Reexec(t, childNetns+id(), true, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v")
	Report(t, "in a private network namespace", out, err)
	return false
}

// enter checks that the child really is in a namespace of its own, brings
// lo up and checks need.
func enter(tb testing.TB, need func() error) {
	tb.Helper()
	what, _ := Child()
	parent := strings.TrimPrefix(what, childNetns)
	if self := id(); self == "" || parent == "" || self == parent {
		tb.Fatalf("refusing to run: this process's network namespace %q is not known to differ "+
			"from the parent test's %q", self, parent)
	}
	if err := loUp(); err != nil {
		tb.Fatalf("bringing lo up in the test's network namespace: %v", err)
	}
	if need != nil {
		if err := need(); err != nil {
			SkipOrFail(tb, "unavailable in the test's network namespace: %v", err)
		}
	}
}

// Reexec runs this test binary again with args, marked as a child for
// what (see Child), in a new network namespace if netns is set, and
// returns its combined output. It skips the test (SkipOrFail) if the
// child cannot be started.
func Reexec(tb testing.TB, what string, netns bool, args ...string) ([]byte, error) {
	tb.Helper()
	args = append(args, "-test.count=1", "-test.timeout=300s")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"="+what)
	if netns {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		SkipOrFail(tb, "cannot start a child in a new network namespace (needs root or CAP_SYS_ADMIN): %v", err)
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

// Report makes the child's outcome the parent's.
func Report(t *testing.T, where string, out []byte, err error) {
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

// id identifies this process's network namespace ("" if unknown).
func id() string {
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

// Bench is Run for benchmarks: the parent runs the benchmark (with its
// sub-benchmarks) in a child in a private namespace, copies the child's
// figures to its output and skips itself.
func Bench(b *testing.B, need func() error) bool {
	b.Helper()
	if what, _ := Child(); strings.HasPrefix(what, childNetns) {
		enter(b, need)
		return true
	}
	args := []string{"-test.run=^$", "-test.bench=^" + regexp.QuoteMeta(b.Name()) + "$", "-test.benchmem"}
	for _, name := range []string{"test.benchtime", "test.cpu"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			args = append(args, "-"+name+"="+f.Value.String())
		}
	}
	out, err := Reexec(b, childNetns+id(), true, args...)
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
