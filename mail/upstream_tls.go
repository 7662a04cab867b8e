package mail

// mailgate-only TLS to upstreams (proxy_ssl_*, proxy_starttls;
// docs/upstream-tls.md): the client tls.Config of a server block, built
// once per generation with its session cache, and the per-login choice
// (the configured mode, or the auth server's Auth-SSL with
// proxy_ssl_auth_header on).

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/mail/tlsconf"
	"mailgate/proxy"
)

// upstreamTLS is a server block's TLS client side towards its upstreams.
type upstreamTLS struct {
	conf   *confparse.UpstreamTLSConf
	base   *tls.Config
	verify *tlsconf.ClientVerify // nil: proxy_ssl_verify off
}

// loadUpstreamTLS builds the server block's upstream TLS client
// configuration; nil when no login of the server can use TLS.
func loadUpstreamTLS(sc *confparse.Server) (*upstreamTLS, error) {
	c := &sc.Proxy.TLS
	if !c.Enabled() {
		return nil, nil
	}
	ciphers := c.Ciphers
	if ciphers == "" {
		ciphers = "DEFAULT"
	}
	level := tlsconf.SecurityLevel(ciphers)
	suites, err := tlsconf.GoCipherSuites(ciphers)
	if err != nil {
		return nil, err
	}
	// The chain and the name are checked after the handshake, as nginx
	// does (SSL_get_verify_result, ngx_ssl_check_host), so that the log
	// says which check failed.
	base := &tls.Config{InsecureSkipVerify: true, CipherSuites: suites} //nolint:gosec // verified in proxy.(*dialog).handshake
	protocols := c.Protocols
	if len(protocols) == 0 {
		protocols = []string{"TLSv1.2", "TLSv1.3"}
	}
	for _, p := range protocols {
		v, ok := tlsVersions[p]
		if !ok {
			continue
		}
		if base.MinVersion == 0 || v < base.MinVersion {
			base.MinVersion = v
		}
		if v > base.MaxVersion {
			base.MaxVersion = v
		}
	}
	if c.Certificate != "" {
		kp, err := tlsconf.LoadKeyPair(c.Certificate, c.CertificateKey, nil, level)
		if err != nil {
			return nil, err
		}
		// OpenSSL sends the configured certificate whatever CA names the
		// server asks for; crypto/tls would send none on a mismatch.
		base.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	if c.SessionReuse {
		base.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	u := &upstreamTLS{conf: c, base: base}
	if c.Verify {
		roots, _, err := tlsconf.LoadCAFile(c.TrustedCertificate)
		if err != nil {
			return nil, err
		}
		depth := c.VerifyDepth
		if depth == 0 {
			depth = 1
		}
		u.verify = &tlsconf.ClientVerify{Roots: roots, Depth: depth, Level: level, ServerPurpose: true}
	}
	return u, nil
}

// params is the TLS of one login to res's upstream: nil for a plain
// connection, or an error when the auth server's Auth-SSL is not one of
// on, off, starttls (the login then fails: credentials never go out in
// the clear by mistake).
func (u *upstreamTLS) params(res *auth.Result) (*proxy.UpstreamTLS, error) {
	if u == nil {
		return nil, nil
	}
	mode := u.conf.Mode
	if u.conf.AuthHeader && res.UpstreamSSL != "" {
		switch strings.ToLower(res.UpstreamSSL) {
		case "on":
			mode = confparse.UpstreamSSL
		case "starttls":
			mode = confparse.UpstreamStartTLS
		case "off":
			mode = confparse.UpstreamPlain
		default:
			return nil, &proxy.LoginError{
				Log:    fmt.Sprintf(`auth http server sent invalid "Auth-SSL" header: "%s"`, res.UpstreamSSL),
				Level:  proxy.LevelError,
				Action: proxy.ActionConnecting,
			}
		}
	}
	if mode == confparse.UpstreamPlain {
		return nil, nil
	}
	name := u.conf.Name
	if name == "" {
		name = upstreamHost(res)
	}
	cfg := u.base
	if u.conf.ServerName {
		cfg = u.base.Clone()
		cfg.ServerName = name
	}
	t := &proxy.UpstreamTLS{StartTLS: mode == confparse.UpstreamStartTLS, Config: cfg, Name: name}
	if v := u.verify; v != nil {
		t.Verify = func(chain []*x509.Certificate) (int, string) {
			code := v.VerifyClientChain(chain, time.Now())
			return code, tlsconf.VerifyErrorText(code)
		}
	}
	return t, nil
}

// upstreamHost is the Auth-Server header as sent (an address, or a host
// name where those are allowed): ServerText without its ":port".
func upstreamHost(res *auth.Result) string {
	if i := strings.LastIndexByte(res.ServerText, ':'); i >= 0 {
		return res.ServerText[:i]
	}
	return res.Server.Addr().String()
}
