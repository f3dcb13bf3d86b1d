// Package e2e drives the real Caddy binary (cmd/caddy: Caddy, caddy-l4 and
// this plugin) the way an operator does: `caddy run` with a JSON config,
// reloads through the admin API and the CLI, signals, and real clients on
// loopback. Every test starts its own process on free ports and kills it by
// PID when it ends.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// caddyBin is the binary TestMain builds once for the whole package.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "tcpproxy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	} else if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		goBin = p
	}
	build := exec.Command(goBin, "build", "-o", caddyBin, "../cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building ../cmd/caddy:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", caddyBin, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// waitFor polls cond every few milliseconds until it holds or timeout
// passes; it reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var out []int
	for i := 0; len(out) < n && i < 100*n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) < n {
		t.Fatalf("found only %d free ports of %d", len(out), n)
	}
	return out
}

func freePort(t testing.TB) int { return freePorts(t, 1)[0] }

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// ---------------------------------------------------------------------
// Config

// appCfg is one app of the native tcpproxy JSON.
type appCfg struct {
	Name           string     `json:"name"`
	Ports          []int      `json:"ports"`
	Bind           []string   `json:"bind,omitempty"`
	Targets        []string   `json:"targets"`
	LBPolicy       string     `json:"lb_policy,omitempty"`
	HealthChecks   *healthCfg `json:"health_checks,omitempty"`
	DialTimeout    string     `json:"dial_timeout,omitempty"`
	MaxConnections int        `json:"max_connections,omitempty"`
	AccessLog      bool       `json:"access_log,omitempty"`
}

type healthCfg struct {
	Interval     string `json:"interval,omitempty"`
	DownInterval string `json:"down_interval,omitempty"`
	Timeout      string `json:"timeout,omitempty"`
	Rise         int    `json:"rise,omitempty"`
	Fall         int    `json:"fall,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
}

// proxyCfg is the tcpproxy app (apps.tcpproxy).
type proxyCfg struct {
	GracePeriod string   `json:"grace_period,omitempty"`
	Apps        []appCfg `json:"apps"`
}

// app is a shorthand for an app bound to 127.0.0.1 (tests never listen on
// other interfaces).
func app(name string, ports []int, targets ...string) appCfg {
	return appCfg{Name: name, Ports: ports, Bind: []string{"127.0.0.1"}, Targets: targets}
}

// ---------------------------------------------------------------------
// The Caddy process

type caddyProc struct {
	t       testing.TB
	dir     string
	admin   string // host:port of the admin API
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	state   *os.ProcessState
	waitErr error
	http    *http.Client
	nCLI    int

	adminRetries atomic.Int64 // admin requests sent again, see adminDropped
}

// startCaddy writes the config, runs `caddy run --config` and returns once
// the config is loaded (the admin API answers GET /config/ only after the
// initial load finished: it takes the config lock). The process is killed
// by PID when the test ends; its log is printed if the test failed.
func startCaddy(t testing.TB, cfg proxyCfg) *caddyProc {
	t.Helper()
	return startCaddyUnder(t, cfg)
}

// startCaddyUnder is startCaddy with `caddy run` started by a wrapper
// command that execs it (so the PID is Caddy's), such as
// `prlimit --nofile=64:64 --`.
func startCaddyUnder(t testing.TB, cfg proxyCfg, wrapper ...string) *caddyProc {
	t.Helper()
	dir := t.TempDir()
	c := &caddyProc{
		t:       t,
		dir:     dir,
		admin:   addr(freePort(t)),
		logPath: filepath.Join(dir, "caddy.log"),
		done:    make(chan struct{}),
		http:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	cfgPath := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(cfgPath, c.configJSON(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string(nil), wrapper...), caddyBin, "run", "--config", cfgPath)
	c.cmd = exec.Command(args[0], args[1:]...)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	orphanProof(c.cmd)
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		c.state = c.cmd.ProcessState
		logFile.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		if !c.exited() {
			_ = c.cmd.Process.Kill() // by PID
			<-c.done
		}
		if t.Failed() {
			c.dumpLog()
		}
	})
	ready := waitFor(30*time.Second, func() bool {
		if c.exited() {
			return true
		}
		resp, err := c.http.Get("http://" + c.admin + "/config/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if c.exited() {
		t.Fatalf("caddy exited during start-up: %v", c.waitErr)
	}
	if !ready {
		t.Fatal("caddy's admin API did not answer within 30s")
	}
	return c
}

func (c *caddyProc) pid() int { return c.cmd.Process.Pid }

func (c *caddyProc) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// dumpLog prints the last lines of the process's log.
func (c *caddyProc) dumpLog() {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		c.t.Logf("caddy log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	const keep = 150
	if len(lines) > keep {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-keep)}, lines[len(lines)-keep:]...)
	}
	c.t.Logf("caddy log (%s):\n%s", c.logPath, strings.Join(lines, "\n"))
}

// logContains reports whether the process's log has a line containing all
// of the given substrings.
func (c *caddyProc) logContains(subs ...string) bool {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// configJSON is the full Caddy JSON: this process's admin address, no
// persisted config, logs at INFO on stderr, and the tcpproxy app.
func (c *caddyProc) configJSON(p proxyCfg) []byte {
	cfg := map[string]any{
		"admin": map[string]any{
			"listen": c.admin,
			"config": map[string]any{"persist": false},
		},
		"logging": map[string]any{
			"logs": map[string]any{"default": map[string]any{"level": "INFO"}},
		},
		"apps": map[string]any{"tcpproxy": p},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// post sends body to an admin endpoint and returns the status and body.
func (c *caddyProc) post(path, contentType string, body []byte) (int, string, error) {
	resp, err := c.http.Post("http://"+c.admin+path, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// get sends a GET to an admin endpoint (again if the admin server dropped
// it, see adminDropped) and returns the status and body.
func (c *caddyProc) get(path string) (int, string, error) {
	resp, err := c.http.Get("http://" + c.admin + path)
	for attempt := 1; adminDropped(err) && attempt < 5 && !c.exited(); attempt++ {
		c.adminRetries.Add(1)
		resp, err = c.http.Get("http://" + c.admin + path)
	}
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// adminDropped reports a request that Caddy's admin server dropped
// without an answer. Caddy replaces its admin server on every config load
// and closes the previous one's SO_REUSEPORT socket in the background, so
// a request sent right after a fast load can land on the closing socket
// and see EOF or a reset. Stock Caddy does it too (measured: about 3% of
// 1,000 back-to-back POST /load with only a layer4 or pki app); it is not
// the plugin's. Loads are idempotent (an unchanged config is a no-op), so
// such a request is sent again; tests log how many were.
func adminDropped(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset by peer"))
}

// load replaces the config through POST /load; it returns the API's error
// text for a rejected config.
func (c *caddyProc) load(p proxyCfg) error {
	var (
		status int
		body   string
		err    error
	)
	for attempt := 0; attempt < 5; attempt++ {
		status, body, err = c.post("/load", "application/json", c.configJSON(p))
		if !adminDropped(err) || c.exited() {
			break
		}
		c.adminRetries.Add(1)
	}
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
			body = e.Error
		}
		return fmt.Errorf("POST /load: %d: %s", status, strings.TrimSpace(body))
	}
	return nil
}

// reloadCLI replaces the config with `caddy reload --config F --address A`.
func (c *caddyProc) reloadCLI(p proxyCfg) error {
	c.nCLI++
	path := filepath.Join(c.dir, fmt.Sprintf("reload-%d.json", c.nCLI))
	if err := os.WriteFile(path, c.configJSON(p), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, "reload", "--config", path, "--address", c.admin)
	env := append(os.Environ(), "HOME="+c.dir, "XDG_CONFIG_HOME="+c.dir, "XDG_DATA_HOME="+c.dir)
	cmd.Dir, cmd.Env = c.dir, env
	out, err := cmd.CombinedOutput()
	for attempt := 1; err != nil && attempt < 5 && adminDropped(errors.New(string(out))) && !c.exited(); attempt++ {
		c.adminRetries.Add(1)
		cmd = exec.CommandContext(ctx, caddyBin, "reload", "--config", path, "--address", c.admin)
		cmd.Dir, cmd.Env = c.dir, env
		out, err = cmd.CombinedOutput()
	}
	if err != nil {
		return fmt.Errorf("caddy reload: %v: %s", err, out)
	}
	return nil
}

// goroutines reads "goroutine profile: total N" from the admin pprof
// endpoint.
func (c *caddyProc) goroutines() (int, error) {
	status, body, err := c.get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("pprof: status %d", status)
	}
	first, _, _ := strings.Cut(body, "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	if err != nil {
		return 0, fmt.Errorf("pprof: unexpected first line %q", first)
	}
	return n, nil
}

// fds counts the process's open file descriptors.
func (c *caddyProc) fds() (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.pid()))
	return len(ents), err
}

// waitExit waits for the process to exit and returns its exit code.
func (c *caddyProc) waitExit(timeout time.Duration) (int, error) {
	select {
	case <-c.done:
		return c.state.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("caddy still running %s later", timeout)
	}
}

// ---------------------------------------------------------------------
// Backends

// echoBackend greets each connection with its name and a newline, then
// echoes until the client half-closes, then closes. It counts every
// accepted connection (health probes included) and the connections that
// carried data (proxied clients).
type echoBackend struct {
	t        testing.TB
	name     string
	addr     string
	accepted atomic.Int64
	data     atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newEchoBackend(t testing.TB, name string) *echoBackend {
	t.Helper()
	b := &echoBackend{t: t, name: name, conns: map[net.Conn]struct{}{}}
	b.listen("127.0.0.1:0")
	t.Cleanup(b.stop)
	return b
}

func (b *echoBackend) listen(a string) {
	b.t.Helper()
	ln, err := net.Listen("tcp", a)
	if err != nil {
		b.t.Fatalf("backend %s: %v", b.name, err)
	}
	b.mu.Lock()
	b.ln = ln
	b.addr = ln.Addr().String()
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			if b.ln != ln { // stopped meanwhile: stop() did not see this one
				b.mu.Unlock()
				conn.Close()
				return
			}
			b.conns[conn] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go b.serve(conn)
		}
	}()
}

func (b *echoBackend) serve(conn net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.conns, conn)
		b.mu.Unlock()
		conn.Close()
	}()
	if _, err := conn.Write([]byte(b.name + "\n")); err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	counted := false
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if !counted {
				counted = true
				b.data.Add(1)
			}
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stop closes the listener and every connection, and waits for them.
func (b *echoBackend) stop() {
	b.mu.Lock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// restart listens again on the same address.
func (b *echoBackend) restart() { b.listen(b.addr) }

// ---------------------------------------------------------------------
// Clients

// failure kinds of a client connection.
const (
	kindRefused = "refused"
	kindReset   = "reset"
	kindTimeout = "timeout"
	kindCut     = "cut" // EOF before the exchange was complete
	kindCorrupt = "corrupt"
	kindOther   = "other"
)

func classify(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return kindReset
	case errors.Is(err, os.ErrDeadlineExceeded):
		return kindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return kindCut
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return kindTimeout
		}
		return kindOther
	}
}

// connError is a failed client exchange: its kind and cause.
type connError struct {
	kind string
	err  error
}

func (e *connError) Error() string { return e.kind + ": " + e.err.Error() }

func fail(err error) *connError { return &connError{classify(err), err} }

// dialProxy connects to a proxy port.
func dialProxy(port int) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// greeting reads the backend's name line.
func greeting(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// exchange runs one short connection: dial, read the greeting, echo
// payload, half-close, expect EOF, close. It returns the backend's name.
func exchange(port int, payload []byte) (string, *connError) {
	conn, err := dialProxy(port)
	if err != nil {
		return "", fail(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(conn)
	name, err := greeting(r)
	if err != nil {
		return "", fail(err)
	}
	if _, err := conn.Write(payload); err != nil {
		return name, fail(err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(r, got); err != nil {
		return name, fail(err)
	}
	if !bytes.Equal(got, payload) {
		return name, &connError{kindCorrupt, fmt.Errorf("echo %q, sent %q", got, payload)}
	}
	if err := conn.CloseWrite(); err != nil {
		return name, fail(err)
	}
	if n, err := r.Read(got[:1]); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("%d unexpected bytes after the echo", n)
			return name, &connError{kindCorrupt, err}
		}
		return name, fail(err)
	}
	return name, nil
}

// echoOnce checks that an open connection still echoes.
func echoOnce(conn net.Conn, r *bufio.Reader, payload []byte) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(payload); err != nil {
		return err
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo %q, sent %q", got, payload)
	}
	return nil
}

// patternByte is byte off of stream seed: any lost, repeated or reordered
// chunk shows as a mismatch.
func patternByte(seed byte, off int64) byte {
	return byte(off) ^ byte(off>>8)*31 ^ byte(off>>16)*7 ^ seed
}

func fillPattern(buf []byte, seed byte, off int64) {
	for i := range buf {
		buf[i] = patternByte(seed, off+int64(i))
	}
}

// stream is a long-lived connection that pushes a known byte pattern and
// verifies the echo as it comes back.
type stream struct {
	conn    *net.TCPConn
	r       *bufio.Reader
	backend string
	seed    byte

	sent     atomic.Int64
	verified atomic.Int64

	stop       chan struct{} // close to half-close and finish
	readerDone chan struct{}
	writerDone chan struct{}

	mu    sync.Mutex
	err   error // first failure of either direction
	errAt time.Time
}

// openStream connects and starts pushing chunk bytes every interval.
func openStream(t testing.TB, port int, seed byte, chunk int, interval time.Duration) *stream {
	t.Helper()
	conn, err := dialProxy(port)
	if err != nil {
		t.Fatalf("stream %d: %v", seed, err)
	}
	s := &stream{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), seed: seed,
		stop: make(chan struct{}), readerDone: make(chan struct{}), writerDone: make(chan struct{})}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s.backend, err = greeting(s.r)
	if err != nil {
		conn.Close()
		t.Fatalf("stream %d: greeting: %v", seed, err)
	}
	t.Cleanup(func() { conn.Close() })
	go s.write(chunk, interval)
	go s.read()
	return s
}

func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err, s.errAt = err, time.Now()
	}
	s.mu.Unlock()
}

func (s *stream) failure() (error, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err, s.errAt
}

func (s *stream) write(chunk int, interval time.Duration) {
	defer close(s.writerDone)
	buf := make([]byte, chunk)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			if err := s.conn.CloseWrite(); err != nil {
				s.fail(fmt.Errorf("close write: %w", err))
			}
			return
		case <-s.readerDone:
			return
		case <-tick.C:
		}
		// Keep at most 1 MiB in flight so that a stalled proxy shows
		// as a failure rather than as filling buffers.
		if s.sent.Load()-s.verified.Load() > 1<<20 {
			continue
		}
		off := s.sent.Load()
		fillPattern(buf, s.seed, off)
		_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		n, err := s.conn.Write(buf)
		s.sent.Add(int64(n))
		if err != nil {
			s.fail(fmt.Errorf("write at %d: %w", off+int64(n), err))
			return
		}
	}
}

func (s *stream) read() {
	defer close(s.readerDone)
	buf := make([]byte, 32<<10)
	for {
		// Data flows at least every interval: 10s of silence is a stall.
		_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := s.r.Read(buf)
		off := s.verified.Load()
		for i := 0; i < n; i++ {
			if buf[i] != patternByte(s.seed, off+int64(i)) {
				s.fail(&connError{kindCorrupt, fmt.Errorf("byte %d: got %#x, want %#x", off+int64(i), buf[i], patternByte(s.seed, off+int64(i)))})
				return
			}
		}
		s.verified.Add(int64(n))
		if err == io.EOF {
			select {
			case <-s.stop:
			default:
				s.fail(fmt.Errorf("EOF at %d while still sending: %w", s.verified.Load(), err))
			}
			return
		}
		if err != nil {
			s.fail(fmt.Errorf("read at %d: %w", s.verified.Load(), err))
			return
		}
	}
}

// finish half-closes the stream and waits for the rest of the echo; it
// returns the first failure, or one if fewer bytes came back than were
// sent.
func (s *stream) finish(timeout time.Duration) error {
	close(s.stop)
	select {
	case <-s.readerDone:
	case <-time.After(timeout):
		s.conn.Close()
		<-s.readerDone
		return fmt.Errorf("no EOF within %s after the half-close", timeout)
	}
	<-s.writerDone
	if err, _ := s.failure(); err != nil {
		return err
	}
	if s.sent.Load() != s.verified.Load() {
		return fmt.Errorf("sent %d bytes, %d came back", s.sent.Load(), s.verified.Load())
	}
	return nil
}
