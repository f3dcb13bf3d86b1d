package probe

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyResult is what a startProxyServer connection saw.
type proxyResult struct {
	header *proxyproto.Header
	data   string
	err    error
}

// startProxyServer serves a go-proxyproto listener that requires a header;
// each connection reports its header and the bytes after it.
func startProxyServer(t *testing.T, answer string) (*server, chan proxyResult) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln := &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 5 * time.Second,
		ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
	results := make(chan proxyResult, 4)
	srv := serveOn(t, pln, func(c net.Conn) {
		b := make([]byte, 64)
		n, err := io.ReadAtLeast(c, b, len("PING\r\n"))
		results <- proxyResult{header: c.(*proxyproto.Conn).ProxyHeader(), data: string(b[:n]), err: err}
		c.Write([]byte(answer))
		drain(c)
	})
	return srv, results
}

// With the app speaking PROXY v1 or v2, a probe of the target's port
// starts with a LOCAL header of that version, then the send bytes.
func TestProxyHeaderLocal(t *testing.T) {
	for _, version := range []byte{1, 2} {
		srv, results := startProxyServer(t, "+PONG\r\n")
		p := mustNew(t, Check{Timeout: 5 * time.Second, ProxyHeaderVersion: version, Send: []byte("PING\r\n"), Expect: []byte("+PONG")})
		if err := run(p, srv.Addr()); err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		r := <-results
		if r.err != nil || r.header == nil || r.header.Version != version || r.header.Command != proxyproto.LOCAL || r.data != "PING\r\n" {
			t.Fatalf("v%d: target saw header %+v, data %q, error %v", version, r.header, r.data, r.err)
		}
	}
}

// A connect-only probe still sends the header, so the target has no bare
// connection to complain about.
func TestProxyHeaderConnectOnly(t *testing.T) {
	got := make(chan []byte, 1)
	srv := startServer(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
	})
	p := mustNew(t, Check{Timeout: 5 * time.Second, ProxyHeaderVersion: 1})
	if err := run(p, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "PROXY UNKNOWN\r\n" {
		t.Fatalf("target got %q, want a v1 LOCAL header", b)
	}
}

// An HTTP probe puts the header before the request: net/http behind
// go-proxyproto answers it.
func TestProxyHeaderHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	headers := make(chan *proxyproto.Header, 1)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateActive {
				headers <- c.(*proxyproto.Conn).ProxyHeader()
			}
		},
	}
	go srv.Serve(&proxyproto.Listener{Listener: ln})
	defer srv.Close()
	p := mustNew(t, Check{Timeout: 5 * time.Second, ProxyHeaderVersion: 2, HTTP: &HTTP{URI: "/"}})
	if err := run(p, ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if h := <-headers; h == nil || h.Command != proxyproto.LOCAL || h.Version != 2 {
		t.Fatalf("header %+v", h)
	}
}

// With Port set the probe goes elsewhere than where the app proxies: no
// header, the send bytes come first.
func TestProxyHeaderNotOnOverridePort(t *testing.T) {
	other, got := replyServer(t, len("PING\r\n"), "+PONG\r\n")
	p := mustNew(t, Check{Timeout: 5 * time.Second, ProxyHeaderVersion: 2, Port: other.Port(),
		Send: []byte("PING\r\n"), Expect: []byte("+PONG")})
	if err := run(p, closedAddr(t)); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "PING\r\n" {
		t.Fatalf("override port got %q, want the send bytes without a header", s)
	}
}
