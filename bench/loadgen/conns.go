package main

import (
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// runConns measures the new-connection rate: -workers workers each dial,
// echo -size bytes and close, in a loop for -dur.
func runConns(fs *flag.FlagSet, args []string) error {
	addrs := addrFlag(fs)
	workers := fs.Int("workers", 16, "concurrent workers")
	dur := fs.Duration("dur", 7*time.Second, "how long to run")
	size := fs.Int("size", 64, "bytes echoed per connection")
	if err := parse(fs, args, addrs); err != nil {
		return err
	}
	var ok, next atomic.Int64
	var errs errCounts
	msg := echoMsg(*size)
	start := time.Now()
	end := start.Add(*dur)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(msg))
			for time.Now().Before(end) {
				addr := (*addrs)[int(next.Add(1))%len(*addrs)]
				c, err := dialExchange(addr, msg, buf)
				if err != nil {
					errs.add(err)
					continue
				}
				_ = c.Close()
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("conns=%d secs=%.3f connps=%.1f %s\n", ok.Load(), secs, float64(ok.Load())/secs, &errs)
	if ok.Load() == 0 {
		return fmt.Errorf("no connection succeeded")
	}
	return nil
}
