package tcpproxy

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestReadOnlyEndpointsAnswerLargeBodies: a POST of 10 MiB to the status
// endpoints gets its 405. The handlers left the body unread, and Go's
// server then closes the connection while the client is still sending:
// the client saw a reset instead of the answer (issue 14, fault 8).
func TestReadOnlyEndpointsAnswerLargeBodies(t *testing.T) {
	be := newBackend(t, "a")
	port := freePort(t)
	adminAddr := loadConfigWithAdmin(t, proxyConfig(app{"name": "api", "ports": []int{port},
		"bind": []string{"127.0.0.1"}, "targets": addrs(be)}))
	adminRequest(t, http.MethodGet, adminAddr, "/tcpproxy/status", "") // the admin API is up
	body := bytes.Repeat([]byte("0123456789abcdef"), (10<<20)/16)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// Whether the reset beats the answer is a race: ask several times.
	for i := 0; i < 20; i++ {
		path := []string{"/tcpproxy/status", "/tcpproxy/"}[i%2]
		resp, err := client.Post("http://"+adminAddr+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s with 10 MiB: %v, want a 405 answer", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s with 10 MiB: %d, want 405", path, resp.StatusCode)
		}
	}
}
