package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// redisServer is a redis-server process on a free loopback port, with no
// persistence, killed by PID when the test ends.
type redisServer struct {
	port int
	cmd  *exec.Cmd
	log  string
}

func startRedis(t *testing.T, bin string) *redisServer {
	t.Helper()
	dir := t.TempDir()
	r := &redisServer{port: freePort(t), log: filepath.Join(dir, "redis.log")}
	logFile, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	orphanProof(r.cmd)
	if err := r.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill() // by PID
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("redis-server :%d log:\n%s", r.port, b)
		}
	})
	if !waitFor(20*time.Second, func() bool { return redisPing(r.port) == nil }) {
		t.Fatalf("redis-server on %d: no PONG: %v", r.port, redisPing(r.port))
	}
	return r
}

// redisPing sends PING in the inline protocol and expects +PONG.
func redisPing(port int) error {
	c, err := net.DialTimeout("tcp", addr(port), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}

// redisStats reads counters of INFO stats through redis-cli.
func redisStats(t *testing.T, cli string, port int) map[string]int64 {
	t.Helper()
	out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "info", "stats").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli info stats on %d: %v: %s", port, err, out)
	}
	stats := map[string]int64{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			stats[k] = n
		}
	}
	return stats
}

// TestRedisBenchmarkAcrossReloads: behaviours 1 and 5 with a real client
// and real servers. redis-benchmark runs through the proxy in front of two
// redis-server instances, with and without keep-alive, while the config is
// reloaded again and again: no error, every request answered, both servers
// used.
func TestRedisBenchmarkAcrossReloads(t *testing.T) {
	bins := map[string]string{}
	for _, name := range []string{"redis-server", "redis-benchmark", "redis-cli"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s not installed (CI installs redis-server and redis-tools): %v", name, err)
		}
		bins[name] = p
	}
	r1 := startRedis(t, bins["redis-server"])
	r2 := startRedis(t, bins["redis-server"])
	ports := freePorts(t, 2)
	targets := []string{addr(r1.port), addr(r2.port)}
	// Two configs with the same targets: one adds a second port, the other
	// removes it and reverses the target order.
	cfg1 := proxyCfg{Apps: []appCfg{app("redis", ports[:1], targets...)}}
	cfg2 := proxyCfg{Apps: []appCfg{app("redis", ports, targets[1], targets[0])}}
	proc := startCaddy(t, cfg1)

	before := map[int]map[string]int64{r1.port: redisStats(t, bins["redis-cli"], r1.port), r2.port: redisStats(t, bins["redis-cli"], r2.port)}
	var totalRequests, totalReloads int64
	for _, run := range []struct {
		keepAlive string
		requests  int
		clients   int
	}{
		{"1", 20000, 20},
		{"0", 2000, 10},
	} {
		var reloads atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var reloadErr error
		wg.Add(1)
		go func() { // reload until the benchmark ends, bounded
			defer wg.Done()
			for i := 0; i < 500; i++ {
				select { // paced, so that reloads span the whole run
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				cfg := cfg2 // alternate across both runs: never a no-op reload
				if n := reloads.Load() + totalReloads; n%2 == 1 {
					cfg = cfg1
				}
				if err := proc.load(cfg); err != nil {
					reloadErr = err
					return
				}
				reloads.Add(1)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		start := time.Now()
		cmd := exec.CommandContext(ctx, bins["redis-benchmark"], "-h", "127.0.0.1", "-p", strconv.Itoa(ports[0]),
			"-n", strconv.Itoa(run.requests), "-c", strconv.Itoa(run.clients), "-k", run.keepAlive,
			"-t", "set,get,ping", "-q")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		elapsed := time.Since(start)
		cancel()
		close(stop)
		wg.Wait()
		if reloadErr != nil {
			t.Fatalf("reload during redis-benchmark -k %s: %v", run.keepAlive, reloadErr)
		}
		// -q prints "\r"-separated progress, then one "TEST: N requests
		// per second" line per test; any error goes to stderr (and a
		// lost connection ends the run with status 1).
		var results []string
		tests := 0
		for _, line := range strings.FieldsFunc(stdout.String(), func(r rune) bool { return r == '\n' || r == '\r' }) {
			if strings.Contains(line, "requests per second") {
				results = append(results, strings.TrimSpace(line))
				tests++
			}
		}
		output := stdout.String() + stderr.String()
		t.Logf("redis-benchmark -k %s -n %d -c %d: %s across %d reloads: %s",
			run.keepAlive, run.requests, run.clients, elapsed.Round(time.Millisecond), reloads.Load(), strings.Join(results, "; "))
		if err != nil {
			t.Errorf("redis-benchmark -k %s: %v\n%s", run.keepAlive, err, output)
		}
		if strings.Contains(strings.ToLower(output), "error") {
			t.Errorf("redis-benchmark -k %s reported errors:\n%s", run.keepAlive, output)
		}
		if tests != 4 { // SET, GET, PING_INLINE, PING_MBULK
			t.Errorf("redis-benchmark -k %s: %d result lines, want 4:\n%s", run.keepAlive, tests, output)
		}
		if reloads.Load() < 5 {
			t.Errorf("only %d reloads during redis-benchmark -k %s", reloads.Load(), run.keepAlive)
		}
		totalRequests += int64(4 * run.requests)
		totalReloads += reloads.Load()
	}

	var commands, conns int64
	for _, r := range []*redisServer{r1, r2} {
		after := redisStats(t, bins["redis-cli"], r.port)
		dConns := after["total_connections_received"] - before[r.port]["total_connections_received"]
		dCmds := after["total_commands_processed"] - before[r.port]["total_commands_processed"]
		t.Logf("redis-server :%d: %d connections received, %d commands processed", r.port, dConns, dCmds)
		if dCmds == 0 {
			t.Errorf("redis-server :%d processed no command through the proxy", r.port)
		}
		commands += dCmds
		conns += dConns
	}
	// The INFO calls themselves are direct, not counted here; every
	// benchmark request is one command on one of the two servers.
	if commands < totalRequests {
		t.Errorf("the servers processed %d commands, fewer than the %d requests", commands, totalRequests)
	}
	t.Logf("%d requests across %d reloads; %d commands and %d connections on the two servers; admin requests dropped by Caddy's admin server and sent again: %d",
		totalRequests, totalReloads, commands, conns, proc.adminRetries.Load())
}
