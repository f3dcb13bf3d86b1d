package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runStorm is the reload soak's load: -workers workers open short
// connections in a loop (dial, echo 64 B, close) and -streams long-lived
// connections echo a verified byte pattern, until SIGUSR1, SIGINT or
// SIGTERM (or -dur). Every failure is counted by kind.
func runStorm(fs *flag.FlagSet, args []string) error {
	addrs := addrFlag(fs)
	workers := fs.Int("workers", 4, "workers opening short connections")
	streams := fs.Int("streams", 4, "long-lived verified streams")
	pause := fs.Duration("pause", 0, "pause between two connections of a worker")
	dur := fs.Duration("dur", 300*time.Second, "longest run")
	ready := fs.String("ready", "", "file written once the streams are open")
	if err := parse(fs, args, addrs); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()

	var st streamStats
	var wg sync.WaitGroup
	for i := 0; i < *streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runStream(ctx, (*addrs)[i%len(*addrs)], i, &st)
		}()
	}
	if *ready != "" {
		if err := writeFileAtomic(*ready, "ok\n"); err != nil {
			return err
		}
	}
	var attempts, ok atomic.Int64
	var errs errCounts
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := echoMsg(64)
			buf := make([]byte, len(msg))
			for ctx.Err() == nil {
				n := attempts.Add(1)
				c, err := dialExchange((*addrs)[int(n)%len(*addrs)], msg, buf)
				if err != nil {
					errs.add(err)
				} else {
					_ = c.Close()
					ok.Add(1)
				}
				if *pause > 0 {
					time.Sleep(*pause)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("attempts=%d ok=%d secs=%.1f %s streams=%d stream_bytes=%d stream_failures=%d\n",
		attempts.Load(), ok.Load(), time.Since(start).Seconds(), &errs,
		*streams, st.bytes.Load(), st.failures.Load())
	if ok.Load() == 0 {
		fmt.Fprintln(os.Stderr, "loadgen storm: no connection succeeded")
	}
	return nil
}
