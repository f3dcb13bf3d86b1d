package main

import (
	"flag"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// runRR measures request/response latency: -conns persistent connections
// each send -size bytes and wait for the echo, back to back, for -dur.
func runRR(fs *flag.FlagSet, args []string) error {
	addrs := addrFlag(fs)
	conns := fs.Int("conns", 32, "persistent connections")
	dur := fs.Duration("dur", 7*time.Second, "how long to run")
	size := fs.Int("size", 64, "bytes per request (and response)")
	if err := parse(fs, args, addrs); err != nil {
		return err
	}
	msg := echoMsg(*size)
	cs := make([]net.Conn, 0, *conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	buf := make([]byte, len(msg))
	for i := 0; i < *conns; i++ {
		c, err := dialExchange((*addrs)[i%len(*addrs)], msg, buf)
		if err != nil {
			return fmt.Errorf("opening connection %d: %w", i, err)
		}
		cs = append(cs, c)
	}

	var errs errCounts
	lat := make([][]uint32, len(cs)) // µs, one slice per connection
	start := time.Now()
	end := start.Add(*dur)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[i] = rrLoop(c, msg, end, &errs)
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()

	var all []uint32
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no request completed (%s)", &errs)
	}
	slices.Sort(all)
	fmt.Printf("reqs=%d secs=%.3f reqps=%.1f p50us=%d p99us=%d %s\n", len(all), secs,
		float64(len(all))/secs, pct(all, 0.50), pct(all, 0.99), &errs)
	return nil
}

// rrLoop does exchanges on c until end or an error and returns their
// latencies in µs.
func rrLoop(c net.Conn, msg []byte, end time.Time, errs *errCounts) []uint32 {
	buf := make([]byte, len(msg))
	lat := make([]uint32, 0, 1<<16)
	_ = c.SetDeadline(end.Add(connTimeout))
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			return lat
		}
		if err := exchange(c, msg, buf); err != nil {
			errs.add(err)
			return lat
		}
		lat = append(lat, uint32(time.Since(t0).Microseconds()))
	}
}

// pct returns the p-quantile of sorted values.
func pct(sorted []uint32, p float64) uint32 {
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}
