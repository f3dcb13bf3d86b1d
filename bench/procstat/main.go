// Command procstat reads what the load benchmark measures from /proc, for
// a process and all its descendants (its "tree"):
//
//	procstat cpu PID...   "BUSY CPU1 CPU2 ...": CPU-seconds all processes
//	                      of the machine have used since boot (user+nice+
//	                      system from /proc/stat), then utime+stime of
//	                      each PID's tree, in seconds
//	procstat mem PID      "RSS FDS": VmRSS of the tree in KiB and its
//	                      open file descriptors
//
// A PID that does not exist counts as 0. The benchmark takes a reading
// before and after each run and works with the differences.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 3 || (os.Args[1] != "cpu" && os.Args[1] != "mem") {
		fmt.Fprintln(os.Stderr, "usage: procstat cpu PID... | procstat mem PID")
		os.Exit(2)
	}
	var pids []int
	for _, a := range os.Args[2:] {
		p, err := strconv.Atoi(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "procstat: bad pid", a)
			os.Exit(2)
		}
		pids = append(pids, p)
	}
	procs := scan()
	switch os.Args[1] {
	case "cpu":
		fmt.Printf("%.2f", machineBusy())
		for _, p := range pids {
			var ticks int64
			for _, q := range procs.tree(p) {
				ticks += procs[q].cpuTicks
			}
			fmt.Printf(" %.2f", float64(ticks)/clockTicks)
		}
		fmt.Println()
	case "mem":
		var rss, fds int64
		for _, q := range procs.tree(pids[0]) {
			rss += vmRSS(q)
			fds += fdCount(q)
		}
		fmt.Printf("%d %d\n", rss, fds)
	}
}
