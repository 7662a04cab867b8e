package mail

// Certificates by the client's server name (mailgate-only
// ssl_certificate_by_name, docs/tls.md "Certificates by server name"), and
// the name for auth_http (auth_http_pass_ssl_server_name).
//
// nginx 1.22.1 hands all of a server's ssl_certificate pairs to OpenSSL,
// which picks one by key type (what the client's signature algorithms and
// cipher suites allow), never by name. crypto/tls on its own would prefer
// a certificate valid for the client's SNI, so certificatePicker keeps
// nginx's choice while the directive is off (by key type, and of several
// certificates of one key type the last, which replaced the others in
// OpenSSL); with it on, the certificates valid for the name come first,
// each chosen by key type as before, and a name none covers gets nginx's
// choice.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"

	"mailgate/confparse"
)

// certificatePicker is tls.Config.GetCertificate for a server with more
// than one certificate. crypto/tls calls it only when the client sent a
// server name; without one its own choice is by key type already.
func certificatePicker(certs []tls.Certificate, byName bool) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	for i := range certs {
		if certs[i].Leaf == nil && len(certs[i].Certificate) > 0 {
			certs[i].Leaf, _ = x509.ParseCertificate(certs[i].Certificate[0])
		}
	}
	fallback := lastPerKeyType(certs)
	return func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if byName && h.ServerName != "" {
			// SupportsCertificate checks the key type and, with a server
			// name in the hello, that the certificate is valid for it.
			for i := range certs {
				if h.SupportsCertificate(&certs[i]) == nil {
					return &certs[i], nil
				}
			}
		}
		nameless := *h
		nameless.ServerName = ""
		for _, c := range fallback {
			if nameless.SupportsCertificate(c) == nil {
				return c, nil
			}
		}
		return fallback[0], nil
	}
}

// lastPerKeyType is nginx's set of certificates: OpenSSL keeps one
// certificate per key type, so a later ssl_certificate of the same type
// replaces an earlier one. The types keep the order of their first
// certificate.
func lastPerKeyType(certs []tls.Certificate) []*tls.Certificate {
	var out []*tls.Certificate
	var kinds []string
	for i := range certs {
		k := keyType(&certs[i])
		if j := slices.Index(kinds, k); j >= 0 {
			out[j] = &certs[i]
			continue
		}
		kinds = append(kinds, k)
		out = append(out, &certs[i])
	}
	return out
}

// keyType is OpenSSL's certificate slot of c's key.
func keyType(c *tls.Certificate) string {
	switch c.PrivateKey.(type) {
	case *rsa.PrivateKey:
		return "rsa"
	case *ecdsa.PrivateKey:
		return "ecc"
	case ed25519.PrivateKey:
		return "ed25519"
	}
	return fmt.Sprintf("%T", c.PrivateKey)
}

// SNIHeaderName is the auth_http request header with the client's server
// name.
const SNIHeaderName = "Auth-SSL-Server-Name"

// addSNIHeader adds Auth-SSL-Server-Name when auth_http_pass_ssl_server_name
// is on and the TLS client sent a server name that is a host name (crypto/tls
// has already refused names with bytes a host name cannot hold).
func addSNIHeader(conf *confparse.Server, s *Session, extra [][2]string) [][2]string {
	if conf == nil || !conf.SSL.SNI.PassServerName || s.TLS == nil || s.TLS.ServerName == "" {
		return extra
	}
	name := s.TLS.ServerName
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return extra
		}
	}
	if len(name) > 255 {
		return extra
	}
	return append(extra, [2]string{SNIHeaderName, name})
}

// namedCertificates are the certificates valid for name, or all of them
// when none is (or the client sent no name).
func namedCertificates(certs []tls.Certificate, name string) []tls.Certificate {
	if name == "" || len(certs) < 2 {
		return certs
	}
	var named []tls.Certificate
	for _, c := range certs {
		if c.Leaf != nil && c.Leaf.VerifyHostname(name) == nil {
			named = append(named, c)
		}
	}
	if len(named) == 0 {
		return certs
	}
	return named
}
