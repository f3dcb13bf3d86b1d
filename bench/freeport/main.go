// Command freeport prints N distinct TCP ports that are free on 127.0.0.1,
// one per line:
//
//	freeport 12
//
// The ports come from 20000–32767, below Linux's default ephemeral range
// (32768–60999), so that the benchmark's own outgoing connections never
// take a port that a proxy is about to listen on between two rounds.
package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
)

const lowPort, highPort = 20000, 32767

func main() {
	n := 1
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 || v > 1000 {
			fmt.Fprintln(os.Stderr, "usage: freeport [N], 1 <= N <= 1000")
			os.Exit(2)
		}
		n = v
	}
	span := highPort - lowPort
	start := rand.IntN(span)
	found := 0
	for i := 0; i < span && found < n; i++ {
		port := lowPort + (start+i)%span
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = ln.Close()
		fmt.Println(port)
		found++
	}
	if found < n {
		fmt.Fprintf(os.Stderr, "freeport: only %d free ports\n", found)
		os.Exit(1)
	}
}
