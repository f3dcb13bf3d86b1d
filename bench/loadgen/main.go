// Command loadgen drives the load benchmark's scenarios against a proxy (or
// directly against the backends) and prints one line of key=value results
// on stdout, then "lg_cpu=S", its own CPU-seconds. It talks to
// bench/backend in -mode auto.
//
//	loadgen bulk  -addr A -dir up|down -bytes 2G
//	loadgen conns -addr A,B,C -workers 16 -dur 7s
//	loadgen rr    -addr A,B,C -conns 32 -dur 7s
//	loadgen idle  -addr A,B,C -conns 3000 -ready FILE -hold 120s
//	loadgen storm -addr A,B,C -workers 4 -streams 4 -dur 300s
//	loadgen probe -addr A,B,C -timeout 10s
//
// idle and storm run until SIGUSR1, SIGINT or SIGTERM (or their time
// bound). Every scenario is bounded in time. The exit status is non-zero
// when a scenario could not do what it measures (a wrong byte count, no
// successful connection), not for counted connection errors.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// scenario is one subcommand: it parses its own flags and runs.
type scenario func(fs *flag.FlagSet, args []string) error

var scenarios = map[string]scenario{
	"bulk":  runBulk,
	"conns": runConns,
	"rr":    runRR,
	"idle":  runIdle,
	"storm": runStorm,
	"probe": runProbe,
}

func main() {
	if len(os.Args) < 2 || scenarios[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: loadgen bulk|conns|rr|idle|storm|probe -addr host:port[,...] [flags]")
		os.Exit(2)
	}
	name := os.Args[1]
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	err := scenarios[name](fs, os.Args[2:])
	fmt.Printf("lg_cpu=%.2f\n", ownCPU())
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %v\n", name, err)
		os.Exit(1)
	}
}

// ownCPU is the CPU-seconds (user+system) loadgen has used, so that the
// benchmark can tell its own load from other processes'.
func ownCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// addrList is the -addr flag: connections rotate over these addresses.
type addrList []string

func (a *addrList) String() string { return strings.Join(*a, ",") }

// Set splits a comma-separated list.
func (a *addrList) Set(s string) error {
	for _, x := range strings.Split(s, ",") {
		if x != "" {
			*a = append(*a, x)
		}
	}
	return nil
}

// addrFlag registers -addr on fs.
func addrFlag(fs *flag.FlagSet) *addrList {
	a := new(addrList)
	fs.Var(a, "addr", "comma-separated host:port list; connections rotate over it (required)")
	return a
}

// parse parses args and checks that -addr was given.
func parse(fs *flag.FlagSet, args []string, addrs *addrList) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(*addrs) == 0 {
		return fmt.Errorf("-addr is required")
	}
	return nil
}
