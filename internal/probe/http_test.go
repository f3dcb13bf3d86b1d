package probe

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// httpServer is a net/http server on a free loopback port.
func httpServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &server{ln: ln}
}

// statusServer answers every request with its current status and body.
type statusServer struct {
	status atomic.Int64
	body   atomic.Value
}

func newStatusServer(t *testing.T, status int, body string) (*statusServer, string) {
	s := &statusServer{}
	s.status.Store(int64(status))
	s.body.Store(body)
	srv := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(s.status.Load()))
		w.Write([]byte(s.body.Load().(string)))
	})
	return s, srv.Addr()
}

// Two servers, 200 and 503, flipped at runtime: the default (any 2xx), an
// exact code and a class each follow.
func TestHTTPStatus(t *testing.T) {
	a, addrA := newStatusServer(t, 200, "ok")
	b, addrB := newStatusServer(t, 503, "down")
	any2xx := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/health"}})
	exact := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/health", Status: 200}})
	class5 := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/health", StatusClass: 5}})

	check := func(up, down string) {
		t.Helper()
		for _, p := range []*Prober{any2xx, exact} {
			if err := run(p, up); err != nil {
				t.Fatalf("%s: %v", up, err)
			}
		}
		wantErr(t, run(any2xx, down), "expected status 2xx, got 503")
		wantErr(t, run(exact, down), "expected status 200, got 503")
		if err := run(class5, down); err != nil {
			t.Fatalf("5xx probe of %s: %v", down, err)
		}
		wantErr(t, run(class5, up), "expected status 5xx, got 200")
	}
	check(addrA, addrB)
	a.status.Store(503)
	b.status.Store(200)
	check(addrB, addrA)
}

// The body must match the regexp; a mismatch quotes both.
func TestHTTPBody(t *testing.T) {
	s, addr := newStatusServer(t, 200, `{"status":"ok"}`)
	p := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/", Body: regexp.MustCompile(`"status":\s*"ok"`)}})
	if err := run(p, addr); err != nil {
		t.Fatal(err)
	}
	s.body.Store(`{"status":"degraded"}`)
	wantErr(t, run(p, addr), `expected body to match "\"status\":\\s*\"ok\"", got "{\"status\":\"degraded\"}"`)
}

// A chunked body is decoded before matching: the match spans chunks.
func TestHTTPChunkedBody(t *testing.T) {
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		for _, part := range []string{"he", "alt", "hy"} {
			w.Write([]byte(part))
			w.(http.Flusher).Flush()
		}
	}).Addr()
	p := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/", Body: regexp.MustCompile(`^healthy$`)}})
	if err := run(p, addr); err != nil {
		t.Fatal(err)
	}
}

// The request: method, URI, default Host (the target's host), configured
// headers (Caddy's shape, any case), and an empty body.
func TestHTTPRequest(t *testing.T) {
	seen := make(chan *http.Request, 1)
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
	}).Addr()

	p := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/ready?full=1", Method: "HEAD",
		Header: http.Header{"x-probe": {"a", "b"}}}})
	if err := run(p, addr); err != nil {
		t.Fatal(err)
	}
	r := <-seen
	if r.Method != "HEAD" || r.RequestURI != "/ready?full=1" || r.Host != "127.0.0.1" ||
		strings.Join(r.Header.Values("X-Probe"), ",") != "a,b" || r.UserAgent() != userAgent {
		t.Fatalf("request %s %s Host %q headers %v", r.Method, r.RequestURI, r.Host, r.Header)
	}

	p = mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/", Header: http.Header{"host": {"db.internal"}, "User-Agent": {"mine"}}}})
	if err := run(p, addr); err != nil {
		t.Fatal(err)
	}
	r = <-seen
	if r.Method != "GET" || r.Host != "db.internal" || r.UserAgent() != "mine" {
		t.Fatalf("request %s Host %q User-Agent %q", r.Method, r.Host, r.UserAgent())
	}
}

// An IPv6 target gets a bracketed Host.
func TestHTTPHostIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	ln.Close()
	seen := make(chan string, 1)
	ln, err = net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Host })}
	go srv.Serve(ln)
	defer srv.Close()
	p := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/"}})
	if err := run(p, ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if h := <-seen; h != "[::1]" {
		t.Fatalf("Host %q", h)
	}
}

// Responses written by hand: interim responses are skipped, a
// Content-Length body completes without the target closing, a non-HTTP
// answer and a short body are reported.
func TestHTTPRawResponses(t *testing.T) {
	// Passing cases get a generous timeout; the ones that must time out a
	// short one.
	const long, short = 10 * time.Second, 300 * time.Millisecond
	okBody := regexp.MustCompile(`^ok$`)
	cases := []struct {
		name, response string
		timeout        time.Duration
		want           string
	}{
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", long, ""},
		{"length then silence", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok and more the probe ignores", long, ""},
		{"bare LF", "HTTP/1.0 200 OK\nContent-Length: 2\n\nok", long, ""},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1;x=y\r\no\r\n1\r\nk\r\n0\r\nT: 1\r\n\r\n", long, ""},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", long, `expected body to match "^ok$", got ""`},
		{"not http", "+PONG\r\n", short, `no HTTP response within 300ms, got "+PONG\r\n"`},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", short, `no complete response body within 300ms, got "ok"`},
		{"chunk never ends", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", short, `no complete response body within 300ms, got "2\r\nok\r\n"`},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n", long, `malformed chunked body (chunk size line without a size), got "zz\r\nok\r\n"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startServer(t, func(conn net.Conn) {
				buf := make([]byte, 4096)
				conn.Read(buf)
				conn.Write([]byte(c.response))
				drain(conn)
			})
			p := mustNew(t, Check{Timeout: c.timeout, HTTP: &HTTP{URI: "/", Body: okBody}})
			err := run(p, srv.Addr())
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, c.want)
		})
	}
}

// A target that answers something else than HTTP and closes. It reads
// the request first: closing with unread bytes would reset the
// connection instead.
func TestHTTPNotHTTP(t *testing.T) {
	sayAndClose := func(msg string) func(net.Conn) {
		return func(c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				c.Write([]byte(msg))
			}
		}
	}
	p := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/"}})
	srv := startServer(t, sayAndClose("SSH-2.0-OpenSSH_9.6\r\n"))
	wantErr(t, run(p, srv.Addr()), `connection closed before an HTTP response arrived, got "SSH-2.0-OpenSSH_9.6\r\n"`)
	srv2 := startServer(t, sayAndClose("SSH-2.0-OpenSSH_9.6\r\n\r\n"))
	wantErr(t, run(p, srv2.Addr()), `expected an HTTP/1.x response, got "SSH-2.0-OpenSSH_9.6\r\n\r\n"`)
}

// A body past the read limit is matched as far as it was read.
func TestHTTPLongBody(t *testing.T) {
	_, addr := newStatusServer(t, 200, "ok"+strings.Repeat(".", 4*ReadLimit)+"END")
	start := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/", Body: regexp.MustCompile(`^ok\.+`)}})
	if err := run(start, addr); err != nil {
		t.Fatal(err)
	}
	end := mustNew(t, Check{Timeout: 5 * time.Second, HTTP: &HTTP{URI: "/", Body: regexp.MustCompile(`END`)}})
	wantErr(t, run(end, addr), `expected body to match "END", got "ok`+strings.Repeat(".", 62)+`"…`)
}

// Configs that cannot work are refused with the offending value quoted,
// and the error names the config field at fault.
func TestNewErrors(t *testing.T) {
	cases := []struct {
		c           Check
		field, want string
	}{
		{Check{}, "timeout", "timeout must be positive, got 0s"},
		{Check{Timeout: time.Second, Port: 70000}, "port", "port must be 1..65535 (or 0 for the target's port), got 70000"},
		{Check{Timeout: time.Second, ProxyHeaderVersion: 3}, "proxy_protocol", "proxy header version must be 0, 1 or 2, got 3"},
		{Check{Timeout: time.Second, Send: []byte("x"), HTTP: &HTTP{URI: "/"}}, "uri", "an HTTP probe (uri) cannot also have send or expect bytes"},
		{Check{Timeout: time.Second, Expect: make([]byte, ReadLimit+1)}, "expect", "expect is 16385 bytes, more than the 16384 a probe reads"},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "health"}}, "uri", `uri "health" must start with "/" and have no spaces or control characters`},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/a b"}}, "uri", `uri "/a b" must start with "/" and have no spaces or control characters`},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", Method: "GE T"}}, "method", `method "GE T" is not an HTTP method token`},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", Status: 999}}, "expect_status", "expect status 999 is not a code 100..599"},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", StatusClass: 6}}, "expect_status", "expect status class 6 is not one of 1..5 (1xx..5xx)"},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", Status: 200, StatusClass: 2}}, "expect_status", "expect status is either a code (200) or a class (2xx), not both"},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", Header: http.Header{"X:Y": {"1"}}}}, "headers", `header name "X:Y" is not an HTTP token`},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", Header: http.Header{"X-A": {"1\r\nEvil: 1"}}}}, "headers", `header X-A value "1\r\nEvil: 1" has a line break or NUL`},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", Header: http.Header{"Host": {"a", "b"}}}}, "headers", `header Host must have one value, got ["a" "b"]`},
		{Check{Timeout: time.Second, HTTP: &HTTP{URI: "/", Header: http.Header{"content-length": {"3"}}}}, "headers", "header Content-Length: a health probe sends no body"},
	}
	for _, c := range cases {
		_, err := New(c.c)
		if err == nil || err.Error() != c.want {
			t.Errorf("New(%+v):\n got %v\nwant %s", c.c, err, c.want)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("New(%+v): error %v names field %+v, want %q", c.c, err, ce, c.field)
		}
	}
}
