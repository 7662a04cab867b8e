package confparse

import (
	"fmt"
	"strings"
	"time"
)

// ngx_mail_core_module.
func mailCoreDirectives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		{name: "server", module: "mail_core", ctx: ctxMail, args: isBlock | take0, set: setMailServer},
		{name: "listen", module: "mail_core", ctx: ctxServer, args: oneMore, set: setListen, merge: mergeSpecial},
		{name: "protocol", module: "mail_core", ctx: ctxServer, args: take1, set: setProtocol, merge: mergeSpecial},
		{name: "timeout", module: "mail_core", ctx: ms, args: take1, set: setMsec, def: "60s", merge: mergeScalar},
		{name: "server_name", module: "mail_core", ctx: ms, args: take1, set: setStr, def: "hostname", merge: mergeScalar},
		{name: "error_log", module: "mail_core", ctx: ms, args: oneMore, set: setErrorLog, merge: mergeSpecial},
		{name: "resolver", module: "mail_core", ctx: ms, args: oneMore, set: setResolver, def: "off", merge: mergeScalar},
		{name: "resolver_timeout", module: "mail_core", ctx: ms, args: take1, set: setMsec, def: "30s", merge: mergeScalar},
		{name: "max_errors", module: "mail_core", ctx: ms, args: take1, set: setNum, def: "5", merge: mergeScalar},
	}
}

func setMailBlock(l *loader, lv *level, n *node) error {
	if l.mailSeen {
		return l.fail(reason(n, "is duplicate"))
	}
	l.mailSeen = true
	l.modulesUsed = true
	l.mail = newLevel(ctxMail, n.pos)
	l.cfg.Mail = &Mail{Pos: n.pos}
	l.mailEnd = n.end
	if err := l.walk(n.children, l.mail); err != nil {
		return err
	}
	return l.mergeMail()
}

func setMailServer(l *loader, lv *level, n *node) error {
	sv := newLevel(ctxServer, n.pos)
	l.servers = append(l.servers, sv)
	if err := l.walk(n.children, sv); err != nil {
		return err
	}
	if !sv.listen {
		return l.fail(&Diag{Msg: fmt.Sprintf(`no "listen" is defined for server in %s`, n.pos)})
	}
	return nil
}

func setProtocol(l *loader, lv *level, n *node) error {
	p := n.args()[0]
	// compared as a C string ("imap" then a NUL byte is imap); the
	// message prints the whole value
	switch cstr(p) {
	case ProtoPOP3, ProtoIMAP, ProtoSMTP:
		p = cstr(p)
		lv.protocol = p
		lv.protocolPos = n.pos
		return nil
	}
	return l.fail(errAt(n, `unknown protocol "%s"`, p))
}

// resolverVal is the resolver directive's value: nil Resolver means off.
type resolverVal struct{ r *Resolver }

// setResolver is ngx_mail_core_resolver + ngx_resolver_create's argument
// parsing. ipv4= follows newer nginx (1.23.1+).
func setResolver(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	a := n.args()
	if cstr(a[0]) == "off" { // strcmp()
		lv.vals[n.name()] = &setting{v: resolverVal{}, pos: n.pos}
		return nil
	}
	r := &Resolver{IPv4: true, IPv6: true, Pos: n.pos}
	for _, w := range a {
		switch {
		case strings.HasPrefix(w, "valid="):
			v, ok := parseTime(w[6:], true)
			if !ok {
				return l.fail(errAt(n, "invalid parameter: %s", w))
			}
			r.Valid = secDuration(v)
		case strings.HasPrefix(w, "ipv4="), strings.HasPrefix(w, "ipv6="):
			var on bool
			switch cstr(w[5:]) {
			case "on":
				on = true
			case "off":
			default:
				return l.fail(errAt(n, "invalid parameter: %s", w))
			}
			if w[3] == '4' {
				l.unportable(n.pos, `"resolver ... ipv4="`, fmt.Sprintf(`host not found in resolver "%s"`, w))
				r.IPv4 = on
			} else {
				r.IPv6 = on
			}
		default:
			u, e := parseURL(w, urlOpts{defaultPort: 53})
			if e != "" {
				return l.fail(errAt(n, `%s in resolver "%s"`, e, w))
			}
			if u.unix {
				// nginx accepts it (and would send UDP queries to the socket)
				l.mgNotice(SevWarn, n.pos, fmt.Sprintf(`resolver address "%s" ignored`, w),
					"mailgate resolves over UDP/TCP to IP addresses only")
				continue
			}
			r.Addrs = append(r.Addrs, u.addrs...)
		}
	}
	if !r.IPv4 && !r.IPv6 {
		return l.fail(errAt(n, `"ipv4" and "ipv6" cannot both be "off"`))
	}
	lv.vals[n.name()] = &setting{v: resolverVal{r}, pos: n.pos}
	return nil
}

// mergeCore merges ngx_mail_core_module's settings into s.
func (l *loader) mergeCore(s *Server, sv *level) error {
	c := &s.Core
	c.Timeout = 60 * time.Second
	c.ResolverTimeout = 30 * time.Second
	c.MaxErrors = 5
	if v := l.eff(s, sv, "timeout"); v != nil {
		c.Timeout = v.(time.Duration)
	}
	if v := l.eff(s, sv, "resolver_timeout"); v != nil {
		c.ResolverTimeout = v.(time.Duration)
	}
	if v := l.eff(s, sv, "server_name"); v != nil {
		c.ServerName = v.(string)
	}
	if c.ServerName == "" {
		c.ServerName = l.hostname
	}
	if v := l.eff(s, sv, "max_errors"); v != nil {
		c.MaxErrors = v.(int)
	}
	if sv.protocol == "" {
		if err := l.fail(&Diag{Msg: fmt.Sprintf("unknown mail protocol for server in %s", sv.pos)}); err != nil {
			return err
		}
	}
	s.Protocol = sv.protocol
	if sv.protocol != "" {
		s.Sources["protocol"] = sv.protocolPos
	}
	// error_log: the server's own logs, else mail{}'s, else the main
	// level's (left empty here: Config.Core.ErrorLogs or the default).
	if st := sv.get("error_log"); st != nil {
		c.ErrorLogs = st.v.([]LogTarget)
		s.Sources["error_log"] = st.pos
	} else if st := l.mail.get("error_log"); st != nil {
		c.ErrorLogs = st.v.([]LogTarget)
		s.Sources["error_log"] = st.pos
	}
	if v := l.eff(s, sv, "resolver"); v != nil {
		c.Resolver = v.(resolverVal).r
	}
	return nil
}

// eff returns the effective value of a mergeable directive for a server:
// the server's own, else the mail{} level's, else nil (the default). It
// records where the value came from in s.Sources.
func (l *loader) eff(s *Server, sv *level, name string) any {
	if st := sv.get(name); st != nil {
		s.Sources[name] = st.pos
		return st.v
	}
	if st := l.mail.get(name); st != nil {
		s.Sources[name] = st.pos
		return st.v
	}
	return nil
}

// lintAuthOfOtherProtocol warns about pop3_auth, imap_auth or smtp_auth
// written in a server of another protocol.
func (l *loader) lintAuthOfOtherProtocol(adv advise) {
	// *_auth of another protocol than the server's: nginx accepts it
	// and never reads it (a block copied from another protocol's).
	for _, sv := range l.servers {
		s := l.srvByLvl[sv]
		if s == nil || s.Protocol == "" {
			continue
		}
		for _, p := range []string{ProtoPOP3, ProtoIMAP, ProtoSMTP} {
			if p == s.Protocol {
				continue
			}
			if st := sv.get(p + "_auth"); st != nil {
				adv(st.pos, fmt.Sprintf(`"%s_auth" has no effect with "protocol %s"`, p, s.Protocol),
					fmt.Sprintf(`this server speaks %s, so its methods come from "%s_auth"; %s_auth is read only by %s servers`, s.Protocol, s.Protocol, p, p))
			}
		}
	}
}
