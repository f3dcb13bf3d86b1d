package e2e

// Helpers of the fault suite (faults_*_test.go): the lifecycle settings in
// the test config, a backend in a process of its own (to kill it, or to
// keep its sockets out of this process's file descriptor limit), process
// figures from /proc, the access log, a black-holed target and a client
// in a network namespace of its own. docs/RELIABILITY.md reports what the
// suite measures: every figure is logged on a line starting "figure:".

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// longFaults turns on the long variants of the fault tests (more
// connections, more reloads); CI does not set it.
var longFaults = os.Getenv("TCPPROXY_FAULTS_LONG") != ""

// figure logs one measured figure for docs/RELIABILITY.md.
func figure(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("figure: "+format, args...)
}

// lifecycleCfg is an app's connection lifecycle settings (SPEC Part 2).
type lifecycleCfg struct {
	IdleTimeout           string        `json:"idle_timeout,omitempty"`
	HalfCloseTimeout      string        `json:"half_close_timeout,omitempty"`
	MaxConnectionDuration string        `json:"max_connection_duration,omitempty"`
	Keepalive             *keepaliveCfg `json:"keepalive,omitempty"`
}

type keepaliveCfg struct {
	Idle     string `json:"idle,omitempty"`
	Interval string `json:"interval,omitempty"`
	Count    int    `json:"count,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// noHealthChecks turns an app's active checks off: the tests that use it
// measure what the data path does on its own.
var noHealthChecks = &healthCfg{Disabled: true}

// faultApp is an app on 127.0.0.1 with active checks off and the access
// log on.
func faultApp(name string, port int, targets ...string) appCfg {
	a := app(name, []int{port}, targets...)
	a.HealthChecks = noHealthChecks
	a.AccessLog = true
	return a
}

// openFlowingStreams opens n streams (see openStream) and waits until
// each has echoed 128 KiB.
func openFlowingStreams(t *testing.T, port, n, chunk int, interval time.Duration) []*stream {
	t.Helper()
	streams := make([]*stream, n)
	for i := range streams {
		streams[i] = openStream(t, port, byte(i), chunk, interval)
	}
	if !waitFor(30*time.Second, func() bool {
		for _, s := range streams {
			if s.verified.Load() < 128<<10 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("streams not flowing")
	}
	return streams
}

// ---------------------------------------------------------------------
// A backend in a process of its own

// helperEnv makes the test binary, run again by startEchoProcess, serve as
// an echo backend instead of running tests.
const helperEnv = "TCPPROXY_E2E_HELPER"

func init() {
	if os.Getenv(helperEnv) == "echo" {
		os.Exit(runEchoHelper(os.Getenv(helperEnv + "_NAME")))
	}
}

// runEchoHelper is the echo backend's main: it prints its address on
// stdout and serves like echoBackend (greeting, echo, close after the
// client's EOF) until killed.
func runEchoHelper(name string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo helper:", err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	for {
		conn, err := ln.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond) // out of descriptors: do not spin
			continue
		}
		go func() {
			defer conn.Close()
			if _, err := conn.Write([]byte(name + "\n")); err != nil {
				return
			}
			buf := make([]byte, 32<<10)
			for {
				n, err := conn.Read(buf)
				if n > 0 {
					if _, werr := conn.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// echoProcess is an echo backend running in a process of its own.
type echoProcess struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startEchoProcess runs the test binary again as an echo backend that
// greets with name; it is killed (by PID) when the test ends.
func startEchoProcess(t testing.TB, name string) *echoProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=echo", helperEnv+"_NAME="+name)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	orphanProof(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &echoProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case p.addr = <-line:
	case <-time.After(10 * time.Second):
		t.Fatal("echo process did not print its address within 10s")
	}
	if _, _, err := net.SplitHostPort(p.addr); err != nil {
		t.Fatalf("echo process printed %q, not an address", p.addr)
	}
	return p
}

func (p *echoProcess) pid() int { return p.cmd.Process.Pid }

// ---------------------------------------------------------------------
// Process figures

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// rss returns a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS line in /proc/<pid>/status")
}

// cpuTime returns the CPU time a process has used (user and system).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0, fmt.Errorf("unexpected /proc/<pid>/stat: %q", b)
	}
	f := strings.Fields(rest) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/<pid>/stat: %q", b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func mustRSS(t testing.TB, pid int) int64 {
	t.Helper()
	v, err := rss(pid)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// backToBaseline polls until the goroutine and descriptor counts are back
// within slack of the baseline, forcing garbage collections (pooled splice
// pipes are closed by finalizers), then a few seconds more for the exact
// baseline. It returns the last counts and whether they got within slack.
func backToBaseline(t *testing.T, proc *caddyProc, baseG, baseF, slack int, within time.Duration) (g, f int, ok bool) {
	t.Helper()
	sample := func(extra int) func() bool {
		return func() bool {
			_, _, _ = proc.get("/debug/pprof/heap?gc=1")
			g, f = counts(t, proc)
			return g <= baseG+extra && f <= baseF+extra
		}
	}
	ok = waitFor(within, sample(slack))
	if !ok {
		_, dump, _ := proc.get("/debug/pprof/goroutine?debug=1")
		t.Errorf("not back to baseline within %s: goroutines %d (baseline %d), fds %d (baseline %d)\n%s",
			within, g, baseG, f, baseF, dump)
		return g, f, false
	}
	waitFor(3*time.Second, sample(0))
	return g, f, true
}

// ---------------------------------------------------------------------
// The access log

// accessEntry is one access log entry (SPEC Part 2).
type accessEntry struct {
	Logger        string  `json:"logger"`
	Msg           string  `json:"msg"`
	App           string  `json:"app"`
	Target        string  `json:"target"`
	Attempts      int     `json:"attempts"`
	Duration      float64 `json:"duration"`
	BytesReceived int64   `json:"bytes_received"`
	BytesSent     int64   `json:"bytes_sent"`
	Reason        string  `json:"reason"`
}

// accessLog returns the access log entries of an app written so far.
func accessLog(t testing.TB, proc *caddyProc, appName string) []accessEntry {
	t.Helper()
	b, err := os.ReadFile(proc.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []accessEntry
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `"tcpproxy.access.`+appName+`"`) {
			continue
		}
		var e accessEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "connection closed" {
			out = append(out, e)
		}
	}
	return out
}

// reasons counts entries by reason.
func reasons(entries []accessEntry) map[string]int {
	out := map[string]int{}
	for _, e := range entries {
		out[e.Reason]++
	}
	return out
}

// ---------------------------------------------------------------------
// A black-holed target

// blackHole returns the address of a listening socket that never accepts
// and whose accept queue is full: the kernel drops every further SYN, as
// a host behind a firewall that drops packets does.
func blackHole(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	// Backlog 0: the queue holds one connection, then the kernel drops
	// SYNs (tcp_abort_on_overflow=0, the default, drops rather than resets).
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	a := addr(sa.(*syscall.SockaddrInet4).Port)
	var fillers []net.Conn
	t.Cleanup(func() {
		for _, c := range fillers {
			c.Close()
		}
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", a, 300*time.Millisecond)
		if err != nil {
			if classify(err) != kindTimeout {
				t.Fatalf("filling the black hole's queue: %v", err)
			}
			return a // the queue is full: this SYN was dropped
		}
		fillers = append(fillers, c)
		if i == 16 {
			t.Fatalf("%d connections completed to a listener with backlog 0: the kernel does not drop SYNs", i+1)
		}
	}
}

// ---------------------------------------------------------------------
// A client in a network namespace of its own

// netnsLink is a network namespace the test made, joined to this one by a
// veth pair: host (here) and peer (in the namespace), a /30 between them.
type netnsLink struct {
	ns, host, peer string
	hostIP, peerIP string
}

// ipCmd runs ip(8) and returns its error with its output.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var netnsSeq atomic.Int64

// newNetnsLink makes the namespace and the link, and removes both when
// the test ends, passed or not. Where namespaces cannot be made (no root,
// no ip(8)) the test is skipped, or fails when env CI is set.
func newNetnsLink(t *testing.T) *netnsLink {
	t.Helper()
	// Names and addresses from the PID and a sequence number: concurrent
	// runs do not collide. 198.18.0.0/15 is reserved for benchmarking
	// (RFC 2544); it holds 32,768 /30 blocks.
	id := os.Getpid()*8 + int(netnsSeq.Add(1)%8)
	block := id % (1 << 15)
	n := &netnsLink{
		ns:     fmt.Sprintf("tcpproxy-fault-%d", id),
		host:   fmt.Sprintf("tpf%dh", id%100000000),
		peer:   fmt.Sprintf("tpf%dp", id%100000000),
		hostIP: fmt.Sprintf("198.%d.%d.%d", 18+block>>14, (block>>6)&0xff, (block&0x3f)<<2|1),
	}
	n.peerIP = n.hostIP[:strings.LastIndexByte(n.hostIP, '.')+1] + strconv.Itoa((block&0x3f)<<2|2)
	unavailable := func(err error) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot make a network namespace (CI runs as root and must): %v", err)
		}
		t.Skipf("cannot make a network namespace (needs root and iproute2): %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		unavailable(err)
	}
	if err := ipCmd("netns", "add", n.ns); err != nil {
		unavailable(err)
	}
	t.Cleanup(func() {
		// Deleting either end of a veth pair deletes both.
		_ = ipCmd("link", "del", n.host)
		if err := ipCmd("netns", "del", n.ns); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	for _, args := range [][]string{
		{"link", "add", n.host, "type", "veth", "peer", "name", n.peer},
		{"link", "set", n.peer, "netns", n.ns},
		{"addr", "add", n.hostIP + "/30", "dev", n.host},
		{"link", "set", n.host, "up"},
		{"-n", n.ns, "addr", "add", n.peerIP + "/30", "dev", n.peer},
		{"-n", n.ns, "link", "set", n.peer, "up"},
		{"-n", n.ns, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			unavailable(err)
		}
	}
	return n
}

// dial connects from inside the namespace: the socket is made on a thread
// that has joined the namespace, and stays in it.
func (n *netnsLink) dial(a string) (*net.TCPConn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		here, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		defer here.Close()
		there, err := os.Open("/run/netns/" + n.ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		defer there.Close()
		if err := unix.Setns(int(there.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		conn, err := net.DialTimeout("tcp", a, 5*time.Second)
		// A thread that cannot go back stays locked: Go ends it with the
		// goroutine instead of reusing it.
		if unix.Setns(int(here.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	return r.conn.(*net.TCPConn), nil
}

// cut takes the namespace's end of the link down: from then on nothing
// the client's host sends arrives, and nothing reaches it. The client
// vanished without a FIN or a reset.
func (n *netnsLink) cut() error { return ipCmd("-n", n.ns, "link", "set", n.peer, "down") }

// ---------------------------------------------------------------------
// Clients

// connList is a set of open client connections.
type connList struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connList) add(c net.Conn) {
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
}

func (l *connList) closeAll() {
	l.mu.Lock()
	cs := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

func (l *connList) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
