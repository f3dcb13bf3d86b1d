package discovery

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// udpSize is the largest UDP answer read: the size Go's resolver announces
// in EDNS(0) and reads itself.
const udpSize = 1232

// DNS header bits and response codes used here (RFC 1035 4.1.1).
const (
	rcodeSuccess  = 0
	rcodeServFail = 2
	rcodeRefused  = 5
	headerLen     = 12
)

// exchangeConn is what Go's resolver gets from Dial: the query it writes
// is sent to the configured servers in order until one answers, and the
// answer is what it reads. Doing the exchange here, rather than handing Go
// a socket, is what makes failover across our servers, the per-server
// timeout and the NOERROR bookkeeping possible with Go's resolver.
type exchangeConn struct {
	ctx      context.Context
	network  string
	servers  []string
	timeout  time.Duration
	state    *lookupState // nil when the lookup did not come through Lookup
	deadline time.Time

	query []byte // the DNS message Go wrote, without TCP's length prefix
	resp  []byte // what Go reads: the message (UDP) or length + message (TCP)
	done  bool   // the exchange has run
	err   error
	off   int
}

// packetConn is an exchangeConn Go treats as a datagram conn.
type packetConn struct{ *exchangeConn }

func (c packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.Read(b)
	return n, c.RemoteAddr(), err
}

func (c packetConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.Write(b) }

func (c *exchangeConn) tcp() bool { return strings.HasPrefix(c.network, "tcp") }

func (c *exchangeConn) Write(b []byte) (int, error) {
	if c.query != nil {
		return 0, errors.New("discovery: one query per DNS conn")
	}
	q := b
	if c.tcp() {
		if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
			return 0, errors.New("discovery: DNS over TCP query is not one length-prefixed message")
		}
		q = b[2:]
	}
	if len(q) < headerLen {
		return 0, errors.New("discovery: DNS query shorter than a header")
	}
	c.query = append([]byte(nil), q...)
	return len(b), nil
}

func (c *exchangeConn) Read(b []byte) (int, error) {
	if !c.done {
		c.done = true
		c.resp, c.err = c.exchange()
	}
	if c.err != nil {
		return 0, c.err
	}
	if !c.tcp() {
		if c.off > 0 {
			// Go refused the answer and waits for another: none comes.
			return 0, &net.OpError{Op: "read", Net: c.network, Err: os.ErrDeadlineExceeded}
		}
		c.off = len(c.resp)
		return copy(b, c.resp), nil
	}
	if c.off >= len(c.resp) {
		return 0, io.EOF
	}
	n := copy(b, c.resp[c.off:])
	c.off += n
	return n, nil
}

// exchange asks the servers in order and returns the first usable answer;
// with none, the last answer passed on (Go turns it into its error), or an
// error naming every server and why it failed.
func (c *exchangeConn) exchange() ([]byte, error) {
	if c.query == nil {
		return nil, errors.New("discovery: DNS conn read before a query was written")
	}
	n := len(c.servers)
	start := 0
	if c.tcp() && c.state != nil {
		if i := int(c.state.tcpFrom.Load()) - 1; i >= 0 && i < n {
			start = i
		}
	}
	var failed []string
	var fallback []byte
	allTimeouts := true
	for k := 0; k < n; k++ {
		i := (start + k) % n
		server := c.servers[i]
		dl := time.Now().Add(c.timeout)
		if !c.deadline.IsZero() && c.deadline.Before(dl) {
			dl = c.deadline
		}
		if c.ctx.Err() != nil || !time.Now().Before(dl) {
			break // out of time: Go's deadline or the lookup's
		}
		resp, err := c.exchangeOne(server, dl)
		if err != nil {
			failed = append(failed, server+" ("+errText(err)+")")
			allTimeouts = allTimeouts && isTimeout(err)
			continue
		}
		msg := resp
		if c.tcp() {
			msg = resp[2:]
		}
		c.noteAnswer(i, msg)
		if passOn(msg) {
			fallback = resp
			continue
		}
		return resp, nil
	}
	if fallback != nil {
		return fallback, nil
	}
	if len(failed) == 0 {
		failed = append(failed, "no time left for "+strings.Join(c.servers, ", "))
	}
	// Not wrapped in a net.OpError: its text would add "read udp" and no
	// address; Go's DNSError takes Timeout and Temporary from this error.
	return nil, &exchangeError{
		msg:     "no answer from " + strings.Join(failed, ", "),
		timeout: allTimeouts,
	}
}

// noteAnswer records in the lookup's state what Lookup needs to know.
func (c *exchangeConn) noteAnswer(i int, msg []byte) {
	st := c.state
	if st == nil {
		return
	}
	st.answeredBy.Store(&c.servers[i])
	if truncated(msg) && !c.tcp() {
		st.tcpFrom.Store(int32(i + 1))
	}
	if usableNoError(msg) {
		st.noError.Store(true)
	}
}

// exchangeOne sends the query to one server and waits for the matching
// answer until dl. Answers that do not match (another ID or question) are
// skipped as Go skips them: they may be forged.
func (c *exchangeConn) exchangeOne(server string, dl time.Time) ([]byte, error) {
	ctx, cancel := context.WithDeadline(c.ctx, dl)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(dl)
	// The lookup's cancellation (its app stopping) ends the wait at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if c.tcp() {
		return c.exchangeStream(conn)
	}
	if _, err := conn.Write(c.query); err != nil {
		return nil, err
	}
	buf := make([]byte, udpSize)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if answers(c.query, buf[:n]) {
			return buf[:n], nil
		}
	}
}

func (c *exchangeConn) exchangeStream(conn net.Conn) ([]byte, error) {
	req := make([]byte, 2+len(c.query))
	binary.BigEndian.PutUint16(req, uint16(len(c.query)))
	copy(req[2:], c.query)
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, 2+int(binary.BigEndian.Uint16(l[:])))
	copy(resp, l[:])
	if _, err := io.ReadFull(conn, resp[2:]); err != nil {
		return nil, err
	}
	if !answers(c.query, resp[2:]) {
		return nil, errors.New("answer does not match the query")
	}
	return resp, nil
}

func (c *exchangeConn) Close() error { return nil }

func (c *exchangeConn) LocalAddr() net.Addr { return dnsAddr{c.network, ""} }

func (c *exchangeConn) RemoteAddr() net.Addr {
	return dnsAddr{c.network, strings.Join(c.servers, ",")}
}

func (c *exchangeConn) SetDeadline(t time.Time) error      { c.deadline = t; return nil }
func (c *exchangeConn) SetReadDeadline(t time.Time) error  { c.deadline = t; return nil }
func (c *exchangeConn) SetWriteDeadline(t time.Time) error { return nil }

type dnsAddr struct{ network, addr string }

func (a dnsAddr) Network() string { return a.network }
func (a dnsAddr) String() string  { return a.addr }

// exchangeError is a net.Error, so Go's resolver sets DNSError.IsTimeout
// from it when every server timed out.
type exchangeError struct {
	msg     string
	timeout bool
}

func (e *exchangeError) Error() string   { return e.msg }
func (e *exchangeError) Timeout() bool   { return e.timeout }
func (e *exchangeError) Temporary() bool { return true }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errText is the reason part of a socket error ("connection refused",
// "i/o timeout") without the addresses the caller already names.
func errText(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
	}
	return err.Error()
}

// answers reports whether resp is a response to query: same ID, the
// response bit, and the same question (names compared without case).
func answers(query, resp []byte) bool {
	if len(resp) < headerLen || resp[0] != query[0] || resp[1] != query[1] || resp[2]&0x80 == 0 {
		return false
	}
	end := questionEnd(query)
	if end < 0 || len(resp) < end {
		return end < 0 // a query we cannot walk: leave the check to Go
	}
	for i := headerLen; i < end; i++ {
		if lower(query[i]) != lower(resp[i]) {
			return false
		}
	}
	return true
}

// questionEnd is the offset after the first question of msg, -1 if msg is
// too short or compressed (Go's queries are neither).
func questionEnd(msg []byte) int {
	i := headerLen
	for i < len(msg) {
		l := int(msg[i])
		if l == 0 {
			i += 1 + 4 // root label, type, class
			if i > len(msg) {
				return -1
			}
			return i
		}
		if l&0xC0 != 0 {
			return -1
		}
		i += 1 + l
	}
	return -1
}

func lower(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func rcode(msg []byte) int      { return int(msg[3] & 0x0F) }
func truncated(msg []byte) bool { return msg[2]&0x02 != 0 }

// passOn reports an answer that sends the query to the next server, as
// Go's resolver and libresolv do across the servers of resolv.conf:
// SERVFAIL, REFUSED and a lame referral. Go would only move on to the next
// server of its own list, which is always this conn again.
func passOn(msg []byte) bool {
	switch rcode(msg) {
	case rcodeServFail, rcodeRefused:
		return true
	case rcodeSuccess:
		return !usableNoError(msg)
	}
	return false
}

// usableNoError reports a NOERROR answer that Go accepts as an answer: Go
// treats one with neither the authoritative nor the recursion-available bit
// and with empty answer and additional sections as a lame referral (a
// failure), so it must not count as proof that the name exists.
func usableNoError(msg []byte) bool {
	if rcode(msg) != rcodeSuccess {
		return false
	}
	aa := msg[2]&0x04 != 0
	ra := msg[3]&0x80 != 0
	an := binary.BigEndian.Uint16(msg[6:])
	ar := binary.BigEndian.Uint16(msg[10:])
	return aa || ra || an > 0 || ar > 0
}
