// Command report turns the rows bench/run.sh records ("round system metric
// value", tab-separated) into the benchmark's Markdown table: the median
// over rounds of each figure, with its ratio to the direct connection and
// to HAProxy, then notes on errors and noise and the goals.
//
//	report bench/results/run-YYYYMMDD-HHMMSS.tsv
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// results holds every recorded value by system and metric.
type results map[string]map[string][]float64

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: report RESULTS.tsv")
		os.Exit(2)
	}
	r, err := load(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	printTable(r)
	printBaseline(r)
	printNotes(r)
	printGoals(r)
}

// load reads the rows of path.
func load(path string) (results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := results{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) != 4 {
			continue
		}
		v, err := strconv.ParseFloat(col[3], 64)
		if err != nil {
			continue
		}
		if r[col[1]] == nil {
			r[col[1]] = map[string][]float64{}
		}
		r[col[1]][col[2]] = append(r[col[1]][col[2]], v)
	}
	return r, sc.Err()
}

// median of the values of a system's metric; ok is false when there are
// none.
func (r results) median(sys, metric string) (v float64, ok bool) {
	vs := slices.Clone(r[sys][metric])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

// sum of the values of a system's metric.
func (r results) sum(sys, metric string) float64 {
	var s float64
	for _, v := range r[sys][metric] {
		s += v
	}
	return s
}

// ratio is median(sys)/median(ref), if both exist.
func (r results) ratio(sys, ref, metric string) (float64, bool) {
	a, ok1 := r.median(sys, metric)
	b, ok2 := r.median(ref, metric)
	if !ok1 || !ok2 || b == 0 {
		return 0, false
	}
	return a / b, true
}
