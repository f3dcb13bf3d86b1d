package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the times in /proc (100 on Linux).
const clockTicks = 100

// proc is what procstat needs of one /proc/PID/stat.
type proc struct {
	ppid     int
	cpuTicks int64 // utime + stime
}

// procTable holds every process by PID.
type procTable map[int]proc

// scan reads /proc/*/stat. Processes that vanish meanwhile are skipped.
func scan() procTable {
	t := procTable{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: the fields
		// after it start past the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 { // f[0] is field 3 (state)
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		t[pid] = proc{ppid: ppid, cpuTicks: ut + st}
	}
	return t
}

// tree returns root and all its descendants present in t.
func (t procTable) tree(root int) []int {
	if _, ok := t[root]; !ok {
		return nil
	}
	children := map[int][]int{}
	for pid, p := range t {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// machineBusy is the CPU-seconds all CPUs have spent running processes
// since boot: user, nice and system from the "cpu" line of /proc/stat.
// Interrupt and softirq time (much of loopback TCP's receive path) is left
// out, as it is from the per-process times, so that "busy minus the
// benchmark's own processes" is the CPU other processes took.
func machineBusy() float64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text()) // cpu user nice system idle ...
	var busy int64
	for _, i := range []int{1, 2, 3} {
		if i < len(fields) {
			v, _ := strconv.ParseInt(fields[i], 10, 64)
			busy += v
		}
	}
	return float64(busy) / clockTicks
}

// vmRSS is the VmRSS of pid in KiB (0 for a kernel thread or a vanished
// process).
func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// fdCount is the number of open file descriptors of pid.
func fdCount(pid int) int64 {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0
	}
	return int64(len(ents))
}
