package confparse

// mailgate-only SNI directives (issue 14, docs/tls.md "Certificates by
// server name"): ssl_certificate_by_name chooses among a server's
// ssl_certificate pairs by the client's server name first (nginx chooses by
// key type only), and auth_http_pass_ssl_server_name sends that name to
// auth_http. Off unless written; `mailgate check` lists every use, and
// warns about a server_name that none of a server's certificates covers.

import (
	"crypto/x509"

	"mailgate/mail/tlsconf"
)

func sniSSLDirectives() []*directive {
	return []*directive{
		{name: "ssl_certificate_by_name", module: "mail_ssl", ctx: ctxMail | ctxServer, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
	}
}

func sniAuthDirectives() []*directive {
	return []*directive{
		{name: "auth_http_pass_ssl_server_name", module: "mail_auth_http", ctx: ctxMail | ctxServer, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
	}
}

// SNIConf holds the mailgate-only SNI settings of a server.
type SNIConf struct {
	// CertificateByName: ssl_certificate_by_name on.
	CertificateByName bool
	// PassServerName: auth_http_pass_ssl_server_name on (Auth-SSL-Server-Name).
	PassServerName bool
}

func (l *loader) mergeSNI(s *Server, sv *level) {
	s.SSL.SNI.CertificateByName = l.effOrDefault(s, sv, "ssl_certificate_by_name").(bool)
	s.SSL.SNI.PassServerName = l.effOrDefault(s, sv, "auth_http_pass_ssl_server_name").(bool)
}

// lintServerNameCertificates warns about a server whose explicit
// server_name none of its certificates is valid for: clients that check
// the name (all of them, for mail over TLS) then refuse it.
func (l *loader) lintServerNameCertificates(adv advise) {
	for _, s := range l.cfg.Mail.Servers {
		pos, explicit := s.Sources["server_name"]
		c := &s.SSL
		if !explicit || len(c.Certificates) == 0 || len(c.CertificateKeys) < len(c.Certificates) {
			continue
		}
		var passwords []string
		if c.PasswordFile != "" {
			pw, err := tlsconf.ReadPasswords(c.PasswordFile)
			if err != nil {
				continue
			}
			passwords = pw
		}
		covered, loaded := false, false
		for i, f := range c.Certificates {
			kp, err := tlsconf.LoadKeyPair(f, c.CertificateKeys[i], passwords, tlsconf.SecurityLevel(c.Ciphers))
			if err != nil || len(kp.Certificate) == 0 {
				continue
			}
			leaf := kp.Leaf
			if leaf == nil {
				if leaf, err = x509.ParseCertificate(kp.Certificate[0]); err != nil {
					continue
				}
			}
			loaded = true
			if leaf.VerifyHostname(s.Core.ServerName) == nil {
				covered = true
				break
			}
		}
		if loaded && !covered {
			adv(pos, `"server_name `+s.Core.ServerName+`" is not covered by any "ssl_certificate" of its server`,
				"clients that check the certificate's name refuse the connection; add a certificate for it (with ssl_certificate_by_name on, mailgate picks it by the name the client asks for)")
		}
	}
}
