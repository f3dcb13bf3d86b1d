// Package sklookup steers TCP connections for many ports to one listening
// socket with a BPF sk_lookup program (Linux ≥ 5.9), so an app listening on
// 64,000 ports needs one socket and a few descriptors instead of 64,000.
//
// One program and its two maps serve the whole process: Acquire loads them
// and attaches the program to the current network namespace on first use,
// and the last Release detaches and closes everything. Between the two, a
// listening socket is registered with Bind and given ports with Route:
//
//	if err := sklookup.Available(); err != nil {
//		return err // names what is missing: kernel, CAP_BPF, CAP_NET_ADMIN
//	}
//	s, err := sklookup.Acquire()
//	...
//	defer s.Release()
//	lc := net.ListenConfig{}
//	lc.SetMultipathTCP(false) // a SOCKMAP refuses MPTCP sockets
//	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
//	sock, err := s.Bind(ln.(*net.TCPListener))
//	addr, ports := netip.MustParseAddr("127.0.0.1"), []uint16{5000, 5001, 5002}
//	if l, err := sklookup.ForeignListeners(addr, ports, []uint64{sock.Inode()}); err != nil || len(l) > 0 {
//		... // refuse: routing would steal another socket's port
//	}
//	err = s.Route(addr, ports, sock)
//	// ln.Accept() now returns connections to 127.0.0.1:5000-5002;
//	// their LocalAddr() is the port the client dialled.
//
// A route maps (address, port) to a registration; the address may be the
// unspecified address for all addresses, and an exact address beats the
// wildcard. Routing a port again to another socket moves new connections
// atomically, and Unroute removes only the entries still pointing at the
// registration given, so a reload can route the new config's sockets
// first and unroute the old ones afterwards without refusing a connection.
//
// A route wins over any socket listening on the same port, even one of
// another process: ForeignListeners finds such sockets so the caller can
// refuse before routing. Sockets must be plain TCP listeners, not MPTCP
// (Go ≥ 1.24 listens with MPTCP by default where the kernel allows it).
//
// On systems other than Linux the package compiles, and Available reports
// that sk_lookup is unsupported.
package sklookup
