package tcpproxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
)

// FuzzProxyHeader feeds bytes from a trusted source to the PROXY header
// reader. It never panics; when it accepts a header, every client byte
// after the header is kept, in order (those read along with the header,
// then those left on the connection), and the header is no longer than
// the library allows (107 bytes for v1, 16 + 4096 for v2).
func FuzzProxyHeader(f *testing.F) {
	f.Add(append(headerBytes(f, 1, "203.0.113.7:4242", "192.0.2.1:443"), "hello"...))
	f.Add(append(headerBytes(f, 2, "[2001:db8::7]:4343", "[2001:db8::1]:443"), "hello"...))
	f.Add(append(localHeader(f), "hello"...))
	f.Add([]byte("PROXY UNKNOWN\r\nhello"))
	f.Add([]byte("PROXY TCP4 203.0.113.7 192.0.2.1 4242\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	h := benchHandler(f, Clients{AcceptProxyProtocol: []string{"0.0.0.0/0"}})
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		defer server.Close() // also ends the write below if the reader gave up
		go func() {
			_, _ = client.Write(in)
			client.Close()
		}()
		s := session{cx: layer4.WrapConnection(server, nil, zap.NewNop())}
		if err := h.readProxyHeader(&s); err != nil {
			return
		}
		rest, err := io.ReadAll(s.cx)
		if err != nil {
			t.Fatal(err)
		}
		after := append(append([]byte{}, s.early...), rest...)
		if !bytes.HasSuffix(in, after) {
			t.Fatalf("input %q: the bytes after the header are %q (early %q), not its end", in, after, s.early)
		}
		if n := len(in) - len(after); n > 16+4096 {
			t.Fatalf("input %q: accepted a header of %d bytes", in, n)
		}
	})
}

// BenchmarkProxyHeader is the cost of reading a trusted source's PROXY
// header (v1 or v2, as sent by HAProxy, an AWS NLB or caddy-l4) from a
// real socket, including the read deadline set and cleared and the
// checks after it. Each round trip also has the sender's write: the
// "socket" case is that write and a plain read of the same v2 header,
// the part of the cost that is not the header's.
func BenchmarkProxyHeader(b *testing.B) {
	for _, v := range []byte{1, 2} {
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			client, server := tcpPair(b)
			cx := layer4.WrapConnection(server, nil, zap.NewNop())
			h := benchHandler(b, Clients{AcceptProxyProtocol: []string{"127.0.0.0/8"}})
			hdr := headerBytes(b, v, "203.0.113.7:4242", "192.0.2.1:443")
			want := netip.MustParseAddrPort("203.0.113.7:4242")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Write(hdr); err != nil {
					b.Fatal(err)
				}
				s := session{cx: cx, client: addrPort(server.RemoteAddr())}
				h.admitAndEnd(b, &s)
				if s.client != want || len(s.early) != 0 {
					b.Fatalf("client %s, %d early bytes; want %s, none", s.client, len(s.early), want)
				}
			}
		})
	}
	b.Run("socket", func(b *testing.B) {
		client, server := tcpPair(b)
		hdr := headerBytes(b, 2, "203.0.113.7:4242", "192.0.2.1:443")
		buf := make([]byte, len(hdr))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.Write(hdr); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(server, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
