package probe

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const redisServer = "/usr/bin/redis-server"

// startRedis runs a real redis-server on a free loopback port, a replica
// of primary when primary is not "", and returns its address once it
// answers PING. The test's cleanup kills it by PID.
func startRedis(t *testing.T, primary string) string {
	t.Helper()
	if _, err := os.Stat(redisServer); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and %s is missing: %v", redisServer, err)
		}
		t.Skipf("%s is missing (%v): install redis-server to run this test", redisServer, err)
	}
	var lastErr error
	for range 3 { // a free port can be taken between picking and binding
		addr := closedAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--protected-mode", "no", "--loglevel", "warning"}
		if primary != "" {
			host, pport, _ := net.SplitHostPort(primary)
			args = append(args, "--replicaof", host, pport)
		}
		cmd := exec.Command(redisServer, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case lastErr = <-exited:
				lastErr = fmt.Errorf("redis-server on port %s exited: %v", port, lastErr)
			default:
				if reply, err := redisCommand(addr, "PING"); err == nil && reply == "+PONG" {
					return addr
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
		if lastErr == nil {
			t.Fatalf("redis-server on port %s does not answer PING", port)
		}
	}
	t.Fatal(lastErr)
	return ""
}

// redisCommand sends one inline command and returns the first reply line.
func redisCommand(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// A primary passes "info replication" / "role:master", its replica fails
// saying what it answered; after a failover the results flip.
func TestRedisRole(t *testing.T) {
	primary := startRedis(t, "")
	replica := startRedis(t, primary)
	const timeout = 500 * time.Millisecond
	p := mustNew(t, Check{Timeout: timeout, Send: []byte("info replication\r\n"), Expect: []byte("role:master")})

	if err := run(p, primary); err != nil {
		t.Fatalf("primary: %v", err)
	}
	err := run(p, replica)
	// The replica keeps the connection open after its answer: the probe
	// waits for the timeout, then quotes the start of the answer.
	wantPrefix := `no "role:master" within 500ms, got "$`
	if err == nil || !strings.HasPrefix(err.Error(), wantPrefix) ||
		!strings.Contains(err.Error(), `\r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\n`) || !strings.HasSuffix(err.Error(), `"…`) {
		t.Fatalf("replica: %v", err)
	}
	if n := len(err.Error()) - len(`no "role:master" within 500ms, got `) - len(`…`); n > 2+64*2 {
		t.Errorf("quoted answer is %d characters: not cut to 64 bytes", n)
	}

	_, pport, _ := net.SplitHostPort(replica)
	for addr, cmd := range map[string]string{replica: "REPLICAOF NO ONE", primary: "REPLICAOF 127.0.0.1 " + pport} {
		if reply, err := redisCommand(addr, cmd); err != nil || reply != "+OK" {
			t.Fatalf("%s on %s: %q %v", cmd, addr, reply, err)
		}
	}
	eventually(t, "the old replica to pass and the old primary to fail", func() bool {
		return run(p, replica) == nil && run(p, primary) != nil
	})
	err = run(p, primary)
	if err == nil || !strings.Contains(err.Error(), `\r\nrole:slave\r\nmaster_host:127.0.0.1\r\n`) {
		t.Fatalf("old primary: %v", err)
	}
}
