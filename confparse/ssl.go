package confparse

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"mailgate/mail/ngx"
	"mailgate/mail/tlsconf"
)

var sslProtocolNames = []string{"SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}

// ngx_mail_ssl_module.
func mailSSLDirectives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		// "ssl on|off" was removed in nginx 1.25.1. mailgate keeps accepting
		// it with 1.22.1's deprecation warning, so that old configs keep
		// working; Check adds a mailgate-only warning.
		{name: "ssl", module: "mail_ssl", ctx: ms, args: take1, set: setSSLOn, def: "off", merge: mergeScalar},
		{name: "starttls", module: "mail_ssl", ctx: ms, args: take1, set: setStartTLS, def: "off", merge: mergeScalar},
		{name: "ssl_certificate", module: "mail_ssl", ctx: ms, args: take1, set: setArray, merge: mergeArray},
		{name: "ssl_certificate_key", module: "mail_ssl", ctx: ms, args: take1, set: setArray, merge: mergeArray},
		{name: "ssl_password_file", module: "mail_ssl", ctx: ms, args: take1, set: setPasswordFile, merge: mergeScalar},
		{name: "ssl_dhparam", module: "mail_ssl", ctx: ms, args: take1, set: setStr, merge: mergeScalar},
		{name: "ssl_ecdh_curve", module: "mail_ssl", ctx: ms, args: take1, set: setStr, def: "auto", merge: mergeScalar},
		{name: "ssl_protocols", module: "mail_ssl", ctx: ms, args: oneMore, set: setBitmask(sslProtocolNames...), def: "TLSv1.2 TLSv1.3", merge: mergeBitmask},
		{name: "ssl_ciphers", module: "mail_ssl", ctx: ms, args: take1, set: setStr, def: "HIGH:!aNULL:!MD5", merge: mergeScalar},
		{name: "ssl_prefer_server_ciphers", module: "mail_ssl", ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar},
		{name: "ssl_session_cache", module: "mail_ssl", ctx: ms, args: take12, set: setSessionCache, def: "none", merge: mergeScalar},
		{name: "ssl_session_tickets", module: "mail_ssl", ctx: ms, args: take1, set: setFlag, def: "on", merge: mergeScalar},
		{name: "ssl_session_ticket_key", module: "mail_ssl", ctx: ms, args: take1, set: setArray, merge: mergeArray},
		{name: "ssl_session_timeout", module: "mail_ssl", ctx: ms, args: take1, set: setSec, def: "5m", merge: mergeScalar},
		{name: "ssl_verify_client", module: "mail_ssl", ctx: ms, args: take1, set: setEnum("off", "on", "optional", "optional_no_ca"), def: "off", merge: mergeScalar},
		{name: "ssl_verify_depth", module: "mail_ssl", ctx: ms, args: take1, set: setNum, def: "1", merge: mergeScalar},
		{name: "ssl_client_certificate", module: "mail_ssl", ctx: ms, args: take1, set: setStr, merge: mergeScalar},
		{name: "ssl_trusted_certificate", module: "mail_ssl", ctx: ms, args: take1, set: setStr, merge: mergeScalar},
		{name: "ssl_crl", module: "mail_ssl", ctx: ms, args: take1, set: setStr, merge: mergeScalar},
		{name: "ssl_conf_command", module: "mail_ssl", ctx: ms, args: take2, set: setConfCommand, merge: mergeArray},
		// 1.29.1+; accepted as newer nginx does.
		// nginx 1.29.1+
		{name: "ssl_certificate_compression", module: "mail_ssl", ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
	}
}

// setSSLOn is 1.22.1's "ssl" directive: a flag, a deprecation warning,
// and a conflict with starttls at the same level.
func setSSLOn(l *loader, lv *level, n *node) error {
	if err := setFlag(l, lv, n); err != nil {
		return err
	}
	st := lv.get("ssl")
	if st == nil || st.pos != n.pos {
		return nil // failed (Check mode)
	}
	if st.v.(bool) {
		if s := lv.get("starttls"); s != nil && s.v.(string) != "off" {
			l.warn(n.pos, `the "ssl" directive is deprecated, use the "listen ... ssl" directive instead`)
			return l.fail(errAt(n, `"starttls" directive conflicts with "ssl on"`))
		}
	}
	// Like starttls, "ssl" (on or off) names the line that a missing
	// certificate error points at, unless a "listen ... ssl" did.
	if !lv.sslListen {
		lv.sslPos, lv.sslPosSet = n.pos, true
	}
	l.warn(n.pos, `the "ssl" directive is deprecated, use the "listen ... ssl" directive instead`)
	return nil
}

func setStartTLS(l *loader, lv *level, n *node) error {
	if err := setEnum("off", "on", "only")(l, lv, n); err != nil {
		return err
	}
	st := lv.get("starttls")
	if st == nil || st.pos != n.pos {
		return nil
	}
	if st.v.(string) != "off" {
		if s := lv.get("ssl"); s != nil && s.v.(bool) {
			return l.fail(errAt(n, `"ssl" directive conflicts with "starttls"`))
		}
	}
	if !lv.sslListen {
		lv.sslPos, lv.sslPosSet = n.pos, true
	}
	return nil
}

// setPasswordFile reads the file at load time, as nginx does.
func setPasswordFile(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	path := l.confPath(n.args()[0])
	f, err := os.Open(path)
	if err != nil {
		return l.fail(errAt(n, `open() "%s" failed %s`, path, sysErr(err)))
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(f, 1<<20)); err != nil {
		return l.fail(errAt(n, `read() "%s" failed %s`, path, sysErr(err)))
	}
	lv.vals[n.name()] = &setting{v: path, pos: n.pos}
	return nil
}

func setSessionCache(l *loader, lv *level, n *node) error {
	for _, a := range n.args() {
		switch {
		case a == "off", a == "none", a == "builtin":
			continue
		case strings.HasPrefix(a, "builtin:") && len(a) > 8:
			if _, ok := ngx.Atoi(a[8:]); !ok {
				return l.fail(errAt(n, `invalid session cache "%s"`, a))
			}
		case strings.HasPrefix(a, "shared:") && len(a) > 7:
			rest := a[7:]
			i := strings.IndexByte(rest, ':')
			if i <= 0 {
				return l.fail(errAt(n, `invalid session cache "%s"`, a))
			}
			sz, ok := parseSize(rest[i+1:])
			if !ok {
				return l.fail(errAt(n, `invalid session cache "%s"`, a))
			}
			if sz < 8*4096 {
				return l.fail(errAt(n, `session cache "%s" is too small`, a))
			}
			if err := l.sslZone(n, rest[:i], sz); err != nil {
				return err
			}
		default:
			return l.fail(errAt(n, `invalid session cache "%s"`, a))
		}
	}
	lv.vals[n.name()] = &setting{v: strings.Join(n.args(), " "), pos: n.pos}
	return nil
}

// sslMode is the ssl merge's mode: which directive turned TLS on.
func (l *loader) sslMode(sv *level, sslOn bool, starttls StartTLS) string {
	switch {
	case sv.sslListen:
		return "listen ... ssl"
	case sslOn:
		return "ssl"
	case starttls != StartTLSOff:
		return "starttls"
	}
	return ""
}

// mergeSSL merges ngx_mail_ssl_module's settings and runs its checks.
// ssl_verify_client without a CA uses newer nginx's text (1.27.2+), where
// ssl_trusted_certificate alone is enough.
func (l *loader) mergeSSL(s *Server, sv *level) error {
	c := &s.SSL
	l.mergeSNI(s, sv) // mailgate-only (sni.go)
	// Directives with a default (the table's def) always have a value.
	if v := l.effOrDefault(s, sv, "ssl"); v != nil {
		c.SSLOn = v.(bool)
	}
	if v := l.effOrDefault(s, sv, "starttls"); v != nil {
		c.StartTLS = map[string]StartTLS{"off": StartTLSOff, "on": StartTLSOn, "only": StartTLSOnly}[v.(string)]
	}
	if v := l.effOrDefault(s, sv, "ssl_session_timeout"); v != nil {
		c.SessionTimeout = v.(time.Duration)
	}
	if v := l.effOrDefault(s, sv, "ssl_prefer_server_ciphers"); v != nil {
		c.PreferServerCiphers = v.(bool)
	}
	if v := l.effOrDefault(s, sv, "ssl_protocols"); v != nil {
		c.Protocols = orderedWords(v.(*bitmaskVal), sslProtocolNames)
	}
	if v := l.effOrDefault(s, sv, "ssl_verify_client"); v != nil {
		c.VerifyClient = map[string]VerifyClient{"off": VerifyOff, "on": VerifyOn, "optional": VerifyOptional, "optional_no_ca": VerifyOptionalNoCA}[v.(string)]
	}
	if v := l.effOrDefault(s, sv, "ssl_verify_depth"); v != nil {
		c.VerifyDepth = v.(int)
	}
	if v := l.eff(s, sv, "ssl_certificate"); v != nil {
		c.Certificates = l.confPaths(v.([]string))
	}
	if v := l.eff(s, sv, "ssl_certificate_key"); v != nil {
		c.CertificateKeys = l.confPaths(v.([]string))
	}
	if v := l.eff(s, sv, "ssl_password_file"); v != nil {
		c.PasswordFile = v.(string)
	}
	if v := l.eff(s, sv, "ssl_dhparam"); v != nil {
		c.DHParam = l.confPath(v.(string))
	}
	if v := l.effOrDefault(s, sv, "ssl_ecdh_curve"); v != nil {
		c.ECDHCurve = v.(string)
	}
	if v := l.eff(s, sv, "ssl_client_certificate"); v != nil {
		c.ClientCertificate = l.confPath(v.(string))
	}
	if v := l.eff(s, sv, "ssl_trusted_certificate"); v != nil {
		c.TrustedCertificate = l.confPath(v.(string))
	}
	if v := l.eff(s, sv, "ssl_crl"); v != nil {
		c.CRL = l.confPath(v.(string))
	}
	if v := l.effOrDefault(s, sv, "ssl_ciphers"); v != nil {
		c.Ciphers = v.(string)
	}
	if v := l.eff(s, sv, "ssl_conf_command"); v != nil {
		c.ConfCommands = v.([][2]string)
	}
	if v := l.effOrDefault(s, sv, "ssl_session_cache"); v != nil {
		c.SessionCache = v.(string)
	}
	if v := l.effOrDefault(s, sv, "ssl_session_tickets"); v != nil {
		c.SessionTickets = v.(bool)
	}
	if v := l.eff(s, sv, "ssl_session_ticket_key"); v != nil {
		c.SessionTicketKeys = l.confPaths(v.([]string))
	}
	if v := l.effOrDefault(s, sv, "ssl_certificate_compression"); v != nil {
		c.CertificateCompression = v.(bool)
	}

	mode := l.sslMode(sv, c.SSLOn, c.StartTLS)
	if mode == "" {
		return nil
	}
	pos := sv.sslPos
	if !sv.sslPosSet {
		pos = l.mail.sslPos
	}
	fail := func(format string, a ...any) error {
		return l.fail(&Diag{Msg: fmt.Sprintf(format, a...)})
	}
	if c.Certificates == nil {
		return fail(`no "ssl_certificate" is defined for the "%s" directive in %s`, mode, pos)
	}
	if c.CertificateKeys == nil {
		return fail(`no "ssl_certificate_key" is defined for the "%s" directive in %s`, mode, pos)
	}
	if len(c.CertificateKeys) < len(c.Certificates) {
		return fail(`no "ssl_certificate_key" is defined for certificate "%s" and the "%s" directive in %s`,
			rawLast(l.eff(s, sv, "ssl_certificate")), mode, pos)
	}
	if c.VerifyClient != VerifyOff && c.VerifyClient != VerifyOptionalNoCA && c.ClientCertificate == "" && c.TrustedCertificate != "" {
		// nginx 1.27.2+ takes ssl_trusted_certificate alone; 1.22.1 does not.
		l.unportable(s.Sources["ssl_verify_client"], `"ssl_verify_client" with "ssl_trusted_certificate" only`,
			"no ssl_client_certificate for ssl_verify_client")
	}
	if err := l.checkSSLFiles(c); err != nil {
		return err
	}
	return l.checkConfCommands(c) // sslconfcmd.go
}

func rawLast(v any) string {
	a := v.([]string)
	return a[len(a)-1]
}

func (l *loader) confPaths(a []string) []string {
	out := make([]string, len(a))
	for i, p := range a {
		if strings.HasPrefix(p, "data:") {
			out[i] = p
			continue
		}
		out[i] = l.confPath(p)
	}
	return out
}

// orderedWords lists a bitmask's words in table order.
func orderedWords(bv *bitmaskVal, names []string) []string {
	var out []string
	for i, nm := range names {
		if bv.mask&(1<<uint(i)) != 0 {
			out = append(out, nm)
		}
	}
	return out
}

// lintSSLLevel advises on the SSL directives of one level (mail{} or a
// server{}).
func lintSSLLevel(lv *level, adv advise) {
	if s := lv.get("ssl"); s != nil {
		adv(s.pos, `the "ssl" directive was removed in nginx 1.25.1`,
			`mailgate still accepts it like nginx 1.22.1; use "listen ... ssl" instead`)
	}
}

// lintSessionCacheLevel advises on ssl_session_cache shared: at one level.
func lintSessionCacheLevel(lv *level, adv advise) {
	if s := lv.get("ssl_session_cache"); s != nil && strings.Contains(s.v.(string), "shared:") {
		adv(s.pos, `"ssl_session_cache shared:" is per process in mailgate`,
			"the cache lives in the mailgate process; it is not shared with other instances or kept across restarts")
	}
}

// lintPlainPasswords warns about listeners that take a password without
// TLS.
func (l *loader) lintPlainPasswords(adv advise) {
	for _, s := range l.cfg.Mail.Servers {
		plain := false
		switch s.Protocol {
		case ProtoPOP3, ProtoIMAP:
			// USER/PASS and LOGIN always work, whatever *_auth says.
			plain = true
		case ProtoSMTP:
			plain = s.SMTP.Auth&(AuthPlain|AuthLogin) != 0
		}
		if !plain || s.SSL.StartTLS == StartTLSOnly || s.SSL.SSLOn {
			continue
		}
		for _, ls := range s.Listens {
			if ls.SSL || ls.Network == "unix" {
				continue
			}
			adv(ls.Pos, fmt.Sprintf("passwords may be sent in plain text on %s", ls.Text),
				`this `+s.Protocol+` listener accepts a password login without TLS; add "ssl" to the listen or use "starttls only"`)
		}
	}
}

// lintOldProtocols explains why TLSv1 and TLSv1.1 in ssl_protocols are
// never negotiated: OpenSSL 3 at security level 1 or above (Debian's
// default is 2; ssl_ciphers can set @SECLEVEL=0) has no signature algorithm for them, so nginx, and
// mailgate with it, fails those handshakes.
func (l *loader) lintOldProtocols(adv advise) {
	seen := map[Pos]bool{}
	for _, s := range l.cfg.Mail.Servers {
		pos, ok := s.Sources["ssl_protocols"]
		if !ok || seen[pos] || tlsconf.SecurityLevel(s.SSL.Ciphers) < 1 || !s.UsesTLS() {
			continue
		}
		var old []string
		modern := false
		for _, p := range s.SSL.Protocols {
			switch p {
			case "TLSv1", "TLSv1.1":
				old = append(old, p)
			case "TLSv1.2", "TLSv1.3":
				modern = true
			}
		}
		if len(old) == 0 {
			continue
		}
		seen[pos] = true
		what := strings.Join(old, " ") + " in \"ssl_protocols\" cannot complete a handshake"
		if !modern {
			what = "\"ssl_protocols\" lists no version a handshake can succeed with"
		}
		adv(pos, what,
			"OpenSSL 3, which Debian's nginx uses, has no signature algorithm for TLS 1.0 and 1.1 at security level 1 or above (Debian's default is 2), "+
				"so nginx fails those handshakes (\"no suitable signature algorithm\") whatever ssl_protocols lists, and mailgate does the same; "+
				"clients need TLS 1.2 or newer, or ssl_ciphers needs @SECLEVEL=0 (weak signatures) to allow them")
	}
}
