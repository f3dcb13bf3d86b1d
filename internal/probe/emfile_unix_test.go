//go:build unix

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// helperEMFILE is the "emfile" helper: it lowers its own RLIMIT_NOFILE,
// uses up its descriptors, probes a listener of its own and prints the
// probe's error and IsLocal of it, one per line.
func helperEMFILE() {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // also sets up the poller's descriptors
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(4)
	}
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(4)
	}
	var files []*os.File
	for range 128 {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(4)
		}
		files = append(files, f)
	}
	p, err := New(Check{Timeout: 2 * time.Second})
	if err != nil {
		os.Exit(4)
	}
	err = p.Run(context.Background(), ln.Addr().String())
	fmt.Printf("%v\n%t\n", err, IsLocal(err))
	_ = files
}
