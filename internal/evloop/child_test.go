//go:build linux

package evloop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// The benchmarks run the proxy alone in a child process (this test binary
// again), so that its CPU time, system calls, memory and descriptors can
// be measured apart from the clients and targets.
const (
	childEnv  = "EVLOOP_BENCH_CHILD"  // "loop", "loop-untimed" or "relay": the proxy to run
	targetEnv = "EVLOOP_BENCH_TARGET" // where it proxies to
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode, os.Getenv(targetEnv)))
	}
	os.Exit(m.Run())
}

// childMain runs a proxy until its stdin closes; it prints its address.
func childMain(mode, target string) int {
	if path := os.Getenv("EVLOOP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	var (
		addr string
		stop func()
		err  error
	)
	switch mode {
	case "loop":
		addr, stop, err = serveLoop(target, childTimeouts)
	case "loop-untimed":
		addr, stop, err = serveLoop(target, Timeouts{})
	case "relay":
		addr, stop, err = serveRelay(target)
	default:
		err = fmt.Errorf("unknown mode %q, want loop, loop-untimed or relay", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(addr)
	io.Copy(io.Discard, os.Stdin)
	stop()
	return 0 // EVLOOP_PROFILE=file: a CPU profile of the child
}

// childSession is the session a caller like the tcpproxy handler would
// give: one target, then give up.
type childSession struct {
	t    Target
	done bool
}

func (s *childSession) Next() (Target, bool) {
	if s.done {
		return Target{}, false
	}
	s.done = true
	return s.t, true
}
func (*childSession) DialFailed(Target, error)        {}
func (*childSession) Connected(Target, time.Duration) {}
func (*childSession) Done(r Reason, up, down int64)   {}

// spec's defaults: keepalive 15s/15s/9, dial 2s, idle 1h, half-close 60s.
var (
	childKeepAlive = net.KeepAliveConfig{Enable: true}
	childTimeouts  = Timeouts{Idle: time.Hour, HalfClose: time.Minute}
)

// serveLoop proxies on the loops, with timeouts to: a Listener set up as
// the caller is to.
func serveLoop(target string, to Timeouts) (string, func(), error) {
	addr, err := netip.ParseAddrPort(target)
	if err != nil {
		return "", nil, err
	}
	ls, err := Acquire()
	if err != nil {
		return "", nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		if err := SetListenerOptions(rc); err != nil {
			return err
		}
		return SetKeepAlive(rc, childKeepAlive)
	}}
	lc.SetMultipathTCP(false)
	tl, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	ln, err := NewListener(tl.(*net.TCPListener))
	if err != nil {
		return "", nil, err
	}
	t := Target{Addr: addr, DialTimeout: 2 * time.Second, KeepAlive: childKeepAlive}
	go acceptLoop(ln, func(nc net.Conn) {
		if _, err := ls.Proxy(nc.(*Conn), &childSession{t: t}, to); err != nil {
			nc.Close()
		}
	})
	return ln.Addr().String(), func() { ln.Close(); ls.Release() }, nil
}

// serveRelay proxies as the tcpproxy handler does today (handler.go at
// 36ce74c, without caddy-l4): Go's listener and dialer with their
// per-socket defaults, and a goroutine per direction (internal/relay).
func serveRelay(target string) (string, func(), error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error { return SetListenerOptions(rc) }}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	dialer := net.Dialer{Timeout: 2 * time.Second}
	nop := nopCounter{}
	go acceptLoop(ln, func(client net.Conn) {
		go func() {
			defer client.Close()
			up, err := dialer.Dial("tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			relay.InlineOOB(client)
			relay.InlineOOB(up)
			relay.New(client, up, relay.Timeouts{}, time.Now(), nop, nop).Run()
		}()
	})
	return ln.Addr().String(), func() { ln.Close() }, nil
}

// acceptLoop hands each connection ln accepts to handle, until ln closes;
// out of descriptors, it waits, as net/http does.
func acceptLoop(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			return
		}
		handle(c)
	}
}

type nopCounter struct{}

func (nopCounter) Add(float64) {}

// proxyProcess is a child running a proxy.
type proxyProcess struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	addr   string
	term   bool    // stopped by SIGTERM (HAProxy), not by closing stdin
	census *census // when EVLOOP_CENSUS is set
	once   sync.Once
}

// startProxy starts the proxy of mode ("loop", "relay" or "haproxy") in a
// child process, proxying to target.
func startProxy(b *testing.B, mode, target string) *proxyProcess {
	b.Helper()
	p := &proxyProcess{}
	var args []string
	if mode == "haproxy" {
		p.addr, p.term = freeAddr(b), true
		path := b.TempDir() + "/haproxy.cfg"
		if err := os.WriteFile(path, []byte(haproxyConfig(p.addr, target)), 0o600); err != nil {
			b.Fatal(err)
		}
		args = []string{"haproxy", "-db", "-f", path}
	} else {
		args = []string{os.Args[0], "-test.run=^$"}
	}
	p.census = newCensus(b)
	if p.census != nil {
		args = append(p.census.wrap(), args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+mode, targetEnv+"="+target)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if p.census != nil {
		cmd.ExtraFiles = p.census.childFiles()
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p.cmd, p.stdin = cmd, stdin
	b.Cleanup(p.stop)
	if p.census != nil {
		p.census.started()
	}
	if p.term {
		waitListening(b, p.addr)
		return p
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the %s proxy did not start: %v", mode, err)
	}
	p.addr = strings.TrimSpace(line)
	return p
}

// haproxyConfig is HAProxy in TCP mode as bench/run.sh runs it (minus the
// health checks, which the other modes do not run either): the figure to
// beat.
func haproxyConfig(addr, target string) string {
	return fmt.Sprintf("global\n\tmaxconn 8000\ndefaults\n\tmode tcp\n\ttimeout connect 2s\n"+
		"\ttimeout client 1h\n\ttimeout server 1h\nfrontend fe\n\tbind %s\n\tdefault_backend be\n"+
		"backend be\n\tserver t %s\n", addr, target)
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(b *testing.B, addr string) {
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the child and waits for it.
func (p *proxyProcess) stop() {
	p.once.Do(func() {
		p.stdin.Close() // a test child ends with its stdin
		if p.term {
			p.signal(syscall.SIGTERM)
		}
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // perf takes a while to write its counts
			p.cmd.Process.Kill()
			<-done
		}
	})
}

// signal signals the proxy (not perf, which would only stop counting).
func (p *proxyProcess) signal(sig syscall.Signal) {
	if pid := p.pid(); pid > 0 {
		syscall.Kill(pid, sig)
	}
}

// pid returns the proxy's process: the child, or perf's child.
func (p *proxyProcess) pid() int {
	if p.census == nil {
		return p.cmd.Process.Pid
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.cmd.Process.Pid, p.cmd.Process.Pid))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// cpu returns the CPU time the child has used.
func (p *proxyProcess) cpu(b *testing.B) time.Duration {
	user, sys := p.cpuSplit(b)
	return user + sys
}

// cpuSplit returns the CPU time the child has used in user space and in
// the kernel.
func (p *proxyProcess) cpuSplit(b *testing.B) (user, sys time.Duration) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field of the line, stime the 15th, in clock ticks (100 Hz).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond
}

// rss returns the child's resident memory, in bytes.
func (p *proxyProcess) rss(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// settledRSS returns the child's resident memory once it stops changing
// (two readings 50 ms apart agree, within 2 s).
func (p *proxyProcess) settledRSS(b *testing.B) int64 {
	last := p.rss(b)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		now := p.rss(b)
		if now == last {
			break
		}
		last = now
	}
	return last
}

// fds returns the number of descriptors the child has open.
func (p *proxyProcess) fds(b *testing.B) int {
	b.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid()))
	if err != nil {
		b.Fatal(err)
	}
	return len(entries)
}

// switches returns the context switches of all the proxy's threads.
func (p *proxyProcess) switches(b *testing.B) int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.pid()))
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", p.pid(), task.Name()))
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			} else if rest, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			}
		}
	}
	return n
}
