// Command reloader reloads a running Caddy through its admin API: -n
// times `POST /load`, cycling through the given config files, and prints
// one key=value line: reloads done, failed, admin connections retried and
// the reload latency.
//
//	reloader -admin 127.0.0.1:2019 -configs b.json,a.json -n 1000 -dur 240s
//
// Each POST waits for Caddy to finish the reload. It stops early after
// -dur, so the soak stays bounded in time.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	admin := flag.String("admin", "", "Caddy admin address host:port (required)")
	configs := flag.String("configs", "", "comma-separated JSON config files, posted in turn (required)")
	n := flag.Int("n", 1000, "number of reloads")
	dur := flag.Duration("dur", 240*time.Second, "stop after this long")
	pause := flag.Duration("pause", 0, "pause between two reloads")
	flag.Parse()
	if *admin == "" || *configs == "" {
		fmt.Fprintln(os.Stderr, "usage: reloader -admin host:port -configs a.json,b.json [-n 1000] [-dur 240s]")
		os.Exit(2)
	}
	var bodies [][]byte
	for _, p := range strings.Split(*configs, ",") {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reloader:", err)
			os.Exit(1)
		}
		bodies = append(bodies, b)
	}

	// A new connection per reload: Caddy replaces its admin server on
	// every load, and a kept-alive connection to the old one is reset.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + *admin + "/load"
	var took []time.Duration
	failed, retried := 0, 0
	start := time.Now()
	for i := 0; i < *n && time.Since(start) < *dur; i++ {
		t0 := time.Now()
		err := post(client, url, bodies[i%len(bodies)])
		// Caddy swaps its admin server on every load and the old socket's
		// queue is reset: a connection-level error is retried (an
		// identical config is a no-op if the first try did get through).
		for try := 0; try < 3 && err != nil && !errors.As(err, new(statusError)); try++ {
			retried++
			time.Sleep(20 * time.Millisecond)
			err = post(client, url, bodies[i%len(bodies)])
		}
		if err != nil {
			failed++
			if failed <= 5 {
				fmt.Fprintf(os.Stderr, "reloader: reload %d: %v\n", i+1, err)
			}
		}
		took = append(took, time.Since(t0))
		time.Sleep(*pause)
	}
	slices.Sort(took)
	q := func(p float64) float64 {
		if len(took) == 0 {
			return 0
		}
		return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000
	}
	fmt.Printf("reloads=%d failed=%d admin_retries=%d secs=%.1f p50ms=%.1f p99ms=%.1f maxms=%.1f\n",
		len(took), failed, retried, time.Since(start).Seconds(), q(0.5), q(0.99), q(1))
}

// post sends one config and fails unless Caddy answers 200.
func post(c *http.Client, url string, body []byte) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return statusError(fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(msg)))
	}
	return nil
}

// statusError is a reload Caddy answered and refused: not retried.
type statusError string

func (e statusError) Error() string { return string(e) }
