package mail

import (
	"errors"
	"strings"

	"mailgate/confparse"
	"mailgate/mail/errlog"
	"mailgate/mail/tlsconf"
)

// applyConfCommands returns ssl as the ssl_conf_command lines leave it:
// CipherString replaces ssl_ciphers, Groups/Curves ssl_ecdh_curve,
// Options [-]SessionTicket ssl_session_tickets, Options
// [-]ServerPreference ssl_prefer_server_ciphers, and Certificate and
// PrivateKey add a pair after those of ssl_certificate (the last pair of a
// key type is the one served, as in OpenSSL, see sni.go).
func applyConfCommands(ssl *confparse.SSLConf, cmds *tlsconf.ConfCommands) *confparse.SSLConf {
	if len(ssl.ConfCommands) == 0 {
		return ssl
	}
	eff := *ssl
	if cmds.CipherString != nil {
		eff.Ciphers = *cmds.CipherString
	}
	if cmds.Groups != nil {
		eff.ECDHCurve = *cmds.Groups
	}
	if cmds.Tickets != nil {
		eff.SessionTickets = *cmds.Tickets
	}
	if cmds.ServerPreference != nil {
		eff.PreferServerCiphers = *cmds.ServerPreference
	}
	if n := len(cmds.Certificates); n > 0 {
		eff.Certificates = append(append([]string(nil), ssl.Certificates...), cmds.Certificates...)
		eff.CertificateKeys = append([]string(nil), ssl.CertificateKeys...)
		for i, cf := range cmds.Certificates {
			key := cf // a PEM file with the certificate and its key
			if i < len(cmds.PrivateKeys) {
				key = cmds.PrivateKeys[i]
			}
			eff.CertificateKeys = append(eff.CertificateKeys, key)
		}
	}
	return &eff
}

// confCommandVersions narrows ssl_protocols' range by MinProtocol and
// MaxProtocol (OpenSSL applies both: the options of ssl_protocols and the
// bounds).
func confCommandVersions(cmds *tlsconf.ConfCommands, lo, hi uint16) (uint16, uint16) {
	if lo == 0 {
		return lo, hi
	}
	if cmds.MinSet && cmds.MinVersion > lo {
		lo = cmds.MinVersion
	}
	if cmds.MaxSet && cmds.MaxVersion != 0 && cmds.MaxVersion < hi {
		hi = cmds.MaxVersion
	}
	return lo, hi
}

// errNoTLS13Suites refuses every handshake of a server whose
// ssl_conf_command Ciphersuites leaves TLS 1.3 without a suite while
// ssl_protocols (or MaxProtocol) still enables it: OpenSSL then has "no
// ciphers enabled for max supported SSL/TLS version" and nginx logs that
// at crit. (An empty Ciphersuites with TLS 1.2 as the highest version is
// fine.)
var errNoTLS13Suites = errors.New("tls: ssl_conf_command Ciphersuites leaves TLS 1.3 no suite")

// handshakeErrorLevel is the level nginx logs a failed handshake at:
// info for what the client caused, crit for a server without ciphers.
func handshakeErrorLevel(err error) errlog.Level {
	if err != nil && strings.Contains(err.Error(), errNoTLS13Suites.Error()) {
		return errlog.Crit
	}
	return errlog.Info
}
