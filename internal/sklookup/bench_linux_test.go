//go:build linux

package sklookup

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// Benchmarks run in a private network namespace too (see benchInNetns):
// the parent prints the child's figures and skips itself.

// BenchmarkSetup compares serving N ports with sk_lookup (load and attach
// the program, bind one socket, route N ports) against binding N sockets,
// reporting the descriptors each leaves open. The sockets case stops at
// the process's descriptor limit.
func BenchmarkSetup(b *testing.B) {
	if !benchInNetns(b) {
		return
	}
	for _, n := range []int{1000, 30000, 64000} {
		b.Run(fmt.Sprintf("sk_lookup/ports=%d", n), func(b *testing.B) { benchSteeringSetup(b, n) })
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	most := int(lim.Cur) - 64 // room for the descriptors the process already has
	for _, n := range []int{1000, 30000, 64000} {
		name := fmt.Sprintf("sockets/ports=%d", n)
		if n > most {
			// Binding n sockets needs n descriptors: stop at the limit.
			n, name = most, fmt.Sprintf("sockets/ports=%d(fd-limit-%d)", most, lim.Cur)
		}
		b.Run(name, func(b *testing.B) { benchSocketsSetup(b, n) })
		if n == most {
			break
		}
	}
}

func benchSteeringSetup(b *testing.B, n int) {
	ports := portRange(1025, n)
	base := openFDs(b)
	for b.Loop() {
		s, err := Acquire()
		if err != nil {
			b.Fatal(err)
		}
		ln := listen(b, "tcp4", "127.0.0.1:0")
		sock, err := s.Bind(ln)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Route(lo4, ports, sock); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(openFDs(b)-base), "fds")
		if err := s.Release(); err != nil {
			b.Fatal(err)
		}
		ln.Close()
		b.StartTimer()
	}
}

func benchSocketsSetup(b *testing.B, n int) {
	base := openFDs(b)
	lns := make([]net.Listener, 0, n)
	for b.Loop() {
		for _, p := range portRange(1025, n) {
			lns = append(lns, listen(b, "tcp4", netip.AddrPortFrom(lo4, p).String()))
		}
		b.StopTimer()
		b.ReportMetric(float64(openFDs(b)-base), "fds")
		for _, ln := range lns {
			ln.Close()
		}
		lns = lns[:0]
		b.StartTimer()
	}
}

func openFDs(b *testing.B) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		b.Fatal(err)
	}
	return len(fds)
}

// BenchmarkRoute64000 writes 64,000 routes in one batched update against
// one map update per port.
func BenchmarkRoute64000(b *testing.B) {
	if !benchInNetns(b) {
		return
	}
	s := acquire(b)
	_, sock := served(b, s, "127.0.0.1:0", 'A')
	ports := portRange(1025, 64000)
	unroute := func() {
		b.StopTimer()
		if err := s.Unroute(lo4, ports, sock); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.Run("batched", func(b *testing.B) {
		for b.Loop() {
			if err := s.Route(lo4, ports, sock); err != nil {
				b.Fatal(err)
			}
			unroute()
		}
	})
	b.Run("per-port", func(b *testing.B) {
		e := s.e
		for b.Loop() {
			for _, p := range ports {
				k := routeKey{Family: syscall.AF_INET, Port: uint32(p)}
				copy(k.Addr[:], lo4.AsSlice())
				if err := e.objs.routes.Update(k, sock.Slot(), ebpf.UpdateAny); err != nil {
					b.Fatal(err)
				}
				e.routes.set(target{k.Family, k.Addr}, p, sock.id)
			}
			unroute()
		}
	})
}

// BenchmarkConnect measures connect, accept and close through steering
// and on a plain socket, interleaved in one loop so that both see the same
// machine load; ns/op is for the pair.
func BenchmarkConnect(b *testing.B) {
	if !benchInNetns(b) {
		return
	}
	ports := steer(b, 'S', 20000, 30000).ports
	plainAddr := netip.AddrPortFrom(lo4, tcpPort(serving(b, 'P')))

	var tSteered, tPlain time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		connectOnce(b, netip.AddrPortFrom(lo4, ports[i%len(ports)]))
		t1 := time.Now()
		connectOnce(b, plainAddr)
		tSteered += t1.Sub(t0)
		tPlain += time.Since(t1)
		i++
	}
	b.ReportMetric(float64(tSteered.Nanoseconds())/float64(i), "steered-ns/conn")
	b.ReportMetric(float64(tPlain.Nanoseconds())/float64(i), "plain-ns/conn")
	b.ReportMetric(float64(tSteered)/float64(tPlain), "steered/plain")
}

// connectOnce connects, waits for the server's answer and close, and
// closes.
func connectOnce(b *testing.B, addr netip.AddrPort) {
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		b.Fatal(err)
	}
	c.Close()
}
