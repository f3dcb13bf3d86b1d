package tcpproxy

// Listener modes: how an app's ports are listened on.
const (
	// listenerSockets: one listening socket per bind address and port.
	listenerSockets = "sockets"
	// listenerSkLookup: one listening socket per bind address serves all
	// of the app's ports, steered by a BPF sk_lookup program.
	listenerSkLookup = "sk_lookup"
	// listenerAuto: sk_lookup where it is available, else sockets.
	listenerAuto = "auto"
)

// Listening is how an app listens on its ports. It belongs to the app,
// not to Upstreams: a handler in a layer4 route of the user's own does
// not listen.
type Listening struct {
	// Listener is the listener mode: `sockets` (one listening socket per
	// bind address and port), `sk_lookup` (one socket per bind address
	// serves all the app's ports, steered by a BPF sk_lookup program:
	// Linux ≥ 5.9 with CAP_BPF and CAP_NET_ADMIN; Start fails when it is
	// unavailable) or `auto` (sk_lookup when available, else sockets with
	// one warning). Nothing is probed before Start, so `caddy validate`
	// and `caddy adapt` work unprivileged. Default: sockets.
	Listener string `json:"listener,omitempty"`
}

func (l *Listening) validate(errorf func(field, format string, args ...any) error) error {
	switch l.Listener {
	case "", listenerSockets, listenerSkLookup, listenerAuto:
		return nil
	}
	return errorf("listener", "unknown mode %q: want %q, %q or %q",
		l.Listener, listenerSockets, listenerSkLookup, listenerAuto)
}

// withDefaults fills the unset listener mode.
func (l Listening) withDefaults() Listening {
	if l.Listener == "" {
		l.Listener = listenerSockets
	}
	return l
}

// steered reports whether the app's layer4 server listens through one
// listener per bind address (sk_lookup and auto), whose sockets Start
// chooses, rather than on one address per port.
func (l Listening) steered() bool {
	m := l.withDefaults().Listener
	return m == listenerSkLookup || m == listenerAuto
}
