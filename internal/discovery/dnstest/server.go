// Package dnstest runs real DNS servers on loopback for tests: UDP and TCP
// on one port, answering from a zone the test changes while lookups run,
// and able to fail on demand (SERVFAIL, REFUSED, silence, lame answers).
// It is for tests only (it imports github.com/miekg/dns, which no
// non-test code of this module links):
//
//	srv := dnstest.Start(t, "127.0.0.1")
//	srv.Set(t, "db.test.", "db.test. 60 IN A 127.0.0.2", "db.test. 60 IN A 127.0.0.3")
//	r := discovery.NewResolver([]string{srv.Addr}, time.Second)
//	...
//	srv.SetMode(dnstest.ServFail) // every answer is SERVFAIL until SetMode(dnstest.Answer)
package dnstest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Modes of a Server, for every query (SetMode) or per query type
// (SetTypeMode).
const (
	Answer   = ""         // answer from the zone
	ServFail = "servfail" // SERVFAIL
	Refused  = "refused"  // REFUSED
	Drop     = "drop"     // no answer at all: the client times out
	Lame     = "lame"     // NOERROR, empty, neither AA nor RA: a lame referral
)

// Server is a real DNS server on loopback, UDP and TCP on one port. A name
// absent from the zone is NXDOMAIN; a name present without records of the
// asked type is NOERROR with an empty answer. Answers set AA and RA, as a
// recursive resolver's do. UDP answers larger than the client's EDNS(0)
// size are truncated (TC), so large sets need TCP.
type Server struct {
	// Addr is the server's "ip:port", the same for UDP and TCP.
	Addr string

	mu     sync.Mutex
	zone   map[string][]dns.RR // lower-case FQDN → records
	mode   string
	byType map[uint16]string
	packed map[packKey][]byte // answers packed once: keeps the server's
	// own allocations out of benchmarks' figures

	// UDPQueries and TCPQueries count the queries received.
	UDPQueries, TCPQueries atomic.Int64
}

// Start runs a server on ip (e.g. "127.0.0.1") at a port free for both UDP
// and TCP, until the test ends.
func Start(t testing.TB, ip string) *Server {
	t.Helper()
	s := &Server{zone: map[string][]dns.RR{}, byType: map[uint16]string{}, packed: map[packKey][]byte{}}
	pc, ln := listenBoth(t, ip)
	s.Addr = pc.LocalAddr().String()
	var started sync.WaitGroup
	var servers []*dns.Server
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		servers = append(servers, srv)
		go func() { _ = srv.ActivateAndServe() }()
	}
	started.Wait()
	t.Cleanup(func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
	})
	return s
}

// listenBoth binds a UDP socket and a TCP listener on ip at one port, free
// for both: a port the kernel picks for UDP may be taken for TCP, so it
// tries again a few times.
func listenBoth(t testing.TB, ip string) (net.PacketConn, net.Listener) {
	t.Helper()
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		if try == 20 {
			t.Fatalf("no port free for both UDP and TCP on %s: %v", ip, err)
		}
	}
}

type packKey struct {
	name  string
	qtype uint16
	udp   bool
}

// Set replaces the records of name (created if absent) with rrs, written
// in zone file syntax ("db.test. 60 IN A 10.0.0.1"). No rrs: the name
// exists without records.
func (s *Server) Set(t testing.TB, name string, rrs ...string) {
	t.Helper()
	parsed := make([]dns.RR, 0, len(rrs))
	for _, r := range rrs {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("bad test record %q: %v", r, err)
		}
		parsed = append(parsed, rr)
	}
	s.SetRRs(name, parsed)
}

// SetRRs is Set with parsed records.
func (s *Server) SetRRs(name string, rrs []dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	s.zone[strings.ToLower(dns.Fqdn(name))] = rrs
}

// Remove makes name NXDOMAIN.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	delete(s.zone, strings.ToLower(dns.Fqdn(name)))
}

// SetMode makes every answer follow mode (Answer: back to the zone).
func (s *Server) SetMode(mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	s.mode = mode
}

// SetTypeMode makes the answers to queries of qtype (dns.TypeA, ...)
// follow mode, while SetMode is Answer.
func (s *Server) SetTypeMode(qtype uint16, mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	s.byType[qtype] = mode
}

// Queries is the number of queries received, UDP and TCP.
func (s *Server) Queries() int64 { return s.UDPQueries.Load() + s.TCPQueries.Load() }

// ServeDNS answers one query; the dns package calls it.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	udp := w.LocalAddr().Network() == "udp"
	if udp {
		s.UDPQueries.Add(1)
	} else {
		s.TCPQueries.Add(1)
	}
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true

	s.mu.Lock()
	mode := s.mode
	if mode == Answer {
		mode = s.byType[q.Qtype]
	}
	key := packKey{strings.ToLower(q.Name), q.Qtype, udp}
	if b, ok := s.packed[key]; ok && mode == Answer {
		s.mu.Unlock()
		b = append([]byte(nil), b...)
		b[0], b[1] = byte(req.Id>>8), byte(req.Id)
		_, _ = w.Write(b)
		return
	}
	rrs, exists := s.zone[strings.ToLower(q.Name)]
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			rr = dns.Copy(rr)
			rr.Header().Name = q.Name
			m.Answer = append(m.Answer, rr)
		}
	}
	s.mu.Unlock()

	switch {
	case mode == Drop:
		return
	case mode == ServFail:
		m.Answer, m.Rcode = nil, dns.RcodeServerFailure
	case mode == Refused:
		m.Answer, m.Rcode = nil, dns.RcodeRefused
	case mode == Lame:
		m.Answer, m.Authoritative, m.RecursionAvailable = nil, false, false
	case !exists:
		m.Rcode = dns.RcodeNameError
	}
	if udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	if mode == Answer {
		s.mu.Lock()
		s.packed[key] = b
		s.mu.Unlock()
	}
	_, _ = w.Write(b)
}

// ManyA returns n A records of name: 10.x.y.z counting up from 10.0.0.0.
func ManyA(name string, n int) []dns.RR {
	rrs := make([]dns.RR, n)
	for i := range n {
		rrs[i] = &dns.A{
			Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)),
		}
	}
	return rrs
}

// Dead returns an address nothing answers at: UDP and TCP ports that were
// bound and closed, so queries get "connection refused" at once.
func Dead(t testing.TB, ip string) string {
	t.Helper()
	pc, ln := listenBoth(t, ip)
	addr := pc.LocalAddr().String()
	pc.Close()
	ln.Close()
	return addr
}

// Blackhole is a server that takes queries and never answers: a UDP
// socket nobody reads and a TCP listener that accepts (counted) and stays
// silent. Queries to it time out.
type Blackhole struct {
	Addr     string
	TCPConns atomic.Int64 // TCP connections accepted
}

// StartBlackhole runs a Blackhole on ip until the test ends.
func StartBlackhole(t testing.TB, ip string) *Blackhole {
	t.Helper()
	b := &Blackhole{}
	pc, ln := listenBoth(t, ip)
	b.Addr = pc.LocalAddr().String()
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.TCPConns.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return b
}
