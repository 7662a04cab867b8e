package confparse

// nginx's URL/address parser (ngx_parse_url and friends), as used by
// listen, auth_http and resolver, re-implemented.

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"mailgate/mail/ngx"
)

type parsedURL struct {
	unix     bool
	path     string // unix socket path
	host     string // as written ("[::1]" keeps its brackets)
	port     int
	lastPort int
	noPort   bool
	wildcard bool
	uri      string
	addrs    []netip.AddrPort // one per address (and per port of a range)
}

type urlOpts struct {
	listen      bool
	uriPart     bool
	defaultPort int
}

// lookupHost resolves a host name as nginx's ngx_inet_resolve_host does:
// IPv4 addresses first, then IPv6, duplicates dropped.
var lookupHost = func(host string) ([]netip.Addr, error) {
	// getaddrinfo() first accepts the inet_aton() forms ("127.1",
	// "127.00.1", "0x7f.1"), which Go's resolver does not.
	if a, ok := inetAton(host); ok {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	var v4, v6 []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		ip = ip.Unmap().WithZone("")
		if seen[ip] {
			continue
		}
		seen[ip] = true
		if ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	return append(v4, v6...), nil
}

// atoiPort is ngx_atoi for ports; -1 on error.
func atoiPort(s string) int {
	v, ok := ngx.Atoi(s)
	if !ok || v > 1<<20 {
		if !ok {
			return -1
		}
		return 1 << 20
	}
	return int(v)
}

// parseURL returns the parsed URL or nginx's u->err text.
func parseURL(s string, o urlOpts) (*parsedURL, string) {
	if len(s) >= 5 && strings.EqualFold(s[:5], "unix:") {
		return parseUnixURL(s, o)
	}
	if strings.HasPrefix(s, "[") {
		return parseInet6URL(s, o)
	}
	return parseInetURL(s, o)
}

func parseUnixURL(s string, o urlOpts) (*parsedURL, string) {
	path := s[5:]
	u := &parsedURL{unix: true}
	if o.uriPart {
		if i := strings.IndexByte(path, ':'); i >= 0 {
			u.uri = path[i+1:]
			path = path[:i]
		}
	}
	if path == "" {
		return nil, "no path in the unix domain socket"
	}
	if len(path)+1 > 108 {
		return nil, "too long path in the unix domain socket"
	}
	u.path = path
	return u, ""
}

// portRange parses "N" or "N-M" (listen only), as nginx does.
func portRange(s string, listen bool, u *parsedURL) string {
	p := s
	if listen {
		if i := strings.IndexByte(s, '-'); i >= 0 {
			n := atoiPort(s[i+1:])
			if n < 1 || n > 65535 {
				return "invalid port"
			}
			u.lastPort = n
			p = s[:i]
		}
	}
	n := atoiPort(p)
	if n < 1 || n > 65535 {
		return "invalid port"
	}
	if u.lastPort != 0 && n > u.lastPort {
		return "invalid port range"
	}
	u.port = n
	return ""
}

func parseInetURL(s string, o urlOpts) (*parsedURL, string) {
	u := &parsedURL{}
	host := s
	last := len(s)
	port := strings.IndexByte(s, ':')
	uri := strings.IndexByte(s, '/')
	if args := strings.IndexByte(s, '?'); args >= 0 && (uri < 0 || args < uri) {
		uri = args
	}
	if uri >= 0 {
		if o.listen || !o.uriPart {
			return nil, "invalid host"
		}
		u.uri = s[uri:]
		last = uri
		if uri < port {
			port = -1
		}
	}
	if port >= 0 {
		if e := portRange(s[port+1:last], o.listen, u); e != "" {
			return nil, e
		}
		last = port
	} else {
		if uri < 0 && o.listen {
			// the value may be a port (or port range) alone
			p := s[:last]
			lp := 0
			perr := ""
			noPort := false
			if i := strings.IndexByte(p, '-'); i >= 0 {
				n := atoiPort(p[i+1:])
				if n < 0 {
					noPort = true
				} else if n < 1 || n > 65535 {
					perr = "invalid port"
				} else {
					lp = n
				}
				p = p[:i]
			}
			if !noPort {
				if n := atoiPort(p); n >= 0 {
					if perr != "" {
						return nil, perr
					}
					if n < 1 || n > 65535 {
						return nil, "invalid port"
					}
					if lp != 0 && n > lp {
						return nil, "invalid port range"
					}
					u.port, u.lastPort, u.wildcard = n, lp, true
					u.addAddrs(netip.IPv4Unspecified())
					return u, ""
				}
			}
		}
		u.noPort = true
		u.port = o.defaultPort
		u.lastPort = 0
	}
	host = s[:last]
	if host == "" {
		return nil, "no host"
	}
	u.host = host
	if o.listen && host == "*" {
		u.wildcard = true
		u.addAddrs(netip.IPv4Unspecified())
		return u, ""
	}
	if a, ok := ngx.InetAddr(host); ok {
		u.wildcard = a.IsUnspecified()
		u.addAddrs(a)
		return u, ""
	}
	// getaddrinfo() reads the name as a C string: up to a NUL byte
	addrs, err := lookupHost(cstr(host))
	if err != nil || len(addrs) == 0 {
		return nil, "host not found"
	}
	u.addAddrs(addrs...)
	return u, ""
}

func parseInet6URL(s string, o urlOpts) (*parsedURL, string) {
	u := &parsedURL{}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return nil, "invalid host"
	}
	rest := s[end+1:]
	last := len(rest)
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		if o.listen || !o.uriPart {
			return nil, "invalid host"
		}
		u.uri = rest[i:]
		last = i
	}
	if last > 0 {
		if rest[0] != ':' {
			return nil, "invalid host"
		}
		if e := portRange(rest[1:last], o.listen, u); e != "" {
			return nil, e
		}
	} else {
		u.noPort = true
		u.port = o.defaultPort
	}
	h := s[1:end]
	if h == "" {
		return nil, "no host"
	}
	u.host = s[:end+1]
	a, err := netip.ParseAddr(h)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return nil, "invalid IPv6 address"
	}
	u.wildcard = a.IsUnspecified()
	u.addAddrs(a)
	return u, ""
}

// addAddrs adds one entry per address and per port of the range.
func (u *parsedURL) addAddrs(addrs ...netip.Addr) {
	last := u.port
	if u.lastPort != 0 {
		last = u.lastPort
	}
	seen := make(map[netip.AddrPort]bool, len(u.addrs))
	for _, x := range u.addrs {
		seen[x] = true
	}
	for _, a := range addrs {
		for p := u.port; p <= last; p++ {
			ap := netip.AddrPortFrom(a, uint16(p))
			if !seen[ap] {
				seen[ap] = true
				u.addrs = append(u.addrs, ap)
			}
		}
	}
}

// addrText is how nginx names an address:port ("127.0.0.1:143", "[::1]:143").
func addrText(ap netip.AddrPort) string {
	return ap.String()
}

// inetAton parses the numeric forms glibc's inet_aton accepts: one to four
// parts, each decimal, octal (leading 0) or hex (0x); the last part fills
// the remaining bytes.
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := uint64(10)
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		if p == "" {
			return netip.Addr{}, false
		}
		var v uint64
		for _, c := range []byte(p) {
			var d uint64
			switch {
			case c >= '0' && c <= '9':
				d = uint64(c - '0')
			case c >= 'a' && c <= 'f':
				d = uint64(c-'a') + 10
			case c >= 'A' && c <= 'F':
				d = uint64(c-'A') + 10
			default:
				return netip.Addr{}, false
			}
			if d >= base {
				return netip.Addr{}, false
			}
			v = v*base + d
			if v > 0xffffffff {
				return netip.Addr{}, false
			}
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i := 0; i < last; i++ {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
		n |= vals[i] << (24 - 8*uint(i))
	}
	if vals[last] >= 1<<(8*uint(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
