package main

import (
	"flag"
	"fmt"
	"time"
)

// runProbe waits until every address answers one echo, trying every 50 ms
// for at most -timeout. The benchmark uses it to know a proxy is ready.
func runProbe(fs *flag.FlagSet, args []string) error {
	addrs := addrFlag(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := parse(fs, args, addrs); err != nil {
		return err
	}
	msg := echoMsg(64)
	buf := make([]byte, len(msg))
	end := time.Now().Add(*timeout)
	for _, addr := range *addrs {
		for {
			c, err := dialExchange(addr, msg, buf)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(end) {
				return fmt.Errorf("%s not ready after %s: %w", addr, *timeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}
