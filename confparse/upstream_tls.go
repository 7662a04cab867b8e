package confparse

// mailgate-only TLS towards upstreams (issue 14, docs/upstream-tls.md),
// named like nginx's stream proxy_ssl_* directives, mail{} and server{}
// contexts, merged main→server like the other proxy directives. Off unless
// written; `mailgate check` lists every use.

import (
	"errors"
	"fmt"

	"mailgate/mail/tlsconf"
)

// UpstreamTLSMode is how the upstream connection is secured.
type UpstreamTLSMode int

const (
	UpstreamPlain    UpstreamTLSMode = iota // nginx's behaviour
	UpstreamSSL                             // proxy_ssl on: TLS from the first byte
	UpstreamStartTLS                        // proxy_starttls on: STARTTLS/STLS before the login
)

// UpstreamTLSConf is the proxy_ssl_* and proxy_starttls settings of a
// server block.
type UpstreamTLSConf struct {
	Mode UpstreamTLSMode
	// AuthHeader (proxy_ssl_auth_header on): the auth server's Auth-SSL
	// response header (on|off|starttls) chooses the mode per login.
	AuthHeader         bool
	Verify             bool // proxy_ssl_verify, default off
	TrustedCertificate string
	VerifyDepth        int      // default 1
	Name               string   // proxy_ssl_name; "" is the Auth-Server host
	ServerName         bool     // proxy_ssl_server_name: send SNI
	Protocols          []string // default TLSv1.2 TLSv1.3
	Ciphers            string   // default DEFAULT
	Certificate        string   // client certificate to the upstream
	CertificateKey     string
	SessionReuse       bool // default on
}

// Enabled reports whether any login of the server may use TLS to its
// upstream, so that a client TLS configuration is needed.
func (c *UpstreamTLSConf) Enabled() bool {
	return c.Mode != UpstreamPlain || c.AuthHeader
}

var upstreamTLSNames = []string{
	"proxy_ssl", "proxy_starttls", "proxy_ssl_auth_header", "proxy_ssl_verify",
	"proxy_ssl_trusted_certificate", "proxy_ssl_verify_depth", "proxy_ssl_name",
	"proxy_ssl_server_name", "proxy_ssl_protocols", "proxy_ssl_ciphers",
	"proxy_ssl_certificate", "proxy_ssl_certificate_key", "proxy_ssl_session_reuse",
}

func upstreamTLSDirectives() []*directive {
	ms := ctxMail | ctxServer
	m := "mailgate_proxy_ssl"
	return []*directive{
		{name: "proxy_ssl", module: m, ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_starttls", module: m, ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_auth_header", module: m, ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_verify", module: m, ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_trusted_certificate", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_verify_depth", module: m, ctx: ms, args: take1, set: setNum, def: "1", merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_name", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_server_name", module: m, ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_protocols", module: m, ctx: ms, args: oneMore, set: setBitmask(sslProtocolNames...), def: "TLSv1.2 TLSv1.3", merge: mergeBitmask, mailgateOnly: true},
		{name: "proxy_ssl_ciphers", module: m, ctx: ms, args: take1, set: setStr, def: "DEFAULT", merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_certificate", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_certificate_key", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "proxy_ssl_session_reuse", module: m, ctx: ms, args: take1, set: setFlag, def: "on", merge: mergeScalar, mailgateOnly: true},
	}
}

// mergeUpstreamTLS fills s.Proxy.TLS and, when TLS to the upstream may be
// used, checks its files as nginx's stream module does at load time.
func (l *loader) mergeUpstreamTLS(s *Server, sv *level) error {
	c := &s.Proxy.TLS
	flag := func(name string) bool { return l.effOrDefault(s, sv, name).(bool) }
	str := func(name string) string {
		if v := l.eff(s, sv, name); v != nil {
			return v.(string)
		}
		return ""
	}
	sslOn, starttls := flag("proxy_ssl"), flag("proxy_starttls")
	switch {
	case sslOn && starttls:
		return l.fail(&Diag{Msg: `"proxy_ssl" and "proxy_starttls" cannot both be on`, Pos: s.Sources["proxy_starttls"]})
	case sslOn:
		c.Mode = UpstreamSSL
	case starttls:
		c.Mode = UpstreamStartTLS
	}
	c.AuthHeader = flag("proxy_ssl_auth_header")
	c.Verify = flag("proxy_ssl_verify")
	c.ServerName = flag("proxy_ssl_server_name")
	c.SessionReuse = flag("proxy_ssl_session_reuse")
	c.VerifyDepth = l.effOrDefault(s, sv, "proxy_ssl_verify_depth").(int)
	c.Protocols = orderedWords(l.effOrDefault(s, sv, "proxy_ssl_protocols").(*bitmaskVal), sslProtocolNames)
	c.Ciphers = l.effOrDefault(s, sv, "proxy_ssl_ciphers").(string)
	c.Name = str("proxy_ssl_name")
	if f := str("proxy_ssl_trusted_certificate"); f != "" {
		c.TrustedCertificate = l.confPath(f)
	}
	if f := str("proxy_ssl_certificate"); f != "" {
		c.Certificate = l.confPath(f)
	}
	if f := str("proxy_ssl_certificate_key"); f != "" {
		c.CertificateKey = l.confPath(f)
	}
	if !c.Enabled() {
		return nil
	}
	fail := func(err error) error { return l.fail(&Diag{Msg: sslErrText(err.Error()), Pos: s.Pos}) }
	if _, err := tlsconf.EvalCiphers(c.Ciphers); err != nil {
		return fail(err)
	}
	if c.Certificate != "" && c.CertificateKey == "" {
		return l.fail(&Diag{Msg: fmt.Sprintf(`no "proxy_ssl_certificate_key" is defined for certificate "%s"`, c.Certificate), Pos: s.Pos})
	}
	if c.Certificate != "" {
		if _, err := tlsconf.LoadKeyPair(c.Certificate, c.CertificateKey, nil, tlsconf.SecurityLevel(c.Ciphers)); err != nil {
			return fail(err)
		}
	}
	if c.Verify {
		if c.TrustedCertificate == "" {
			return fail(errors.New("no proxy_ssl_trusted_certificate for proxy_ssl_verify"))
		}
		if _, _, err := tlsconf.LoadCAFile(c.TrustedCertificate); err != nil {
			return fail(err)
		}
	}
	return nil
}

// lintUpstreamTLS: TLS to an upstream whose certificate is not checked
// protects the passwords only from eavesdroppers, not from whoever can
// pose as the upstream; say so once per directive line that turns it on.
func (l *loader) lintUpstreamTLS(adv advise) {
	seen := map[Pos]bool{}
	for _, s := range l.cfg.Mail.Servers {
		c := &s.Proxy.TLS
		if c.Mode == UpstreamPlain || c.Verify {
			continue
		}
		name := "proxy_ssl"
		if c.Mode == UpstreamStartTLS {
			name = "proxy_starttls"
		}
		pos := s.Sources[name]
		if seen[pos] {
			continue
		}
		seen[pos] = true
		adv(pos, fmt.Sprintf(`"%s on" without "proxy_ssl_verify on"`, name),
			"the upstream's certificate is not checked: anyone who can pose as the upstream gets the passwords; "+
				"add proxy_ssl_verify on and proxy_ssl_trusted_certificate (docs/upstream-tls.md)")
	}
}
