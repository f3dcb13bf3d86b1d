// Package evloop proxies TCP connections on event loops: one goroutine per
// P owns the client's and the target's sockets of many connections in an
// epoll set of its own, with no goroutine, buffer or pipe per connection.
//
//	loops, err := evloop.Acquire() // the process-wide pool; Release when done
//	ln, err := evloop.NewListener(tcpLn) // tcpLn set up with SetListenerOptions
//	for {
//		nc, err := ln.Accept() // a *evloop.Conn
//		if err != nil { ... }
//		h, err := loops.Proxy(nc.(*evloop.Conn), session, evloop.Timeouts{Idle: time.Hour})
//		if err != nil { ... } // nc is still yours: proxy it another way
//		_ = h // h.Close(evloop.Admin) ends it from any goroutine
//	}
//
// The Session chooses the targets (Next, with failover after DialFailed)
// and hears the outcome (Connected, Done with a Reason and byte counts),
// on the loop: its methods must not block.
//
// What a loop does for each connection: a nonblocking connect (the next
// target on a refusal or a dial timeout), an optional preamble (a PROXY
// header) before the client's bytes, then both directions with half-close
// passed on, urgent data inline and in order, short bursts through one
// buffer per loop and bulk through one pipe per loop (splice), parking
// what a full destination did not take (in a pooled buffer, or in the
// loop's pipe, handed over) and not reading its source meanwhile, and the
// idle, half-close and maximum-duration timeouts on a coarse timer wheel
// that traffic never touches (before ending a connection as idle, the
// loop asks the kernel whether bytes are still leaving for a slow
// reader). CloseWhere and CloseAll end connections from any goroutine.
//
// Why not goroutines: a goroutine per direction costs two stacks, two
// parked netpoller waits and their wake-ups per connection; on these
// machines that made a short proxied connection cost 1.75x HAProxy's CPU,
// and an idle one 15 KiB. Each loop's epoll fd is itself registered with
// Go's netpoller, so a loop with nothing to do parks like any reader and no
// thread blocks in epoll_wait.
//
// The sockets: a Listener accepts connections with accept4; they inherit
// the listening socket's options (SO_OOBINLINE, TCP_NODELAY, keepalive)
// and Go's netpoller never sees them. The loop sets options only on the
// sockets it dials.
//
// Linux only: elsewhere Acquire and NewListener return errors.ErrUnsupported.
package evloop
