// Command backend is the upstream server of the load benchmark: echo, sink
// and source servers on loopback addresses, cheap enough that the proxy in
// front of them, not the backend, is what gets measured.
//
//	backend -listen 127.0.0.1:9001,127.0.0.1:9002 -mode auto
//
// Modes (-mode applies to every listen address):
//
//	echo    every byte read is written back; EOF is passed on as a half-close
//	sink    reads until EOF, then replies with the byte count (8 bytes, big
//	        endian) and closes
//	source  reads an 8-byte big-endian count N, writes N bytes and closes
//	auto    the first byte chooses: 'S' sink, 'R' source (count follows),
//	        anything else echo (the first byte is echoed too)
//
// The backend runs until SIGINT or SIGTERM.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "", "comma-separated listen addresses (required)")
	mode := flag.String("mode", "auto", "echo, sink, source or auto")
	flag.Parse()

	serve, ok := handlers[*mode]
	if !ok || *listen == "" {
		fmt.Fprintln(os.Stderr, "backend: need -listen and -mode echo|sink|source|auto")
		os.Exit(2)
	}
	var lns []net.Listener
	for _, addr := range strings.Split(*listen, ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			os.Exit(1)
		}
		lns = append(lns, ln)
		go acceptLoop(ln, serve)
	}
	fmt.Printf("backend: %s on %s\n", *mode, *listen)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// acceptLoop serves every connection of ln on its own goroutine until ln is
// closed.
func acceptLoop(ln net.Listener, serve func(*net.TCPConn)) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // EMFILE and the like: back off, do not spin
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			defer c.Close()
			serve(c.(*net.TCPConn))
		}()
	}
}
