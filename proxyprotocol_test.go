package tcpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// Tests of proxy_protocol: the target gets a PROXY header, parsed here with
// the same library HAProxy-compatible Go servers use, carrying the client's
// real address, before the payload.

// proxyProtocolBackend is a target that reads a PROXY header, if any, then
// echoes the rest of the stream. It reports each proxied connection's
// header and how many bytes followed it.
type proxyProtocolBackend struct {
	addr     string
	got      chan proxyProtocolConn
	probes   chan *proxyproto.Header // LOCAL headers of health probes
	accepted atomic.Int64
}

// payloadSize is what each test connection sends after the header.
const payloadSize = 64 << 10

type proxyProtocolConn struct {
	header  *proxyproto.Header
	err     error // from proxyproto.Read
	payload int64 // bytes after the header (echoed)
}

func newProxyProtocolBackend(t *testing.T) *proxyProtocolBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b := &proxyProtocolBackend{addr: ln.Addr().String(), got: make(chan proxyProtocolConn, 16),
		probes: make(chan *proxyproto.Header, 64)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			go b.handle(c)
		}
	}()
	return b
}

func (b *proxyProtocolBackend) handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.Peek(1); err != nil {
		return // a health probe: it connects and closes, sending nothing
	}
	h, err := proxyproto.Read(r)
	if err == nil && h.Command == proxyproto.LOCAL {
		select {
		case b.probes <- h:
		default:
		}
		return
	}
	var n int64
	if err == nil || errors.Is(err, proxyproto.ErrNoProxyProtocol) {
		n, _ = io.Copy(c, r)
		_ = c.(*net.TCPConn).CloseWrite()
	}
	b.got <- proxyProtocolConn{header: h, err: err, payload: n}
}

// next returns what the backend got on its next connection.
func (b *proxyProtocolBackend) next(t *testing.T) proxyProtocolConn {
	t.Helper()
	select {
	case got := <-b.got:
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no connection")
		return proxyProtocolConn{}
	}
}

func TestProxyProtocolCarriesTheClientAddress(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		for _, tc := range []struct {
			name, version, bind string
			version8            byte
			transport           proxyproto.AddressFamilyAndProtocol
		}{
			{"v1 over IPv4", "v1", "127.0.0.1", 1, proxyproto.TCPv4},
			{"v2 over IPv4", "v2", "127.0.0.1", 2, proxyproto.TCPv4},
			{"v1 over IPv6", "v1", "::1", 1, proxyproto.TCPv6},
			{"v2 over IPv6", "v2", "::1", 2, proxyproto.TCPv6},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.bind == "::1" {
					skipWithoutIPv6(t)
				}
				backend := newProxyProtocolBackend(t)
				port := freePort(t)
				loadConfig(t, proxyConfig(app{"name": "pp", "ports": []int{port}, "bind": []string{tc.bind},
					"targets": []string{backend.addr}, "proxy_protocol": tc.version}))
				listenAddr := net.JoinHostPort(tc.bind, itoa(int64(port)))

				c := dial(t, listenAddr)
				defer c.Close()
				roundTrip(t, c, payloadSize)
				got := backend.next(t)
				if got.err != nil {
					t.Fatalf("backend could not read a PROXY header: %v", got.err)
				}
				h := got.header
				if h.Version != tc.version8 || h.Command != proxyproto.PROXY || h.TransportProtocol != tc.transport {
					t.Errorf("header version %d, command %v, transport %v; want %d, PROXY, %v",
						h.Version, h.Command, h.TransportProtocol, tc.version8, tc.transport)
				}
				if src := h.SourceAddr.String(); src != c.LocalAddr().String() {
					t.Errorf("source %s, want the client's address %s", src, c.LocalAddr())
				}
				if dst := h.DestinationAddr.String(); dst != c.RemoteAddr().String() {
					t.Errorf("destination %s, want the proxy's listening address %s", dst, c.RemoteAddr())
				}
				// The backend echoed what followed the header, and the echo
				// was what the client sent.
				if got.payload != payloadSize {
					t.Errorf("backend got %d payload bytes after the header, want the %d sent", got.payload, payloadSize)
				}
			})
		}
	})
}

func TestProxyProtocolHealthProbesSendLocalHeader(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			backend := newProxyProtocolBackend(t)
			loadConfig(t, proxyConfig(app{"name": "pp-probe", "ports": []int{freePort(t)}, "bind": []string{"127.0.0.1"},
				"targets": []string{backend.addr}, "proxy_protocol": version,
				"health_checks": map[string]any{"interval": "100ms"}}))
			select {
			case h := <-backend.probes:
				if want := map[string]byte{"v1": 1, "v2": 2}[version]; h.Version != want {
					t.Errorf("probe header version %d, want %d", h.Version, want)
				}
			case got := <-backend.got:
				t.Fatalf("a probe reached the backend without a LOCAL header: %+v (err %v)", got.header, got.err)
			case <-time.After(10 * time.Second):
				t.Fatal("no health probe with a PROXY LOCAL header reached the backend")
			}
		})
	}
}

func TestProxyProtocolOffSendsNoHeader(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		backend := newProxyProtocolBackend(t)
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "no-pp", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": []string{backend.addr}}))
		c := dial(t, hostPort(port))
		defer c.Close()
		roundTrip(t, c, payloadSize)
		got := backend.next(t)
		if !errors.Is(got.err, proxyproto.ErrNoProxyProtocol) {
			t.Errorf("backend read a PROXY header %+v (err %v), want none", got.header, got.err)
		}
		if got.payload != payloadSize {
			t.Errorf("backend got %d bytes, want the %d sent", got.payload, payloadSize)
		}
	})
}
