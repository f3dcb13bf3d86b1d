package probe

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv names the helper a re-executed test binary runs instead of the
// tests (see TestMain).
const helperEnv = "PROBE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		helperServe()
	case "emfile":
		helperEMFILE()
	default:
		os.Exit(3)
	}
	os.Exit(0)
}

// server is a TCP server on a free loopback port whose connections the
// test handles with handle. Close ends it and every connection.
type server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	// accepted gets every accepted connection's remote address (buffered;
	// extra ones are dropped).
	accepted chan string
}

func startServer(t testing.TB, handle func(net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, handle)
}

// serveOn serves ln (closed by the test's cleanup).
func serveOn(t testing.TB, ln net.Listener, handle func(net.Conn)) *server {
	s := &server{ln: ln, conns: map[net.Conn]bool{}, accepted: make(chan string, 64)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			select {
			case s.accepted <- c.RemoteAddr().String():
			default:
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// writeThenWait writes msg and keeps the connection open until the client
// closes it.
func writeThenWait(msg string) func(net.Conn) {
	return func(c net.Conn) {
		c.Write([]byte(msg))
		drain(c)
	}
}

// replyServer is a server that reads the probe's first n bytes, reports
// them on the returned channel, writes answer and waits for the client
// to close.
func replyServer(t testing.TB, n int, answer string) (*server, chan string) {
	got := make(chan string, 128)
	srv := startServer(t, func(c net.Conn) {
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		got <- string(b)
		c.Write([]byte(answer))
		drain(c)
	})
	return srv, got
}

// drain reads until the peer closes or the connection fails.
func drain(c net.Conn) {
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mustNew(t testing.TB, c Check) *Prober {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run probes target with a background context.
func run(p *Prober, target string) error { return p.Run(context.Background(), target) }

// wantErr fails unless err's message is want.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("probe passed, want error %s", want)
	}
	if err.Error() != want {
		t.Fatalf("error\n got: %s\nwant: %s", err, want)
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkGoroutines fails unless the goroutine count comes back to baseline.
func checkGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// helper runs this test binary as the named helper with extra environment
// and returns it with its stdout; the test's cleanup kills it by PID.
func helper(t testing.TB, name string, env ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+name), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

// startHelperServers starts n loopback servers in a helper process (so a
// benchmark counts only the prober's allocations) and returns their
// addresses. Each answers a line "...\n" with "role:master\r\n", and a GET
// request with a 200 response, then waits for the client to close.
func startHelperServers(t testing.TB, n int) []string {
	_, out := helper(t, "serve", "PROBE_HELPER_N="+strconv.Itoa(n))
	addrs := make([]string, 0, n)
	for len(addrs) < n {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("helper server after %d addresses: %v", len(addrs), err)
		}
		addrs = append(addrs, strings.TrimSpace(line))
	}
	return addrs
}

// helperServe is the "serve" helper: PROBE_HELPER_N listeners, each
// address printed on a line, served until the process is killed.
func helperServe() {
	n, _ := strconv.Atoi(os.Getenv("PROBE_HELPER_N"))
	w := bufio.NewWriter(os.Stdout)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(4)
		}
		w.WriteString(ln.Addr().String() + "\n")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				go answer(c)
			}
		}()
	}
	w.Flush()
	select {}
}

// answer serves one helper connection.
func answer(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	if strings.HasPrefix(line, "GET ") {
		for line != "\r\n" && err == nil {
			line, err = r.ReadString('\n')
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	} else {
		c.Write([]byte("role:master\r\n"))
	}
	drain(c)
}
