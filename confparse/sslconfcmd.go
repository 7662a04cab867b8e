package confparse

import (
	"fmt"
	"strings"

	"mailgate/mail/tlsconf"
)

// checkConfCommands judges a TLS server's ssl_conf_command lines as
// OpenSSL does when nginx applies them (last in ngx_mail_ssl_merge_conf):
// an unknown command or a value OpenSSL refuses fails with nginx's line,
// `SSL_CONF_cmd("NAME", "VALUE") failed (SSL: ...)`, which has no file
// position.
func (l *loader) checkConfCommands(c *SSLConf) error {
	if _, err := tlsconf.ParseConfCommands(c.ConfCommands); err != nil {
		return l.fail(&Diag{Msg: sslErrText(err.Error())})
	}
	return nil
}

// lintConfCommands names each ssl_conf_command that nginx accepts and
// crypto/tls cannot honour (or honours in part), once per directive.
func (l *loader) lintConfCommands(adv advise) {
	seen := map[string]bool{}
	for _, s := range l.cfg.Mail.Servers {
		if !s.UsesTLS() || len(s.SSL.ConfCommands) == 0 {
			continue
		}
		cmds, err := tlsconf.ParseConfCommands(s.SSL.ConfCommands)
		if err != nil {
			continue
		}
		for _, u := range cmds.Unhonoured {
			pos := l.confCmdAt(s, u.Index)
			msg := fmt.Sprintf(`"ssl_conf_command %s %s" is not honoured`, u.Name, u.Value)
			if k := msg + pos.String(); !seen[k] {
				seen[k] = true
				adv(pos, msg, u.Why)
			}
		}
	}
}

// lintTLSOrder advises where crypto/tls cannot follow OpenSSL's choice:
// an empty Ciphersuites while TLS 1.3 is on (nginx then refuses every
// handshake, and mailgate with it), and server preference, which orders
// TLS 1.2 suites only (crypto/tls picks among TLS 1.3 suites itself).
func (l *loader) lintTLSOrder(adv advise) {
	seen := map[Pos]bool{}
	for _, s := range l.cfg.Mail.Servers {
		if !s.UsesTLS() {
			continue
		}
		cmds, err := tlsconf.ParseConfCommands(s.SSL.ConfCommands)
		if err != nil {
			continue
		}
		tls13 := false
		for _, p := range s.SSL.Protocols {
			tls13 = tls13 || p == "TLSv1.3"
		}
		if cmds.MaxSet && cmds.MaxVersion != 0 && cmds.MaxVersion < 0x0304 {
			tls13 = false
		}
		if pos := l.confCmdAt(s, -1); cmds.NoTLS13 && tls13 && !seen[pos] {
			seen[pos] = true
			adv(pos, `"ssl_conf_command Ciphersuites" leaves TLS 1.3 no suite while TLS 1.3 is enabled`,
				"OpenSSL then refuses every handshake (\"no ciphers available\"), in nginx and in mailgate alike; "+
					"remove TLSv1.3 from ssl_protocols or add \"ssl_conf_command MaxProtocol TLSv1.2\"")
		}
		prefer := s.SSL.PreferServerCiphers
		pos, ok := s.Sources["ssl_prefer_server_ciphers"]
		if cmds.ServerPreference != nil {
			prefer, pos, ok = *cmds.ServerPreference, l.confCmdAt(s, cmds.ServerPreferenceAt), true
		}
		if prefer && ok && tls13 && !seen[pos] {
			seen[pos] = true
			adv(pos, "server cipher preference orders TLS 1.2 suites only",
				"crypto/tls chooses the TLS 1.3 suite itself (AES-GCM first on machines with AES instructions, else ChaCha20), where OpenSSL takes its own first (TLS_AES_256_GCM_SHA384)")
		}
	}
}

// lintSessionResumption advises on what a session cache cannot do in
// mailgate: TLS 1.2 clients resume only with tickets (crypto/tls has no
// session-ID resumption); with tickets off the ticket is just an id into
// the cache.
func (l *loader) lintSessionResumption(adv advise) {
	seen := map[Pos]bool{}
	for _, s := range l.cfg.Mail.Servers {
		pos, ok := s.Sources["ssl_session_cache"]
		if !ok || seen[pos] || !s.UsesTLS() {
			continue
		}
		spec, err := tlsconf.ParseSessionCache(s.SSL.SessionCache)
		if err != nil || !spec.Stores() {
			continue
		}
		seen[pos] = true
		adv(pos, `"ssl_session_cache" resumes TLS 1.2 sessions only for clients that accept session tickets`,
			"crypto/tls has no session-ID resumption: the session is kept in mailgate's cache and the client receives its id as a ticket "+
				"(with ssl_session_tickets off as well); a TLS 1.2 client without ticket support gets a full handshake each time")
	}
}

// sslZone declares the shared zone of "ssl_session_cache shared:NAME:size"
// as ngx_shared_memory_add does: one name, one size.
func (l *loader) sslZone(n *node, name string, size int64) error {
	if l.sslZones == nil {
		l.sslZones = map[string]int64{}
	}
	if old, ok := l.sslZones[name]; ok && old != size {
		return l.fail(errAt(n, `the size %d of shared memory zone "%s" conflicts with already declared size %d`, size, name, old))
	}
	l.sslZones[name] = size
	return nil
}

// setConfCommand is setKeyval, remembering where each command was
// written.
func setConfCommand(l *loader, lv *level, n *node) error {
	if l.confCmdPos == nil {
		l.confCmdPos = map[[2]string]Pos{}
	}
	k := [2]string{n.args()[0], n.args()[1]}
	if _, ok := l.confCmdPos[k]; !ok {
		l.confCmdPos[k] = n.pos
	}
	return setKeyval(l, lv, n)
}

// confCmdAt is where server s's i-th ssl_conf_command was written (i < 0:
// the last one with an empty Ciphersuites, else the directive's source).
func (l *loader) confCmdAt(s *Server, i int) Pos {
	cmds := s.SSL.ConfCommands
	if i < 0 {
		for j, kv := range cmds {
			if strings.EqualFold(kv[0], "Ciphersuites") && kv[1] == "" {
				i = j
			}
		}
	}
	if i >= 0 && i < len(cmds) {
		if p, ok := l.confCmdPos[cmds[i]]; ok {
			return p
		}
	}
	return s.Sources["ssl_conf_command"]
}
