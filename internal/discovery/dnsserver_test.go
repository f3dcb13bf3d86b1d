package discovery

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Modes of a testServer, for every query or per query type.
const (
	answer   = ""         // answer from the zone
	servfail = "servfail" // SERVFAIL
	refused  = "refused"  // REFUSED
	drop     = "drop"     // no answer at all
	lame     = "lame"     // NOERROR, empty, neither AA nor RA: a lame referral
)

// testServer is a real DNS server on loopback, UDP and TCP on one port,
// answering from a zone the test changes while lookups run. A name absent
// from the zone is NXDOMAIN; a name present without records of the asked
// type is NOERROR with an empty answer. Answers set AA and RA, as a
// recursive resolver's do. UDP answers larger than the client's EDNS(0)
// size are truncated (TC), so large sets need TCP.
type testServer struct {
	addr string

	mu     sync.Mutex
	zone   map[string][]dns.RR // lower-case FQDN → records
	mode   string
	byType map[uint16]string
	packed map[packKey][]byte // answers packed once: keeps the server's
	// own allocations out of the benchmarks' figures

	udpQueries, tcpQueries atomic.Int64
}

func startServer(t testing.TB, ip string) *testServer {
	t.Helper()
	s := &testServer{zone: map[string][]dns.RR{}, byType: map[uint16]string{}, packed: map[packKey][]byte{}}
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", ip+":0"); err != nil {
			t.Fatal(err)
		}
		s.addr = pc.LocalAddr().String()
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatalf("no port free for both UDP and TCP on %s: %v", ip, err)
		}
	}
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

type packKey struct {
	name  string
	qtype uint16
	udp   bool
}

// set replaces the records of name (created if absent) with rrs, written
// in zone file syntax ("db.test. 60 IN A 10.0.0.1"). No rrs: the name
// exists without records.
func (s *testServer) set(t testing.TB, name string, rrs ...string) {
	t.Helper()
	parsed := make([]dns.RR, 0, len(rrs))
	for _, r := range rrs {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("bad test record %q: %v", r, err)
		}
		parsed = append(parsed, rr)
	}
	s.setRRs(name, parsed)
}

func (s *testServer) setRRs(name string, rrs []dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	s.zone[strings.ToLower(dns.Fqdn(name))] = rrs
}

// remove makes name NXDOMAIN.
func (s *testServer) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	delete(s.zone, strings.ToLower(dns.Fqdn(name)))
}

func (s *testServer) setMode(mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	s.mode = mode
}

func (s *testServer) setTypeMode(qtype uint16, mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.packed)
	s.byType[qtype] = mode
}

func (s *testServer) queries() int64 { return s.udpQueries.Load() + s.tcpQueries.Load() }

func (s *testServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	udp := w.LocalAddr().Network() == "udp"
	if udp {
		s.udpQueries.Add(1)
	} else {
		s.tcpQueries.Add(1)
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
	if mode == answer {
		mode = s.byType[q.Qtype]
	}
	key := packKey{strings.ToLower(q.Name), q.Qtype, udp}
	if b, ok := s.packed[key]; ok && mode == answer {
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
	case mode == drop:
		return
	case mode == servfail:
		m.Answer, m.Rcode = nil, dns.RcodeServerFailure
	case mode == refused:
		m.Answer, m.Rcode = nil, dns.RcodeRefused
	case mode == lame:
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
	if mode == answer {
		s.mu.Lock()
		s.packed[key] = b
		s.mu.Unlock()
	}
	_, _ = w.Write(b)
}

// deadServer is an address nothing answers at: UDP and TCP ports that
// were bound and closed, so queries get "connection refused" at once.
func deadServer(t testing.TB, ip string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// blackhole is a server that takes queries and never answers: a UDP
// socket nobody reads and a TCP listener that accepts (counted) and
// stays silent. Queries to it time out.
type blackhole struct {
	addr    string
	tcpConn atomic.Int64
}

func startBlackhole(t testing.TB, ip string) *blackhole {
	t.Helper()
	b := &blackhole{}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
			continue
		}
		b.addr = pc.LocalAddr().String()
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
				b.tcpConn.Add(1)
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
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
