// Package ngx holds nginx's small value parsers that more than one of our
// packages read nginx's way: ngx_atoi for numbers from configuration
// files and auth_http answers, ngx_inet_addr for IPv4 addresses. It is a
// leaf: it imports nothing of ours, so confparse, auth and proxy may all
// use it.
package ngx

import "net/netip"

// Bytes is what the parsers read: configuration text or wire bytes.
type Bytes interface{ ~string | ~[]byte }

// Atoi is ngx_atoi: one or more decimal digits, no sign, no overflow of
// a 64-bit integer. ok is false otherwise.
func Atoi[T Bytes](s T) (n int64, ok bool) {
	if len(s) == 0 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// InetAddr is ngx_inet_addr: exactly three dots and octets of at most
// 255. Like nginx it does not require digits between the dots, so
// "127..1.1" is 127.0.1.1 and "..." is 0.0.0.0. nginx returns
// 255.255.255.255 as its error value (INADDR_NONE); whether a caller can
// tell it from a real one is the caller's business.
func InetAddr[T Bytes](s T) (netip.Addr, bool) {
	var b [4]byte
	octet, n := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			octet = octet*10 + int(c-'0')
			if octet > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if n == 3 {
				return netip.Addr{}, false
			}
			b[n] = byte(octet)
			octet = 0
			n++
		default:
			return netip.Addr{}, false
		}
	}
	if n != 3 {
		return netip.Addr{}, false
	}
	b[3] = byte(octet)
	return netip.AddrFrom4(b), true
}
