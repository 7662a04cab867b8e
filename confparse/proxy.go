package confparse

import (
	"fmt"
	"time"
)

// ngx_mail_proxy_module.

func proxyDirectives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		{name: "proxy", module: "mail_proxy", ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar},
		{name: "proxy_buffer", module: "mail_proxy", ctx: ms, args: take1, set: setSize, def: "4k", merge: mergeScalar},
		{name: "proxy_timeout", module: "mail_proxy", ctx: ms, args: take1, set: setMsec, def: "24h", merge: mergeScalar},
		{name: "proxy_pass_error_message", module: "mail_proxy", ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar},
		{name: "xclient", module: "mail_proxy", ctx: ms, args: take1, set: setFlag, def: "on", merge: mergeScalar},
		{name: "proxy_smtp_auth", module: "mail_proxy", ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar},
		// off|on|v2 as in nginx 1.31.4+ (1.22.1 only knows on|off).
		{name: "proxy_protocol", module: "mail_proxy", ctx: ms, args: take1, set: setProxyProtocol, def: "off", merge: mergeScalar},
	}
}

func (l *loader) mergeProxy(s *Server, sv *level) error {
	c := &s.Proxy
	c.Buffer = 4096
	c.Timeout = 24 * time.Hour
	c.XClient = true
	if v := l.eff(s, sv, "proxy"); v != nil {
		c.On = v.(bool)
	}
	if v := l.eff(s, sv, "proxy_buffer"); v != nil {
		c.Buffer = v.(int)
	}
	if v := l.eff(s, sv, "proxy_timeout"); v != nil {
		c.Timeout = v.(time.Duration)
	}
	if v := l.eff(s, sv, "proxy_pass_error_message"); v != nil {
		c.PassErrorMessage = v.(bool)
	}
	if v := l.eff(s, sv, "xclient"); v != nil {
		c.XClient = v.(bool)
	}
	if v := l.eff(s, sv, "proxy_smtp_auth"); v != nil {
		c.SMTPAuth = v.(bool)
	}
	if v := l.eff(s, sv, "proxy_protocol"); v != nil {
		c.ProxyProtocol = map[string]ProxyProtocolVersion{"off": ProxyProtocolOff, "on": ProxyProtocolV1, "v2": ProxyProtocolV2}[v.(string)]
	}
	return l.mergeUpstreamTLS(s, sv) // mailgate-only (upstream_tls.go)
}

// setProxyProtocol is proxy_protocol off|on|v2; v2 is newer nginx's.
func setProxyProtocol(l *loader, lv *level, n *node) error {
	if err := setEnum("off", "on", "v2")(l, lv, n); err != nil {
		return err
	}
	if st := lv.get(n.name()); st != nil && st.pos == n.pos && st.v == "v2" {
		l.unportable(n.pos, `"proxy_protocol v2"`,
			fmt.Sprintf(`invalid value "%s" in "proxy_protocol" directive, it must be "on" or "off"`, n.args()[0]))
	}
	return nil
}

// lintProxyLevel advises on the proxy directives of one level.
func lintProxyLevel(lv *level, adv advise) {
	if s := lv.get("proxy"); s != nil {
		adv(s.pos, `"proxy" directive has no effect`,
			"nginx accepts it but never reads it; sessions are always proxied")
	}
}

// lintSMTPOnlyDirectives warns about xclient and proxy_smtp_auth written
// on in a POP3 or IMAP server.
func (l *loader) lintSMTPOnlyDirectives(adv advise) {
	// xclient and proxy_smtp_auth only shape the login to an SMTP
	// upstream. In a POP3 or IMAP server nginx accepts them and never
	// reads them, so an explicit "on" there is a server block copied
	// from an SMTP one, or a belief that XCLIENT reaches the upstream a
	// POP3/IMAP session is sent to (Auth-Server/Auth-Port), which it
	// never does. Set at the mail{} level they are normal: SMTP servers
	// inherit them.
	for _, sv := range l.servers {
		s := l.srvByLvl[sv]
		if s == nil || s.Protocol == ProtoSMTP || s.Protocol == "" {
			continue
		}
		for _, name := range []string{"xclient", "proxy_smtp_auth"} {
			if st := sv.get(name); st != nil && st.v == true {
				adv(st.pos, fmt.Sprintf(`"%s on" has no effect with "protocol %s"`, name, s.Protocol),
					"nginx sends XCLIENT and AUTH only to SMTP upstreams; this server's upstreams speak "+s.Protocol)
			}
		}
	}
}
