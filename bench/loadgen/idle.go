package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// runIdle opens -conns connections, checks each with one echo, writes
// "opened=N failed=F" to the -ready file and holds the connections until
// SIGUSR1, SIGINT or SIGTERM (or -hold), then closes them.
func runIdle(fs *flag.FlagSet, args []string) error {
	addrs := addrFlag(fs)
	n := fs.Int("conns", 3000, "connections to open and hold")
	par := fs.Int("par", 16, "connections opened in parallel")
	ready := fs.String("ready", "", "file written once all connections are open (required)")
	hold := fs.Duration("hold", 120*time.Second, "longest time to hold them")
	if err := parse(fs, args, addrs); err != nil {
		return err
	}
	if *ready == "" {
		return fmt.Errorf("-ready is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	cs, errs := openAll(*addrs, *n, *par)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	openSecs := time.Since(start).Seconds()
	status := fmt.Sprintf("opened=%d failed=%d open_secs=%.2f %s", len(cs), errs.total(), openSecs, errs)
	if err := writeFileAtomic(*ready, status+"\n"); err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("no connection opened (%s)", errs)
	}

	held := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	fmt.Printf("%s held_secs=%.1f\n", status, time.Since(held).Seconds())
	return nil
}

// openAll opens n connections over addrs, par at a time, each checked with
// one echo; it returns those that worked.
func openAll(addrs []string, n, par int) ([]net.Conn, *errCounts) {
	var mu sync.Mutex
	var errs errCounts
	cs := make([]net.Conn, 0, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	msg := echoMsg(64)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(msg))
			for i := range jobs {
				c, err := dialExchange(addrs[i%len(addrs)], msg, buf)
				if err != nil {
					errs.add(err)
					continue
				}
				mu.Lock()
				cs = append(cs, c)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return cs, &errs
}

// writeFileAtomic writes s to path through a rename, so a reader polling
// for path never sees it half written.
func writeFileAtomic(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
