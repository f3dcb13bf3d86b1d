package tcpproxy

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// maxPreamble is the longest PROXY header appendProxyHeader writes: a v1
// TCP6 line with two full IPv6 addresses and two 5-digit ports (104
// bytes), within v1's 107.
const maxPreamble = 108

// v2Signature starts every PROXY protocol v2 header.
var v2Signature = [12]byte{'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'}

// appendProxyHeader appends the PROXY header (version 1 or 2) that carries
// a connection from src to dst, byte for byte what go-proxyproto's
// HeaderProxyFromAddrs writes (TCP4 when both addresses are IPv4, or
// IPv4-mapped, TCP6 otherwise), without allocating: the loop path writes
// one per connection into the connection's own record.
func appendProxyHeader(b []byte, version byte, src, dst netip.AddrPort) []byte {
	sa, da := src.Addr().WithZone(""), dst.Addr().WithZone("")
	v4 := sa.Unmap().Is4() && da.Unmap().Is4()
	if v4 {
		sa, da = sa.Unmap(), da.Unmap()
	} else {
		sa, da = netip.AddrFrom16(sa.As16()), netip.AddrFrom16(da.As16())
	}
	if version == 1 {
		b = append(b, "PROXY TCP6 "...)
		if v4 {
			b[len(b)-2] = '4'
		}
		b = sa.AppendTo(b)
		b = append(b, ' ')
		b = da.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, '\r', '\n')
	}
	b = append(b, v2Signature[:]...)
	if v4 {
		b = append(b, 0x21, 0x11, 0, 12) // v2 PROXY, TCP over IPv4, 12 address bytes
		s4, d4 := sa.As4(), da.As4()
		b = append(append(b, s4[:]...), d4[:]...)
	} else {
		b = append(b, 0x21, 0x21, 0, 36) // TCP over IPv6, 36 address bytes
		s16, d16 := sa.As16(), da.As16()
		b = append(append(b, s16[:]...), d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}
