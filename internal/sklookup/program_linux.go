//go:build linux

package sklookup

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Offsets into struct bpf_sk_lookup (include/uapi/linux/bpf.h), the
// program's context. The kernel lets a program read each field as one
// 4-byte word; local_port is in host byte order, the addresses in network
// byte order (copied as bytes, so byte order never matters here).
const (
	ctxFamily   = 8
	ctxProtocol = 12
	ctxLocalIP4 = 40
	ctxLocalIP6 = 44
	ctxLocalPrt = 60
)

// Stack layout of the program's route key, mirroring routeKey:
// family at fp-24, port at fp-20, the 16 address bytes at fp-16..fp-1.
// The SOCKMAP slot key sits below it at fp-28.
const (
	stackKey  = -24
	stackPort = stackKey + 4
	stackAddr = stackKey + 8
	stackSlot = stackKey - 4
)

const (
	skPass = 1 // SK_PASS: let the kernel's own socket lookup run (or use our assignment)

	// Sizes of the two maps. Routes are allocated on demand
	// (BPF_F_NO_PREALLOC): an empty route map costs its bucket array
	// (4 MiB for this size) and each route about 90 bytes more, where a
	// preallocated map would pin the full size up front. 4 × 65,536
	// routes allow every port on
	// four address/family pairs, e.g. a dual-stack wildcard for all ports
	// while a reload moves them to two other addresses. Slots are one
	// pointer each; a reload briefly needs two per listening socket.
	maxRoutes  = 4 << 16
	maxSockets = 4096
)

// capacity is what Acquire sizes the maps for; tests shrink it to fill them.
var capacity = struct{ routes, sockets uint32 }{maxRoutes, maxSockets}

// objects are the kernel objects the program needs, before it is attached.
type objects struct {
	routes  *ebpf.Map // routeKey → slot (u32)
	sockets *ebpf.Map // slot (u32) → listening socket (SOCKMAP)
	prog    *ebpf.Program
}

// loadObjects creates the two maps and loads the program that reads them.
// Available calls it with tiny maps to learn whether this process may use
// sk_lookup at all.
func loadObjects(routes, sockets uint32) (*objects, error) {
	o := &objects{}
	var err error
	o.routes, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "tcpproxy_routes",
		Type:       ebpf.Hash,
		KeySize:    routeKeySize,
		ValueSize:  4,
		MaxEntries: routes,
		Flags:      unix.BPF_F_NO_PREALLOC,
	})
	if err != nil {
		return nil, explain("creating the route map", err)
	}
	o.sockets, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "tcpproxy_socks",
		Type:       ebpf.SockMap,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: sockets,
	})
	if err != nil {
		o.close()
		return nil, explain("creating the socket map", err)
	}
	o.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "tcpproxy_steer",
		Type:         ebpf.SkLookup,
		AttachType:   ebpf.AttachSkLookup,
		License:      "Apache-2.0", // the helpers used are not GPL-only
		Instructions: program(o.routes.FD(), o.sockets.FD()),
	})
	if err != nil {
		o.close()
		return nil, explain("loading the program", err)
	}
	return o, nil
}

func (o *objects) close() {
	if o.prog != nil {
		o.prog.Close()
	}
	if o.sockets != nil {
		o.sockets.Close()
	}
	if o.routes != nil {
		o.routes.Close()
	}
}

// program returns the sk_lookup program. For a TCP connection request it
// looks up (family, local address, local port) in the route map, then
// (family, zero address, port) for a wildcard binding; a hit names a
// SOCKMAP slot whose socket gets the connection. Anything else (no route,
// an empty slot, a socket that cannot take this family) falls through to
// the kernel's own lookup, so an unrouted port behaves as if we were not
// here. The SOCKMAP lookup takes a socket reference: it is released on
// every path after the lookup succeeds (the verifier insists).
func program(routesFD, socketsFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // r6 = ctx, kept across calls

		asm.LoadMem(asm.R2, asm.R6, ctxProtocol, asm.Word),
		asm.JNE.Imm(asm.R2, unix.IPPROTO_TCP, "pass"),

		asm.LoadMem(asm.R2, asm.R6, ctxFamily, asm.Word),
		asm.StoreMem(asm.RFP, stackKey, asm.R2, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, ctxLocalPrt, asm.Word),
		asm.StoreMem(asm.RFP, stackPort, asm.R3, asm.Word),
		asm.Mov.Imm(asm.R3, 0),
		asm.StoreMem(asm.RFP, stackAddr, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, stackAddr+8, asm.R3, asm.DWord),

		asm.JEq.Imm(asm.R2, unix.AF_INET6, "ipv6"),
		asm.JNE.Imm(asm.R2, unix.AF_INET, "pass"),
		asm.LoadMem(asm.R3, asm.R6, ctxLocalIP4, asm.Word),
		asm.StoreMem(asm.RFP, stackAddr, asm.R3, asm.Word),
		asm.Ja.Label("exact"),

		asm.LoadMem(asm.R3, asm.R6, ctxLocalIP6, asm.Word).WithSymbol("ipv6"),
		asm.StoreMem(asm.RFP, stackAddr, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, ctxLocalIP6+4, asm.Word),
		asm.StoreMem(asm.RFP, stackAddr+4, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, ctxLocalIP6+8, asm.Word),
		asm.StoreMem(asm.RFP, stackAddr+8, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, ctxLocalIP6+12, asm.Word),
		asm.StoreMem(asm.RFP, stackAddr+12, asm.R3, asm.Word),

		// Exact address first, so a binding to one address beats the
		// wildcard on the same port.
		asm.LoadMapPtr(asm.R1, routesFD).WithSymbol("exact"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stackKey),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "found"),

		asm.Mov.Imm(asm.R3, 0),
		asm.StoreMem(asm.RFP, stackAddr, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, stackAddr+8, asm.R3, asm.DWord),
		asm.LoadMapPtr(asm.R1, routesFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stackKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),

		asm.LoadMem(asm.R2, asm.R0, 0, asm.Word).WithSymbol("found"),
		asm.StoreMem(asm.RFP, stackSlot, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, socketsFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stackSlot),
		asm.FnMapLookupElem.Call(), // takes a reference on the socket
		asm.JEq.Imm(asm.R0, 0, "pass"),

		asm.Mov.Reg(asm.R7, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Mov.Imm(asm.R3, 0), // no BPF_SK_LOOKUP_F_REPLACE: an earlier program's choice stands
		asm.FnSkAssign.Call(),
		// A failed assignment (an IPv4-only socket for an IPv6 SYN) leaves
		// the kernel's own lookup to decide, like an unrouted port.
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.FnSkRelease.Call(),

		asm.Mov.Imm(asm.R0, skPass).WithSymbol("pass"),
		asm.Return(),
	}
}
