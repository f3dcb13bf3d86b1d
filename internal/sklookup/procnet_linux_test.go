//go:build linux

package sklookup

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// Lines as a little-endian machine prints them in /proc/net/tcp{,6}.
const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0
   0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0000000000000000 100 0 0 10 0
`

func TestParseListeners(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the sample is in little-endian words")
	}
	got, err := parseListeners(strings.NewReader(procNetTCP))
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{netip.MustParseAddrPort("127.0.0.1:8080"), 4242},
		{netip.MustParseAddrPort("0.0.0.0:80"), 77},
		{netip.MustParseAddrPort("[::1]:443"), 99},
		{netip.MustParseAddrPort("[::ffff:127.0.0.1]:22"), 100},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parseListeners = %v, want %v (established sockets left out)", got, want)
	}
	for _, bad := range []string{"0100007F", "0100007F:XYZ", "01007F:0050", "zz00007F:0050"} {
		if _, err := parseHexAddrPort(bad); err == nil {
			t.Errorf("parseHexAddrPort(%q) succeeded", bad)
		}
	}
}

func TestOverlaps(t *testing.T) {
	a := netip.MustParseAddr
	for _, c := range []struct {
		route, listener netip.Addr
		want            bool
	}{
		{netip.Addr{}, a("10.0.0.1"), true},
		{a("0.0.0.0"), a("10.0.0.1"), true},
		{a("10.0.0.1"), a("0.0.0.0"), true},
		{a("10.0.0.1"), a("::"), true}, // a [::] listener may be dual-stack
		{a("10.0.0.1"), a("::ffff:10.0.0.1"), true},
		{a("10.0.0.1"), a("10.0.0.2"), false},
		{a("::1"), a("127.0.0.1"), false},
	} {
		if got := overlaps(c.route.Unmap(), c.listener); got != c.want {
			t.Errorf("overlaps(%v, %v) = %v, want %v", c.route, c.listener, got, c.want)
		}
	}
}
