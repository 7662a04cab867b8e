package proxy

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"net/netip"
	"testing"
)

func TestFormatAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"::", "::"},
		{"2001:db8::1", "2001:db8::1"},
		{"fe80::", "fe80::"},
		{"2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"},      // longest run wins
		{"2001:0:0:1:0:0:1:1", "2001::1:0:0:1:1"},        // first of equal runs wins
		{"2001:db8:1:2:3:4:0:1", "2001:db8:1:2:3:4:0:1"}, // a single zero group stays
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
		{"::192.0.2.1", "::192.0.2.1"}, // IPv4-compatible: dotted tail, unlike Go
		{"::1:2", "::0.1.0.2"},         // nginx takes a run of 6 for IPv4-compatible
		{"::2", "::2"},                 // max run 7, p[14]==0: hex
		{"::0102:0304", "::1.2.3.4"},
		{"2001:DB8::ABCD", "2001:db8::abcd"},
	}
	for _, tc := range tests {
		if got := FormatAddr(netip.MustParseAddr(tc.in)); got != tc.want {
			t.Errorf("FormatAddr(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if FormatAddr(netip.Addr{}) != "" {
		t.Error("invalid address not empty")
	}
}

func TestProxyV1(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		src, dst netip.AddrPort
		want     string
	}{
		{ap("192.0.2.1:123"), ap("127.0.0.1:41034"), "PROXY TCP4 192.0.2.1 127.0.0.1 123 41034\r\n"},
		// The family word follows the source: a mixed line (captured on 1.22.1).
		{ap("[2001:db8::1]:1000"), ap("127.0.0.1:41034"), "PROXY TCP6 2001:db8::1 127.0.0.1 1000 41034\r\n"},
		{ap("[::1]:5"), ap("[::1]:143"), "PROXY TCP6 ::1 ::1 5 143\r\n"},
		{ap("[::ffff:192.0.2.7]:5"), ap("[::ffff:127.0.0.1]:143"), "PROXY TCP6 ::ffff:192.0.2.7 ::ffff:127.0.0.1 5 143\r\n"},
		{netip.AddrPort{}, ap("127.0.0.1:110"), "PROXY UNKNOWN\r\n"},
	}
	for _, tc := range tests {
		got, err := ProxyHeader(1, tc.src, tc.dst)
		if err != nil || string(got) != tc.want {
			t.Errorf("v1(%v, %v) = %q, %v; want %q", tc.src, tc.dst, got, err, tc.want)
		}
	}
	if _, err := ProxyHeader(3, ap("1.2.3.4:1"), ap("1.2.3.4:2")); err == nil {
		t.Error("version 3 accepted")
	}
}

func TestProxyV2(t *testing.T) {
	ap := netip.MustParseAddrPort
	sig := "0d0a0d0a000d0a515549540a"
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		// header up to the CRC TLV's value, hex
		want string
	}{
		{"ipv4", ap("192.0.2.1:123"), ap("127.0.0.1:110"),
			sig + "21" + "11" + "0013" + "c0000201" + "7f000001" + "007b" + "006e" + "030004"},
		{"ipv6", ap("[2001:db8::1]:1000"), ap("[::1]:143"),
			sig + "21" + "21" + "002b" + "20010db8000000000000000000000001" + "00000000000000000000000000000001" + "03e8" + "008f" + "030004"},
		{"mixed v6 source, v4 destination: raised to v6", ap("[2001:db8::1]:1000"), ap("127.0.0.1:110"),
			sig + "21" + "21" + "002b" + "20010db8000000000000000000000001" + "00000000000000000000ffff7f000001" + "03e8" + "006e" + "030004"},
		{"both v4-mapped: lowered to v4", ap("[::ffff:192.0.2.1]:1"), ap("[::ffff:127.0.0.1]:2"),
			sig + "21" + "11" + "0013" + "c0000201" + "7f000001" + "0001" + "0002" + "030004"},
		{"unknown source, v4 destination", netip.AddrPort{}, ap("127.0.0.1:110"),
			sig + "21" + "11" + "0013" + "7f000001" + "7f000001" + "0000" + "006e" + "030004"},
		{"unknown source, v6 destination", netip.AddrPort{}, ap("[::1]:110"),
			sig + "21" + "21" + "002b" + "00000000000000000000000000000001" + "00000000000000000000000000000001" + "0000" + "006e" + "030004"},
		{"nothing known", netip.AddrPort{}, netip.AddrPort{},
			sig + "21" + "01" + "0007" + "030004"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProxyHeader(2, tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := hex.DecodeString(tc.want)
			if !bytes.Equal(got[:len(got)-4], want) {
				t.Fatalf("header\n%x\nwant\n%x", got[:len(got)-4], want)
			}
			if int(binary.BigEndian.Uint16(got[14:16])) != len(got)-16 {
				t.Errorf("length field %d, header %d", binary.BigEndian.Uint16(got[14:16]), len(got))
			}
			// The CRC32C covers the header with its own value zeroed.
			crc := binary.BigEndian.Uint32(got[len(got)-4:])
			z := bytes.Clone(got)
			copy(z[len(z)-4:], []byte{0, 0, 0, 0})
			if c := crc32.Checksum(z, crc32.MakeTable(crc32.Castagnoli)); c != crc {
				t.Errorf("crc %08x, want %08x", crc, c)
			}
		})
	}
}

// A known CRC32C test vector pins the polynomial and byte order.
func TestProxyV2CRCVector(t *testing.T) {
	if c := crc32.Checksum([]byte("123456789"), castagnoli); c != 0xe3069283 {
		t.Fatalf("crc32c(123456789) = %08x", c)
	}
}
