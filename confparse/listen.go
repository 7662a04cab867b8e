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
		guessProtocol(lv, n, u.port)
	}
	for _, p := range a[1:] {
		if err := setListenParam(l, lv, n, &tmpl, p); err != nil {
			return err
		}
	}
	if l.listenKeys == nil {
		l.listenKeys = map[listenKey]bool{}
	}
	for _, e := range listenEntries(tmpl, u) {
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

// guessProtocol is nginx's protocol by port, for a server without a
// protocol directive (yet).
func guessProtocol(lv *level, n *node, port int) {
	for _, pp := range protoPorts {
		for _, p := range pp.ports {
			if p == port {
				lv.protocol = pp.proto
				lv.protocolPos = n.pos
			}
		}
	}
}

// listenParam is one of listen's parameters: an exact word, or a prefix
// whose rest is the value. set fills the entry's template; a parameter
// that changes the socket also makes it a bind entry, as in nginx.
type listenParam struct {
	word   string
	prefix bool
	set    func(l *loader, lv *level, n *node, t *Listen, v string) error
}

// listenParams are listen's parameters in the order nginx tests them.
// nginx compares most with strcmp(), so a NUL byte ends a word.
var listenParams = []listenParam{
	{word: "bind", set: func(_ *loader, _ *level, _ *node, t *Listen, _ string) error {
		t.Bind = true
		return nil
	}},
	{word: "backlog=", prefix: true, set: func(l *loader, _ *level, n *node, t *Listen, v string) error {
		b, ok := ngx.Atoi(v)
		t.Bind = true
		if !ok || b == 0 || b > 1<<31-1 {
			return l.fail(errAt(n, `invalid backlog "backlog=%s"`, v))
		}
		t.Backlog = int(b)
		return nil
	}},
	{word: "rcvbuf=", prefix: true, set: func(l *loader, _ *level, n *node, t *Listen, v string) error {
		size, ok := parseSize(v)
		t.Bind = true
		if !ok {
			return l.fail(errAt(n, `invalid rcvbuf "rcvbuf=%s"`, v))
		}
		t.RcvBuf = int(size)
		return nil
	}},
	{word: "sndbuf=", prefix: true, set: func(l *loader, _ *level, n *node, t *Listen, v string) error {
		size, ok := parseSize(v)
		t.Bind = true
		if !ok {
			return l.fail(errAt(n, `invalid sndbuf "sndbuf=%s"`, v))
		}
		t.SndBuf = int(size)
		return nil
	}},
	{word: "ipv6only=o", prefix: true, set: func(l *loader, _ *level, n *node, t *Listen, v string) error {
		switch cstr(v) {
		case "n":
			t.IPv6Only = true
		case "ff":
			t.IPv6Only = false
		default:
			return l.fail(errAt(n, `invalid ipv6only flags "o%s"`, cstr(v)))
		}
		t.Bind = true
		return nil
	}},
	{word: "ssl", set: func(_ *loader, lv *level, n *node, t *Listen, _ string) error {
		t.SSL = true
		lv.sslListen = true
		lv.sslPos = n.pos
		lv.sslPosSet = true
		return nil
	}},
	{word: "so_keepalive=", prefix: true, set: func(l *loader, _ *level, n *node, t *Listen, v string) error {
		ka, ok := parseKeepalive(v)
		if !ok {
			return l.fail(errAt(n, `invalid so_keepalive value: "%s"`, cstr(v)))
		}
		t.KeepAlive = ka
		t.Bind = true
		return nil
	}},
	{word: "proxy_protocol", set: func(_ *loader, _ *level, _ *node, t *Listen, _ string) error {
		t.ProxyProtocol = true
		return nil
	}},
	{word: "multipath", set: func(l *loader, _ *level, n *node, t *Listen, _ string) error {
		l.unportable(n.pos, `"listen ... multipath"`, `the invalid "multipath" parameter`)
		t.Multipath = true
		t.Bind = true
		return nil
	}},
}

// setListenParam applies one listen parameter to the entry template.
func setListenParam(l *loader, lv *level, n *node, t *Listen, p string) error {
	for _, lp := range listenParams {
		switch {
		case lp.prefix && strings.HasPrefix(p, lp.word):
			return lp.set(l, lv, n, t, p[len(lp.word):])
		case !lp.prefix && cstr(p) == lp.word:
			return lp.set(l, lv, n, t, "")
		}
	}
	return l.fail(errAt(n, `invalid parameter "%s"`, p))
}

// listenEntries makes one entry per address of the listen's URL (a host
// name may have several), or one for a unix socket.
func listenEntries(tmpl Listen, u *parsedURL) []*Listen {
	if u.unix {
		e := tmpl
		e.Network = "unix"
		e.Path = u.path
		e.Text = "unix:" + u.path
		return []*Listen{&e}
	}
	var entries []*Listen
	for _, ap := range u.addrs {
		e := tmpl
		e.Network = "tcp"
		e.Addr = ap
		e.Text = addrText(ap)
		entries = append(entries, &e)
	}
	return entries
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
