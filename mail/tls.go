package mail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// needsTLS: nginx loads certificates only for servers that use "listen ...
// ssl", "ssl on" or a starttls other than off.
func needsTLS(sc *confparse.Server) bool {
	if sc.SSL.SSLOn || sc.SSL.StartTLS != confparse.StartTLSOff {
		return true
	}
	for _, l := range sc.Listens {
		if l.SSL {
			return true
		}
	}
	return false
}

var tlsVersions = map[string]uint16{
	"TLSv1":   tls.VersionTLS10,
	"TLSv1.1": tls.VersionTLS11,
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

// loadTLS builds the server block's TLS configuration from its ssl_*
// directives.
func loadTLS(sc *confparse.Server) (*tls.Config, error) {
	c := &tls.Config{NextProtos: []string{sc.Protocol}}
	for i, cf := range sc.SSL.Certificates {
		if i >= len(sc.SSL.CertificateKeys) {
			return nil, fmt.Errorf("no \"ssl_certificate_key\" is defined for certificate \"%s\"", cf)
		}
		kp, err := tls.LoadX509KeyPair(cf, sc.SSL.CertificateKeys[i])
		if err != nil {
			return nil, fmt.Errorf("cannot load certificate \"%s\": %v", cf, err)
		}
		c.Certificates = append(c.Certificates, kp)
	}
	var lo, hi uint16
	for _, p := range sc.SSL.Protocols {
		v, ok := tlsVersions[p]
		if !ok {
			continue
		}
		if lo == 0 || v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	if lo != 0 {
		c.MinVersion, c.MaxVersion = lo, hi
	}
	if sc.SSL.VerifyClient != confparse.VerifyOff {
		pool := x509.NewCertPool()
		for _, f := range []string{sc.SSL.ClientCertificate, sc.SSL.TrustedCertificate} {
			if f == "" {
				continue
			}
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("cannot load \"%s\": %v", f, err)
			}
			pool.AppendCertsFromPEM(pem)
		}
		c.ClientCAs = pool
		// Verification results are judged by the engine after the
		// handshake, as nginx does (it answers with the protocol's
		// certificate error instead of failing the handshake).
		c.ClientAuth = tls.RequestClientCert
	}
	return c, nil
}

// certReplies are the protocols' replies to a client certificate that
// failed verification, and to a missing one under ssl_verify_client on.
var certReplies = map[string][2]string{
	confparse.ProtoPOP3: {"-ERR SSL certificate error\r\n", "-ERR No required SSL certificate\r\n"},
	confparse.ProtoIMAP: {"* BYE SSL certificate error\r\n", "* BYE No required SSL certificate\r\n"},
	confparse.ProtoSMTP: {"421 4.7.1 SSL certificate error\r\n", "421 4.7.1 No required SSL certificate\r\n"},
}

// verifyCert judges the client certificate after the handshake as nginx
// does. It reports whether the session goes on.
func (e *engine) verifyCert() bool {
	s := e.s
	mode := e.sc.conf.SSL.VerifyClient
	if mode == confparse.VerifyOff || s.TLS == nil {
		return true
	}
	replies := certReplies[e.sc.conf.Protocol]
	certs := s.TLS.PeerCertificates
	if len(certs) == 0 {
		s.certVerify = "NONE"
		if mode == confparse.VerifyOn {
			s.Logf(errlog.Info, "client sent no required SSL certificate")
			s.WriteString(replies[1])
			e.flush() //nolint:errcheck
			return false
		}
		return true
	}
	opts := x509.VerifyOptions{
		Roots:         s.TLSConfig.ClientCAs,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	if err == nil {
		s.certVerify = "SUCCESS"
		return true
	}
	code, text := 20, "unable to get local issuer certificate"
	if certs[0].Subject.String() == certs[0].Issuer.String() {
		code, text = 18, "self-signed certificate"
	}
	var ie x509.CertificateInvalidError
	if errors.As(err, &ie) && ie.Reason == x509.Expired {
		code, text = 10, "certificate has expired"
	}
	s.certVerify = "FAILED:" + text
	if mode == confparse.VerifyOptionalNoCA && (code == 18 || code == 20 || code == 19 || code == 2 || code == 21) {
		return true
	}
	s.Logf(errlog.Info, "client SSL certificate verify error: (%d:%s)", code, text)
	s.WriteString(replies[0])
	e.flush() //nolint:errcheck
	return false
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return "unknown"
}

// opensslNames maps Go's cipher suites to OpenSSL's names, which nginx
// sends in Auth-SSL-Cipher.
var opensslNames = map[uint16]string{
	tls.TLS_AES_128_GCM_SHA256:                        "TLS_AES_128_GCM_SHA256",
	tls.TLS_AES_256_GCM_SHA384:                        "TLS_AES_256_GCM_SHA384",
	tls.TLS_CHACHA20_POLY1305_SHA256:                  "TLS_CHACHA20_POLY1305_SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
}

func opensslCipherName(id uint16) string {
	if n, ok := opensslNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}
