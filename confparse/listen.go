package confparse

import (
	"net/netip"
	"strings"

	"mailgate/mail/ngx"
)

// Protocol guessing by well-known port, in mail module order.
var protoPorts = []struct {
	proto string
	ports []int
}{
	{ProtoPOP3, []int{110, 995}},
	{ProtoIMAP, []int{143, 993}},
	{ProtoSMTP, []int{25, 465, 587}},
}

// setListen is the mail listen directive (ngx_mail_core_listen).
//
// Differences from 1.22.1, following newer nginx on purpose: "multipath"
// is accepted (1.29.7+), and an unknown parameter is reported as
// `invalid parameter "X"` (1.25.5+) instead of `the invalid "X" parameter`.
func setListen(l *loader, lv *level, n *node) error {
	lv.listen = true
	a := n.args()
	u, uerr := parseURL(a[0], urlOpts{listen: true})
	if uerr != "" {
		return l.fail(errAt(n, `%s in "%s" of the "listen" directive`, uerr, a[0]))
	}
	tmpl := Listen{Pos: n.pos, Backlog: 511, IPv6Only: true}
	if lv.protocol == "" && !u.unix {
		for _, pp := range protoPorts {
			for _, p := range pp.ports {
				if p == u.port {
					lv.protocol = pp.proto
					lv.protocolPos = n.pos
				}
			}
		}
	}
	// nginx tests most parameters with strcmp(): a NUL byte ends them
	for _, p := range a[1:] {
		cp := cstr(p)
		switch {
		case cp == "bind":
			tmpl.Bind = true
		case strings.HasPrefix(p, "backlog="):
			v, ok := ngx.Atoi(p[8:])
			tmpl.Bind = true
			if !ok || v == 0 || v > 1<<31-1 {
				return l.fail(errAt(n, `invalid backlog "%s"`, p))
			}
			tmpl.Backlog = int(v)
		case strings.HasPrefix(p, "rcvbuf="):
			v, ok := parseSize(p[7:])
			tmpl.Bind = true
			if !ok {
				return l.fail(errAt(n, `invalid rcvbuf "%s"`, p))
			}
			tmpl.RcvBuf = int(v)
		case strings.HasPrefix(p, "sndbuf="):
			v, ok := parseSize(p[7:])
			tmpl.Bind = true
			if !ok {
				return l.fail(errAt(n, `invalid sndbuf "%s"`, p))
			}
			tmpl.SndBuf = int(v)
		case strings.HasPrefix(p, "ipv6only=o"):
			switch cstr(p[10:]) {
			case "n":
				tmpl.IPv6Only = true
			case "ff":
				tmpl.IPv6Only = false
			default:
				return l.fail(errAt(n, `invalid ipv6only flags "%s"`, cstr(p[9:])))
			}
			tmpl.Bind = true
		case cp == "ssl":
			tmpl.SSL = true
			lv.sslListen = true
			lv.sslPos = n.pos
			lv.sslPosSet = true
		case strings.HasPrefix(p, "so_keepalive="):
			ka, ok := parseKeepalive(p[13:])
			if !ok {
				return l.fail(errAt(n, `invalid so_keepalive value: "%s"`, cstr(p[13:])))
			}
			tmpl.KeepAlive = ka
			tmpl.Bind = true
		case cp == "proxy_protocol":
			tmpl.ProxyProtocol = true
		case cp == "multipath":
			l.unportable(n.pos, `"listen ... multipath"`, `the invalid "multipath" parameter`)
			tmpl.Multipath = true
			tmpl.Bind = true
		default:
			return l.fail(errAt(n, `invalid parameter "%s"`, p))
		}
	}
	var entries []*Listen
	if u.unix {
		e := tmpl
		e.Network = "unix"
		e.Path = u.path
		e.Text = "unix:" + u.path
		entries = append(entries, &e)
	} else {
		for _, ap := range u.addrs {
			e := tmpl
			e.Network = "tcp"
			e.Addr = ap
			e.Text = addrText(ap)
			entries = append(entries, &e)
		}
	}
	if l.listenKeys == nil {
		l.listenKeys = map[listenKey]bool{}
	}
	for _, e := range entries {
		k := listenKey{e.Network, e.Addr, e.Path}
		if l.listenKeys[k] {
			return l.fail(errAt(n, `duplicate "%s" address and port pair`, e.Text))
		}
		l.listenKeys[k] = true
		l.listens = append(l.listens, e)
		lv.listens = append(lv.listens, e)
	}
	return nil
}

// parseKeepalive parses so_keepalive's value: on, off or [idle]:[intvl]:[cnt].
func parseKeepalive(s string) (KeepAlive, bool) {
	switch cstr(s) {
	case "on":
		return KeepAlive{Set: true, On: true}, true
	case "off":
		return KeepAlive{Set: true, On: false}, true
	}
	ka := KeepAlive{Set: true, On: true}
	parts := strings.SplitN(s, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	if parts[0] != "" {
		v, ok := parseTime(parts[0], true)
		if !ok {
			return ka, false
		}
		ka.Idle = secDuration(v)
	}
	if parts[1] != "" {
		v, ok := parseTime(parts[1], true)
		if !ok {
			return ka, false
		}
		ka.Interval = secDuration(v)
	}
	if parts[2] != "" {
		v, ok := ngx.Atoi(parts[2])
		if !ok {
			return ka, false
		}
		ka.Count = int(v)
	}
	if ka.Idle == 0 && ka.Interval == 0 && ka.Count == 0 {
		return ka, false
	}
	return ka, true
}

// listenKey identifies an address for the duplicate check (every listen
// of the whole mail block is compared).
type listenKey struct {
	network string
	addr    netip.AddrPort
	path    string
}
