package confparse

import (
	"net/netip"
	"strings"

	"mailgate/mail/ngx"
)

// ngx_mail_realip_module.

func realIPDirectives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		{name: "set_real_ip_from", module: "mail_realip", ctx: ms, args: take1, set: setRealIPFrom, merge: mergeArray},
	}
}

// realIPVal is set_real_ip_from's list at one level.
type realIPVal struct {
	from []netip.Prefix
	unix bool
}

// parseCIDR is ngx_ptocidr: an address, or address/bits. done is true when
// the address had bits set beyond the mask (nginx warns and masks them).
func parseCIDR(s string) (p netip.Prefix, done bool, ok bool) {
	addr, mask, hasMask := strings.Cut(s, "/")
	a, ok4 := ngx.InetAddr(addr)
	if !ok4 {
		var err error
		a, err = netip.ParseAddr(addr)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return p, false, false
		}
	}
	bits := a.BitLen()
	if hasMask {
		n, ok := ngx.Atoi(mask)
		if !ok || int(n) > a.BitLen() {
			return p, false, false
		}
		bits = int(n)
	}
	p = netip.PrefixFrom(a, bits)
	m := p.Masked()
	return m, m.Addr() != a, true
}

func setRealIPFrom(l *loader, lv *level, n *node) error {
	s := lv.get(n.name())
	if s == nil {
		s = &setting{v: &realIPVal{}}
	}
	rv := s.v.(*realIPVal)
	s.pos = n.pos
	lv.vals[n.name()] = s
	a := n.args()[0]
	if cstr(a) == "unix:" { // strcmp()
		rv.unix = true
		return nil
	}
	if p, done, ok := parseCIDR(a); ok {
		if done {
			l.warn(n.pos, "low address bits of %s are meaningless", a)
		}
		rv.from = append(rv.from, p)
		return nil
	}
	addrs, err := lookupHost(cstr(a)) // getaddrinfo() reads a C string
	if err != nil || len(addrs) == 0 {
		return l.fail(errAt(n, `host not found in set_real_ip_from "%s"`, a))
	}
	for _, ad := range addrs {
		rv.from = append(rv.from, netip.PrefixFrom(ad, ad.BitLen()))
	}
	return nil
}

func (l *loader) mergeRealIP(s *Server, sv *level) error {
	if v := l.eff(s, sv, "set_real_ip_from"); v != nil {
		rv := v.(*realIPVal)
		s.RealIP.From = rv.from
		s.RealIP.FromUnix = rv.unix
	}
	return nil
}
