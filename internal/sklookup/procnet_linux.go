//go:build linux

package sklookup

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// tcpListen is the LISTEN state in /proc/net/tcp ("0A").
const tcpListen = "0A"

// ForeignListeners returns the TCP sockets of this network namespace that
// listen on one of ports at an address a route for addr would take
// connections from, other than the sockets whose inodes are in ours. A
// route steals such a socket's connections, so the caller refuses to route
// when the list is not empty. addr is as in Route: the zero netip.Addr or
// an unspecified address is the wildcard, which overlaps every listener on
// the port; an exact address overlaps listeners on itself and on the
// wildcard. It asks the kernel for the listening sockets over sock_diag
// (see diag_linux.go), or reads /proc/net/tcp and /proc/net/tcp6 where
// that is unavailable: sockets of every process, not only this one's.
func ForeignListeners(addr netip.Addr, ports []uint16, ours []uint64) ([]Listener, error) {
	var wanted [1 << 16 / 64]uint64
	for _, p := range ports {
		wanted[p/64] |= 1 << (p % 64)
	}
	skip := make(map[uint64]bool, len(ours))
	for _, ino := range ours {
		skip[ino] = true
	}
	addr = addr.Unmap()
	var found []Listener
	for _, fam := range families {
		ls, err := diagListeners(fam.family)
		if err != nil {
			// No sock_diag (inet_diag not built or loaded): read /proc.
			ls, err = readListeners(fam.proc)
		}
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			p := l.Addr.Port()
			if wanted[p/64]&(1<<(p%64)) == 0 || skip[l.Inode] || !overlaps(addr, l.Addr.Addr()) {
				continue
			}
			found = append(found, l)
		}
	}
	return found, nil
}

// families are the address families of TCP sockets, with the /proc file
// that lists each.
var families = []struct {
	family uint8
	proc   string
}{{unix.AF_INET, "/proc/net/tcp"}, {unix.AF_INET6, "/proc/net/tcp6"}}

// overlaps reports whether connections to route address a could reach a
// socket listening on b, were there no route. Being unsure (a [::]
// listener may or may not be dual-stack) counts as overlapping.
func overlaps(a, b netip.Addr) bool {
	b = b.Unmap()
	return !a.IsValid() || a.IsUnspecified() || b.IsUnspecified() || a == b
}

// readListeners returns the sockets in LISTEN state of one /proc/net/tcp
// file. A missing file (IPv6 disabled) has none.
func readListeners(name string) ([]Listener, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sk_lookup: looking for other listeners: %w", err)
	}
	defer f.Close()
	ls, err := parseListeners(f)
	if err != nil {
		return nil, fmt.Errorf("sk_lookup: reading %s: %w", name, err)
	}
	return ls, nil
}

// parseListeners reads the /proc/net/tcp format: a header line, then one
// socket a line: "sl local_address rem_address st ... inode ...", where
// local_address is hex address words in host byte order, a colon and the
// hex port.
func parseListeners(r io.Reader) ([]Listener, error) {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	var ls []Listener
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		ap, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, err
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad inode %q: %w", f[9], err)
		}
		ls = append(ls, Listener{Addr: ap, Inode: ino})
	}
	return ls, sc.Err()
}

// parseHexAddrPort parses "0100007F:1F90" (127.0.0.1:8080 on a
// little-endian machine): the kernel prints each 32-bit word of the
// address as a number, so each word's bytes are in host order.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexAddr)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad local address %q", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q: %w", s, err)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a, uint16(port)), nil
}
