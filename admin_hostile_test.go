package tcpproxy

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestEndpointsAnswerLargeBodies: a POST of 10 MiB to the plugin's admin
// endpoints gets its answer (405 from the read-only ones, 400 from
// /tcpproxy/targets). The handlers left the body (or all but 64 KiB of
// it) unread, and Go's server then closes the connection while the
// client is still sending: the client saw a reset instead of the answer
// (issue 14, fault 8).
func TestEndpointsAnswerLargeBodies(t *testing.T) {
	be := newBackend(t, "a")
	port := freePort(t)
	adminAddr := loadConfigWithAdmin(t, proxyConfig(app{"name": "api", "ports": []int{port},
		"bind": []string{"127.0.0.1"}, "targets": addrs(be)}))
	adminRequest(t, http.MethodGet, adminAddr, "/tcpproxy/status", "") // the admin API is up
	body := bytes.Repeat([]byte("0123456789abcdef"), (10<<20)/16)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// Whether the reset beats the answer is a race: ask several times.
	paths := []string{"/tcpproxy/status", "/tcpproxy/", "/tcpproxy/targets"}
	for i := 0; i < 21; i++ {
		path := paths[i%len(paths)]
		want := http.StatusMethodNotAllowed
		if path == "/tcpproxy/targets" {
			want = http.StatusBadRequest // reads 64 KiB of it, and says so
		}
		resp, err := client.Post("http://"+adminAddr+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s with 10 MiB: %v, want a %d answer", path, err, want)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s with 10 MiB: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
