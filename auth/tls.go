package auth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"mailgate/confparse"
)

// clientTLS builds the TLS settings for https:// auth servers
// (auth_http_ssl_*). It returns nil, nil when they are not in use, and an
// error in nginx's words when a file cannot be used; requests to an
// https:// server then fail with that error.
func clientTLS(c *confparse.AuthHTTPSSL) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: !c.Verify, //nolint:gosec // auth_http_ssl_verify off is the user's choice
		ServerName:         c.Name,
	}
	if c.TrustedCertificate != "" {
		pem, err := os.ReadFile(c.TrustedCertificate)
		if err != nil {
			return nil, fmt.Errorf(`cannot load auth_http_ssl_trusted_certificate "%s": %v`, c.TrustedCertificate, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf(`no certificate in auth_http_ssl_trusted_certificate "%s"`, c.TrustedCertificate)
		}
		conf.RootCAs = pool
	}
	if c.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(c.Certificate, c.Key)
		if err != nil {
			return nil, fmt.Errorf(`cannot load auth_http_ssl_certificate "%s": %v`, c.Certificate, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
