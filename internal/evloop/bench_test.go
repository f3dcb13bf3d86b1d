//go:build linux

package evloop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Benchmarks, each comparing the loop with today's goroutine path
// (internal/relay) in the same run. The proxy runs in a child process
// (see child_test.go); clients and targets run here.
//
//	go test -run '^$' -bench . -benchtime 10000x ./internal/evloop/
//	EVLOOP_CENSUS=1 go test -run '^$' -bench 'Proxy/conns' -v ./internal/evloop/  (per-syscall counts, needs perf)
//
// Machine-dependent: compare the modes side by side, not with other runs.

// modes are the proxies compared: HAProxy too, when it is installed.
var modes = func() []string {
	if _, err := exec.LookPath("haproxy"); err == nil {
		return []string{"relay", "loop", "haproxy"}
	}
	return []string{"relay", "loop"}
}()

// BenchmarkProxy: the proxy's CPU time per unit of work, in its own
// process.
func BenchmarkProxy(b *testing.B) {
	// loop-untimed: the loop with no idle or half-close timeout, so that
	// conns and rr32 show what the timer wheel costs.
	timed := append(modes, "loop-untimed")
	b.Run("conns", func(b *testing.B) {
		for _, mode := range timed {
			b.Run(mode, benchConns)
		}
	})
	b.Run("rr32", func(b *testing.B) {
		for _, mode := range timed {
			b.Run(mode, benchRR)
		}
	})
	for _, dir := range []string{"up", "down"} {
		b.Run("bulk-"+dir, func(b *testing.B) {
			for _, mode := range modes {
				b.Run(mode, func(b *testing.B) { benchBulk(b, dir) })
			}
		})
	}
	b.Run("idle", func(b *testing.B) {
		for _, mode := range modes {
			b.Run(mode, benchIdle)
		}
	})
}

// modeOf returns the proxy of a sub-benchmark from its name.
func modeOf(b *testing.B) string {
	return b.Name()[strings.LastIndexByte(b.Name(), '/')+1:]
}

// benchConns: 16 workers each dial, echo 64 bytes and close, b.N times in
// all (bench/run.sh's conns/s scenario).
func benchConns(b *testing.B) {
	p := startProxy(b, modeOf(b), serve(b, echoHandler))
	connLoad(b, p.addr, 200, 16) // warm up
	p.measure(b)
	user0, sys0 := p.cpuSplit(b)
	sw0 := p.switches(b)
	start := time.Now()
	b.ResetTimer()
	connLoad(b, p.addr, b.N, 16)
	b.StopTimer()
	elapsed := time.Since(start)
	user, sys := p.cpuSplit(b)
	user, sys = user-user0, sys-sys0
	b.ReportMetric((user+sys).Seconds()/float64(b.N)*1e4, "proxy-CPU-s/10k-conns")
	b.ReportMetric(user.Seconds()/float64(b.N)*1e4, "user-s/10k")
	b.ReportMetric(float64(p.switches(b)-sw0)/float64(b.N), "ctxsw/conn")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "conns/s")
	p.report(b, b.N, "conn")
}

func connLoad(b *testing.B, addr string, n, workers int) {
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, got := make([]byte, 64), make([]byte, 64)
			for left.Add(-1) >= 0 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				c.SetDeadline(time.Now().Add(30 * time.Second))
				c.Write(msg)
				_, err = io.ReadFull(c, got)
				c.Close()
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// benchRR: 32 connections do 64-byte requests and responses, b.N in all.
func benchRR(b *testing.B) {
	p := startProxy(b, modeOf(b), serve(b, echoHandler))
	const conns = 32
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Minute))
		cs[i] = c
	}
	rr := func(n int) []time.Duration {
		var left atomic.Int64
		left.Store(int64(n))
		lat := make([][]time.Duration, conns)
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg, got := make([]byte, 64), make([]byte, 64)
				for left.Add(-1) >= 0 {
					t0 := time.Now()
					c.Write(msg)
					if _, err := io.ReadFull(c, got); err != nil {
						b.Error(err)
						return
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		return slices.Concat(lat...)
	}
	rr(1000)
	p.measure(b)
	cpu0, start := p.cpu(b), time.Now()
	b.ResetTimer()
	lat := rr(b.N)
	b.StopTimer()
	elapsed, cpu := time.Since(start), p.cpu(b)-cpu0
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "proxy-CPU-µs/req")
	p.report(b, b.N, "req")
}

// benchBulk: one connection moves b.N MiB one way.
func benchBulk(b *testing.B, dir string) {
	p := startProxy(b, modeOf(b), serve(b, bulkHandler))
	const mib = 1 << 20
	b.SetBytes(mib)
	bulk(b, p.addr, dir, 64*mib) // warm up
	p.measure(b)
	cpu0 := p.cpu(b)
	b.ResetTimer()
	bulk(b, p.addr, dir, int64(b.N)*mib)
	b.StopTimer()
	cpu := p.cpu(b) - cpu0
	b.ReportMetric(cpu.Seconds()/(float64(b.N)/1024), "proxy-CPU-s/GiB")
	p.report(b, b.N, "MiB")
}

// bulk sends n bytes through the proxy to the bulk target (up), or has it
// send them (down), and checks the count that arrived.
func bulk(b *testing.B, addr, dir string, n int64) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	var hdr [9]byte
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	hdr[0] = dir[0]
	c.Write(hdr[:])
	var got int64
	if dir == "up" {
		buf := make([]byte, 1<<20)
		for sent := int64(0); sent < n; sent += int64(len(buf)) {
			if _, err := c.Write(buf[:min(int64(len(buf)), n-sent)]); err != nil {
				b.Fatal(err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		var count [8]byte
		if _, err := io.ReadFull(c, count[:]); err != nil {
			b.Fatal(err)
		}
		got = int64(binary.BigEndian.Uint64(count[:]))
	} else {
		got, err = io.Copy(io.Discard, c)
		if err != nil {
			b.Fatal(err)
		}
	}
	if got != n {
		b.Fatalf("%s: %d bytes arrived, want %d", dir, got, n)
	}
}

// benchIdle: the proxy's memory and descriptors per idle connection, with
// 5,000 connections open (EVLOOP_IDLE changes the number).
func benchIdle(b *testing.B) {
	k := 5000
	if v, err := strconv.Atoi(os.Getenv("EVLOOP_IDLE")); err == nil {
		k = v
	}
	p := startProxy(b, modeOf(b), serve(b, echoHandler))
	connLoad(b, p.addr, 200, 16) // warm up
	var rss, fds float64
	for range b.N {
		rss0, fds0 := p.rss(b), p.fds(b)
		deadline := time.Now().Add(time.Minute)
		conns := make([]net.Conn, 0, k)
		one := make([]byte, 1)
		for i := range k {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			c.SetDeadline(deadline)
			c.Write(one) // through the proxy both ways: fully set up
			if _, err := io.ReadFull(c, one); err != nil {
				b.Fatalf("connection %d: %v", i, err)
			}
		}
		rss += float64(p.settledRSS(b)-rss0) / float64(k) / 1024
		fds += float64(p.fds(b)-fds0) / float64(k)
		for _, c := range conns {
			c.Close()
		}
		// The next round (or benchmark) starts from an empty proxy.
		for p.fds(b) > fds0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.ReportMetric(rss/float64(b.N), "KiB-RSS/conn")
	b.ReportMetric(fds/float64(b.N), "fds/conn")
}

// serve runs a target with handler on a loopback port.
func serve(b *testing.B, handler func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil { // out of descriptors: wait, as net/http does
				time.Sleep(10 * time.Millisecond)
				continue
			}
			go func() {
				defer c.Close()
				handler(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoHandler copies through a buffer: io.Copy between two TCP sockets
// would splice with a pipe (two more descriptors) per connection.
func echoHandler(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// bulkHandler reads a 9-byte header: 'u' and a count (the client sends,
// the handler counts what arrives and says it) or 'd' and a count (the
// handler sends it).
func bulkHandler(c net.Conn) {
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	n := int64(binary.BigEndian.Uint64(hdr[1:]))
	if hdr[0] == 'u' {
		got, _ := io.Copy(io.Discard, c)
		var count [8]byte
		binary.BigEndian.PutUint64(count[:], uint64(got))
		c.Write(count[:])
		return
	}
	buf := make([]byte, 1<<20)
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := c.Write(buf[:min(int64(len(buf)), n-sent)]); err != nil {
			return
		}
	}
}

// census counts the proxy's system calls by name, when EVLOOP_CENSUS is
// set and perf is installed: perf stat runs the child from its start
// (attaching later would miss the threads Go starts afterwards), with
// counting switched on only around the measured work. Tracing slows
// system calls: the CPU figures of a census run are not comparable.
type census struct {
	out                string   // perf's output file
	ctl, ack           *os.File // ours: perf's control and acknowledgement
	childCtl, childAck *os.File // perf's ends
	on                 bool
}

func newCensus(b *testing.B) *census {
	if os.Getenv("EVLOOP_CENSUS") == "" {
		return nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		b.Log("no perf: no system call census")
		return nil
	}
	cs := &census{out: b.TempDir() + "/perf.csv"}
	var err error
	if cs.childCtl, cs.ctl, err = os.Pipe(); err != nil {
		b.Fatal(err)
	}
	if cs.ack, cs.childAck, err = os.Pipe(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, f := range []*os.File{cs.ctl, cs.ack, cs.childCtl, cs.childAck} {
			f.Close()
		}
	})
	return cs
}

// censusCalls are the system calls counted by name (all of them make
// perf slow to start and stop); raw_syscalls counts every one.
var censusCalls = []string{"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg",
	"sendmsg", "splice", "accept", "accept4", "connect", "socket", "close", "shutdown", "setsockopt",
	"getsockopt", "getsockname", "getpeername", "epoll_wait", "epoll_pwait", "epoll_ctl", "fcntl",
	"ioctl", "futex", "nanosleep", "clock_nanosleep", "sched_yield", "clock_gettime", "gettimeofday",
	"mmap", "munmap", "madvise", "mprotect", "rt_sigreturn", "tgkill", "getpid", "brk"}

// wrap is the perf command line to put in front of the child's: the
// control descriptors are 3 and 4 (childFiles).
func (cs *census) wrap() []string {
	events := "raw_syscalls:sys_enter"
	for _, c := range censusCalls {
		events += ",syscalls:sys_enter_" + c
	}
	return []string{"perf", "stat", "-x,", "-o", cs.out, "-D", "-1", "--control", "fd:3,4", "-e", events, "--"}
}

func (cs *census) childFiles() []*os.File { return []*os.File{cs.childCtl, cs.childAck} }

// started closes perf's ends here, once perf has them.
func (cs *census) started() {
	cs.childCtl.Close()
	cs.childAck.Close()
}

// command sends perf a command and waits for its acknowledgement.
func (cs *census) command(b *testing.B, cmd string) {
	if _, err := cs.ctl.WriteString(cmd + "\n"); err != nil {
		b.Fatalf("perf control: %v", err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(cs.ack, ack); err != nil {
		b.Fatalf("perf acknowledgement: %v", err)
	}
}

// measure switches counting on, for the work that follows.
func (p *proxyProcess) measure(b *testing.B) {
	if p.census != nil && !p.census.on {
		p.census.on = true
		p.census.command(b, "enable")
	}
}

// report switches counting off, stops the proxy and reports its system
// calls per unit of work (n units).
func (p *proxyProcess) report(b *testing.B, n int, unit string) {
	cs := p.census
	if cs == nil {
		return
	}
	cs.command(b, "disable")
	p.stop()
	data, err := os.ReadFile(cs.out)
	if err != nil {
		b.Fatal(err)
	}
	type row struct {
		name  string
		count float64
	}
	var rows []row
	var total float64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || v == 0 {
			continue
		}
		if f[2] == "raw_syscalls:sys_enter" {
			total = v / float64(n)
			continue
		}
		rows = append(rows, row{strings.TrimPrefix(f[2], "syscalls:sys_enter_"), v / float64(n)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].count > rows[j].count })
	var sb strings.Builder
	for _, r := range rows {
		if r.count >= 0.01 {
			fmt.Fprintf(&sb, " %s %.2f", r.name, r.count)
		}
	}
	b.ReportMetric(total, "syscalls/"+unit)
	b.Logf("system calls per %s: %.1f:%s", unit, total, sb.String())
}

// inProcess are the proxies BenchmarkConnInProcess runs in this process.
var inProcess = map[string]func(target string) (addr string, stop func(), err error){
	"relay": serveRelay,
	"loop":  func(target string) (string, func(), error) { return serveLoop(target, childTimeouts) },
}

// BenchmarkConnInProcess: a connection (dial, 64-byte echo, close) with
// proxy, clients and target in this process, for allocations per
// connection; direct is the same without a proxy.
func BenchmarkConnInProcess(b *testing.B) {
	target := serve(b, echoHandler)
	for _, mode := range []string{"direct", "relay", "loop"} {
		b.Run(mode, func(b *testing.B) {
			addr := target
			if serve := inProcess[mode]; serve != nil {
				a, stop, err := serve(target)
				if err != nil {
					b.Fatal(err)
				}
				defer stop()
				addr = a
			}
			connLoad(b, addr, 200, 16)
			b.ReportAllocs()
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ResetTimer()
			connLoad(b, addr, b.N, 16)
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
