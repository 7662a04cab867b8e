package proxy

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"strconv"
)

// v2 signature, version/command byte and TLV types.
const (
	pp2Signature = "\r\n\r\n\x00\r\nQUIT\n"
	pp2Proxy     = 0x21 // version 2, PROXY command
	pp2Stream    = 0x01
	pp2AFInet    = 0x10
	pp2AFInet6   = 0x20
	pp2AFUnspec  = 0x00
	pp2TypeCRC   = 0x03
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ProxyHeader renders the PROXY protocol header nginx sends to the
// upstream before anything else: version 1 (text, as 1.22.1) or 2 (binary,
// as the newest nginx, with its final CRC32C TLV). src is the client
// address after realip, dst our local address of the client connection.
//
// v1: the family word follows src ("PROXY TCP6 2001:db8::1 127.0.0.1 ..."
// is possible), an invalid src gives "PROXY UNKNOWN\r\n".
// v2: the family is raised to IPv6 when either side is IPv6 (the IPv4 side
// becomes ::ffff:a.b.c.d), lowered to IPv4 when both are v4-mapped; an
// unknown side is 127.0.0.1 or ::1 with port 0; no known side gives an
// AF_UNSPEC header with no addresses.
func ProxyHeader(version int, src, dst netip.AddrPort) ([]byte, error) {
	switch version {
	case 1:
		return proxyV1(src, dst), nil
	case 2:
		return proxyV2(src, dst), nil
	}
	return nil, errors.New("unknown PROXY protocol version " + strconv.Itoa(version))
}

func proxyV1(src, dst netip.AddrPort) []byte {
	if !src.IsValid() {
		return []byte("PROXY UNKNOWN\r\n")
	}
	b := make([]byte, 0, 107)
	if src.Addr().Is4() {
		b = append(b, "PROXY TCP4 "...)
	} else {
		b = append(b, "PROXY TCP6 "...)
	}
	b = append(b, FormatAddr(src.Addr())...)
	b = append(b, ' ')
	if dst.IsValid() {
		b = append(b, FormatAddr(dst.Addr())...)
	} else if src.Addr().Is4() {
		b = append(b, "0.0.0.0"...)
	} else {
		b = append(b, "::"...)
	}
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, '\r', '\n')
}

func proxyV2(src, dst netip.AddrPort) []byte {
	b := make([]byte, 0, 52+7)
	b = append(b, pp2Signature...)
	b = append(b, pp2Proxy, 0, 0, 0) // family and length filled below
	sv, dv := src.IsValid(), dst.IsValid()
	s6 := sv && !src.Addr().Is4()
	d6 := dv && !dst.Addr().Is4()
	switch {
	case s6 && d6 && src.Addr().Is4In6() && dst.Addr().Is4In6():
		b[13] = pp2AFInet | pp2Stream
		b = appendV4(b, src, dst)
	case s6 || d6:
		b[13] = pp2AFInet6 | pp2Stream
		for _, a := range []netip.AddrPort{src, dst} {
			switch {
			case !a.IsValid():
				b = append(b, netip.IPv6Loopback().AsSlice()...)
			case a.Addr().Is4():
				m := netip.AddrFrom16(a.Addr().As16())
				b = append(b, m.AsSlice()...)
			default:
				b = append(b, a.Addr().AsSlice()...)
			}
		}
		b = binary.BigEndian.AppendUint16(b, portOf(src))
		b = binary.BigEndian.AppendUint16(b, portOf(dst))
	case sv || dv:
		b[13] = pp2AFInet | pp2Stream
		b = appendV4(b, src, dst)
	default:
		b[13] = pp2AFUnspec | pp2Stream
	}
	// The CRC32C TLV, computed over the whole header with its value zeroed.
	b = append(b, pp2TypeCRC, 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b, castagnoli))
	return b
}

func portOf(a netip.AddrPort) uint16 {
	if !a.IsValid() {
		return 0
	}
	return a.Port()
}

func appendV4(b []byte, src, dst netip.AddrPort) []byte {
	for _, a := range []netip.AddrPort{src, dst} {
		if !a.IsValid() {
			b = append(b, 127, 0, 0, 1)
			continue
		}
		v4 := a.Addr().As16()
		b = append(b, v4[12:]...)
	}
	b = binary.BigEndian.AppendUint16(b, portOf(src))
	return binary.BigEndian.AppendUint16(b, portOf(dst))
}

// FormatAddr renders an address the way nginx prints socket addresses
// (ngx_sock_ntop without port): dotted IPv4; IPv6 with the first longest
// run of two or more zero groups compressed, lowercase hex, and a dotted
// tail for IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible addresses.
func FormatAddr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	if a.Is4() {
		return a.String()
	}
	p := a.As16()
	// Longest run of zero 16-bit groups; the first one wins a tie and a
	// single zero group is never compressed.
	zero, maxRun := -1, 1
	run, last := 0, -1
	for i := 0; i < 16; i += 2 {
		if p[i] != 0 || p[i+1] != 0 {
			if maxRun < run {
				zero, maxRun = last, run
			}
			run = 0
			continue
		}
		if run == 0 {
			last = i
		}
		run++
	}
	if maxRun < run {
		zero, maxRun = last, run
	}
	b := make([]byte, 0, 46)
	n := 16
	if zero == 0 {
		if (maxRun == 5 && p[10] == 0xff && p[11] == 0xff) || maxRun == 6 ||
			(maxRun == 7 && p[14] != 0 && p[15] != 1) {
			n = 12
		}
		b = append(b, ':')
	}
	for i := 0; i < n; i += 2 {
		if i == zero {
			b = append(b, ':')
			i += (maxRun - 1) * 2
			continue
		}
		b = strconv.AppendUint(b, uint64(p[i])<<8|uint64(p[i+1]), 16)
		if i < 14 {
			b = append(b, ':')
		}
	}
	if n == 12 {
		for i := 12; i < 16; i++ {
			b = strconv.AppendUint(b, uint64(p[i]), 10)
			if i < 15 {
				b = append(b, '.')
			}
		}
	}
	return string(b)
}
