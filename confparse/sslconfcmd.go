package confparse

import (
	"fmt"

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
		pos := s.Sources["ssl_conf_command"]
		for _, u := range cmds.Unhonoured {
			msg := fmt.Sprintf(`"ssl_conf_command %s %s" is not honoured`, u.Name, u.Value)
			if k := msg + pos.String(); !seen[k] {
				seen[k] = true
				adv(pos, msg, u.Why)
			}
		}
	}
}
