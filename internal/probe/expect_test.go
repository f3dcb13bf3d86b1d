package probe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A banner server that says 220 passes; one that says 554 and hangs up
// fails with what it said.
func TestBanner(t *testing.T) {
	good := startServer(t, writeThenWait("220 mail.example ESMTP\r\n"))
	bad := startServer(t, func(c net.Conn) { c.Write([]byte("554 go away\r\n")) })
	p := mustNew(t, Check{Timeout: 5 * time.Second, Expect: []byte("220")})

	if err := run(p, good.Addr()); err != nil {
		t.Fatalf("220 banner: %v", err)
	}
	err := run(p, bad.Addr())
	wantErr(t, err, `connection closed before "220" arrived, got "554 go away\r\n"`)
	if !errors.Is(err, io.EOF) {
		t.Errorf("error %v does not wrap io.EOF", err)
	}
}

// The send bytes reach the target exactly, and the answer is searched
// anywhere in what came.
func TestSendExpect(t *testing.T) {
	srv, got := replyServer(t, len("PING\r\n"), "+some preamble\r\n+PONG\r\n")
	p := mustNew(t, Check{Timeout: 5 * time.Second, Send: []byte("PING\r\n"), Expect: []byte("+PONG")})
	if err := run(p, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "PING\r\n" {
		t.Fatalf("target got %q, want %q", s, "PING\r\n")
	}
}

// Binary send and expect bytes given in hex.
func TestHexSendExpect(t *testing.T) {
	send, err := ParseHex("de ad be ef 00 0a")
	if err != nil {
		t.Fatal(err)
	}
	expect, err := ParseHex("00FF\t01")
	if err != nil {
		t.Fatal(err)
	}
	answer := func(reply []byte) func(net.Conn) {
		return func(c net.Conn) {
			b := make([]byte, len(send))
			if _, err := io.ReadFull(c, b); err != nil || !bytes.Equal(b, send) {
				c.Write([]byte("wrong request"))
				return
			}
			c.Write(reply)
			drain(c)
		}
	}
	good := startServer(t, answer([]byte{0x10, 0x00, 0xff, 0x01, 0x20}))
	bad := startServer(t, answer([]byte{0x00, 0xff, 0x02}))
	p := mustNew(t, Check{Timeout: 500 * time.Millisecond, Send: send, Expect: expect})
	if err := run(p, good.Addr()); err != nil {
		t.Fatal(err)
	}
	wantErr(t, run(p, bad.Addr()), `no "\x00\xff\x01" within 500ms, got "\x00\xff\x02"`)
}

// A target that accepts and says nothing fails after the timeout, saying
// so; the error wraps os.ErrDeadlineExceeded and is not local.
func TestExpectTimeout(t *testing.T) {
	srv := startServer(t, drain)
	const timeout = 300 * time.Millisecond
	p := mustNew(t, Check{Timeout: timeout, Send: []byte("hello\n"), Expect: []byte("role:master")})
	start := time.Now()
	err := run(p, srv.Addr())
	took := time.Since(start)
	wantErr(t, err, `no "role:master" within 300ms, got ""`)
	if !errors.Is(err, os.ErrDeadlineExceeded) || IsLocal(err) {
		t.Errorf("timeout error %v: deadline %t, local %t", err, errors.Is(err, os.ErrDeadlineExceeded), IsLocal(err))
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("probe took %s with a timeout of %s", took, timeout)
	}
}

// Reading stops at ReadLimit: a target that streams without the expected
// bytes fails at once, not at the timeout.
func TestReadLimit(t *testing.T) {
	srv := startServer(t, writeThenWait(strings.Repeat("x", 3*ReadLimit)))
	p := mustNew(t, Check{Timeout: time.Minute, Expect: []byte("role:master")})
	start := time.Now()
	wantErr(t, run(p, srv.Addr()), `expected "role:master", got "`+strings.Repeat("x", 64)+`"…`)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("probe took %s: it waited for the timeout", took)
	}
}

// Expected bytes that end exactly at the read limit pass; one byte later
// they are not read.
func TestReadLimitEdge(t *testing.T) {
	want := "role:master"
	at := func(end int) string { return strings.Repeat("x", end-len(want)) + want + "tail" }
	inside := startServer(t, writeThenWait(at(ReadLimit)))
	outside := startServer(t, writeThenWait(at(ReadLimit+1)))
	p := mustNew(t, Check{Timeout: time.Minute, Expect: []byte(want)})
	if err := run(p, inside.Addr()); err != nil {
		t.Fatalf("expected bytes ending at the limit: %v", err)
	}
	if err := run(p, outside.Addr()); err == nil || !strings.HasPrefix(err.Error(), `expected "role:master"`) {
		t.Fatalf("expected bytes past the limit: %v", err)
	}
}

// Expected bytes split over several reads are found: net.Pipe delivers
// each write as its own read.
func TestExpectAcrossReads(t *testing.T) {
	client, target := net.Pipe()
	defer client.Close()
	go func() {
		defer target.Close()
		for _, part := range []string{"# Replication\r\nro", "le:mas", "t", "er\r\n"} {
			if _, err := target.Write([]byte(part)); err != nil {
				return
			}
		}
		drain(target)
	}()
	p := mustNew(t, Check{Timeout: 5 * time.Second, Expect: []byte("role:master")})
	client.SetDeadline(time.Now().Add(5 * time.Second))
	buf := bufPool.Get().(*[ReadLimit]byte)
	defer bufPool.Put(buf)
	s := session{conn: client, buf: buf[:]}
	if err := p.sendExpect(&s); err != nil {
		t.Fatal(err)
	}
	if got := string(s.buf[:s.n]); got != "# Replication\r\nrole:master\r\n" {
		t.Fatalf("read %q: the probe read on after the match or missed a part", got)
	}
}

// Connecting is enough without send or expect; a closed port fails with
// the dial error, which is not local.
func TestConnectOnly(t *testing.T) {
	srv := startServer(t, drain)
	p := mustNew(t, Check{Timeout: 2 * time.Second})
	if err := run(p, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	err := run(p, closedAddr(t))
	if err == nil || !strings.Contains(err.Error(), "connection refused") || IsLocal(err) {
		t.Fatalf("closed port: %v (local %t)", err, IsLocal(err))
	}
}

// Send without expect passes once written, and the bytes arrive.
func TestSendOnly(t *testing.T) {
	got := make(chan string, 1)
	srv := startServer(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	p := mustNew(t, Check{Timeout: 2 * time.Second, Send: []byte("QUIT\r\n")})
	if err := run(p, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "QUIT\r\n" {
		t.Fatalf("target got %q", s)
	}
}

// Port probes another port of the target's host: the target's own port
// may be closed.
func TestPortOverride(t *testing.T) {
	other := startServer(t, writeThenWait("OK"))
	target := closedAddr(t)
	p := mustNew(t, Check{Timeout: 2 * time.Second, Port: other.Port(), Expect: []byte("OK")})
	if err := run(p, target); err != nil {
		t.Fatalf("probe of port %d for target %s: %v", other.Port(), target, err)
	}
	select {
	case <-other.accepted:
	default:
		t.Fatal("the override port saw no connection")
	}
	plain := mustNew(t, Check{Timeout: 2 * time.Second, Expect: []byte("OK")})
	if err := run(plain, target); err == nil {
		t.Fatal("probe of the closed target port passed")
	}
}

// A bad target address is an error naming it, not a panic or a dial.
func TestBadTarget(t *testing.T) {
	p := mustNew(t, Check{Timeout: time.Second})
	err := p.Run(context.Background(), "no-port")
	if err == nil || !strings.Contains(err.Error(), `"no-port"`) {
		t.Fatalf("got %v", err)
	}
}
