package confparse

import (
	"errors"
	"fmt"
	"strings"

	"mailgate/mail/tlsconf"
)

// checkSSLFiles is the second half of ngx_mail_ssl_module's merge for a
// server that uses TLS: what nginx hands to OpenSSL, in nginx 1.22.1's
// order (cipher list, certificates and keys, client verification files,
// DH parameters, groups, session ticket keys), judged by package tlsconf
// with nginx's messages. Only servers that use TLS get here, as in nginx.
func (l *loader) checkSSLFiles(c *SSLConf) error {
	fail := func(err error) error {
		return l.fail(&Diag{Msg: sslErrText(err.Error())})
	}
	if _, err := tlsconf.EvalCiphers(c.Ciphers); err != nil {
		return fail(err)
	}
	var passwords []string
	if c.PasswordFile != "" {
		pw, err := tlsconf.ReadPasswords(c.PasswordFile)
		if err != nil {
			// Read when the directive was; gone since.
			return l.fail(&Diag{Msg: fmt.Sprintf(`open() "%s" failed %s`, c.PasswordFile, sysErr(err))})
		}
		passwords = pw
	}
	for i, cert := range c.Certificates {
		if _, err := tlsconf.LoadKeyPair(cert, c.CertificateKeys[i], passwords, tlsconf.SecurityLevel(c.Ciphers)); err != nil {
			return fail(err)
		}
	}
	if c.VerifyClient != VerifyOff {
		if c.VerifyClient != VerifyOptionalNoCA && c.ClientCertificate == "" && c.TrustedCertificate == "" {
			return fail(errors.New("no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client"))
		}
		for _, f := range []string{c.ClientCertificate, c.TrustedCertificate} {
			if f == "" {
				continue
			}
			if _, _, err := tlsconf.LoadCAFile(f); err != nil {
				return fail(err)
			}
		}
		if c.CRL != "" {
			if _, _, err := tlsconf.LoadCRLFile(c.CRL); err != nil {
				return fail(err)
			}
		}
	}
	if c.DHParam != "" {
		if err := tlsconf.CheckDHParam(c.DHParam, tlsconf.SecurityLevel(c.Ciphers)); err != nil {
			return fail(err)
		}
	}
	if _, err := tlsconf.Curves(c.ECDHCurve); err != nil {
		return fail(err)
	}
	for _, k := range c.SessionTicketKeys {
		if _, err := tlsconf.LoadTicketKey(k); err != nil {
			var fe *tlsconf.FileError
			if errors.As(err, &fe) {
				return l.fail(&Diag{Msg: sslErrText(fe.Msg), Pos: l.mailEnd})
			}
			return l.fail(&Diag{Msg: fmt.Sprintf(`open() "%s" failed %s`, k, sysErr(err)), Pos: l.mailEnd})
		}
	}
	return nil
}

// sslErrText cuts an OpenSSL failure message where nginx's ngx_ssl_error
// does: the message and its " (SSL: ...)" part share a 1024-byte buffer
// (NGX_MAX_CONF_ERRSTR) that keeps its last byte, then ")" closes it.
func sslErrText(msg string) string {
	const room = 1024 - 1
	i := strings.Index(msg, " (SSL:")
	if i < 0 || len(msg) <= room+1 || !strings.HasSuffix(msg, ")") {
		return msg
	}
	return msg[:min(len(msg)-1, room)] + ")"
}
