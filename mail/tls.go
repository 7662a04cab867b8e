package mail

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"mailgate/confparse"
	"mailgate/mail/errlog"
	"mailgate/mail/tlsconf"
)

var tlsVersions = map[string]uint16{
	"TLSv1":   tls.VersionTLS10,
	"TLSv1.1": tls.VersionTLS11,
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

// loadTLS builds the server block's TLS configuration from its ssl_*
// directives; it is the one place that turns confparse.SSLConf into a
// tls.Config. Files and values are judged by package tlsconf, which the
// load-time check uses too, so the errors are nginx's messages.
//
// What crypto/tls cannot do as OpenSSL does: TLS 1.3 suites are not
// configurable (as in nginx, ssl_ciphers leaves them alone) and Go picks
// among them by its own preference; ssl_dhparam is only checked (Go has no
// finite-field DHE); groups Go lacks (x448, ffdhe, brainpool) are left out
// of ssl_ecdh_curve; ssl_session_cache resumes sessions only through
// tickets that carry an id into the cache (Go has no TLS 1.2 session-ID
// resumption; see tlscache.go and docs/tls.md).
//
// An empty ssl_ciphers or ssl_ecdh_curve (a Server not made by confparse,
// which refuses both) means nginx's default.
func loadTLS(sc *confparse.Server) (*tls.Config, error) {
	// ssl_conf_command comes last in nginx and overrides the directives
	// it has a meaning for (confcmd.go); the others are only checked.
	cmds, err := tlsconf.ParseConfCommands(sc.SSL.ConfCommands)
	if err != nil {
		return nil, err
	}
	ssl := applyConfCommands(&sc.SSL, cmds)
	c := &tls.Config{NextProtos: []string{sc.Protocol}}
	ciphers, curve := ssl.Ciphers, ssl.ECDHCurve
	if ciphers == "" {
		ciphers = "HIGH:!aNULL:!MD5"
	}
	if curve == "" {
		curve = "auto"
	}
	// OpenSSL's security level (@SECLEVEL in ssl_ciphers, else Debian's
	// 2) judges keys, digests and DH parameters, as in nginx.
	level := tlsconf.SecurityLevel(ciphers)
	suites, err := tlsconf.GoCipherSuites(ciphers)
	if err != nil {
		return nil, err
	}
	c.CipherSuites = suites
	var passwords []string
	if ssl.PasswordFile != "" {
		if passwords, err = tlsconf.ReadPasswords(ssl.PasswordFile); err != nil {
			return nil, fmt.Errorf("cannot read ssl_password_file: %w", err)
		}
	}
	for i, cf := range ssl.Certificates {
		if i >= len(ssl.CertificateKeys) {
			return nil, fmt.Errorf("no \"ssl_certificate_key\" is defined for certificate \"%s\"", cf)
		}
		kp, err := tlsconf.LoadKeyPair(cf, ssl.CertificateKeys[i], passwords, level)
		if err != nil {
			return nil, err
		}
		c.Certificates = append(c.Certificates, kp)
	}
	certs := c.Certificates
	if len(certs) > 1 {
		// Every handshake asks certificatePicker (sni.go), with a server
		// name or without: crypto/tls's own choice differs from nginx's.
		c.GetCertificate = certificatePicker(certs, ssl.SNI.CertificateByName)
		c.Certificates = nil
	}
	var lo, hi uint16
	for _, p := range ssl.Protocols {
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
	lo, hi = confCommandVersions(cmds, lo, hi)
	if lo != 0 {
		c.MinVersion, c.MaxVersion = lo, hi
	}
	if ssl.DHParam != "" {
		if err := tlsconf.CheckDHParam(ssl.DHParam, level); err != nil {
			return nil, err
		}
	}
	curves, err := tlsconf.Curves(curve)
	if err != nil {
		return nil, err
	}
	if len(curves) > 0 {
		c.CurvePreferences = curves
	}
	if err := setSessions(c, ssl, certs); err != nil {
		return nil, err
	}
	if ssl.VerifyClient != confparse.VerifyOff {
		v, err := loadVerifier(ssl, level)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = v.roots
		setVerifier(c, v)
		// Verification results are judged by the engine after the
		// handshake, as nginx does (it answers with the protocol's
		// certificate error instead of failing the handshake).
		c.ClientAuth = tls.RequestClientCert
	}
	// OpenSSL 3 at security level 1 or more (Debian's default is 2) has
	// no signature algorithm for TLS 1.0 and 1.1 (MD5-SHA1 and SHA-1 fall
	// below it), so nginx fails those handshakes whatever ssl_protocols
	// lists, unless ssl_ciphers lowers the level with @SECLEVEL=0. The
	// versions stay in MinVersion so that the same version is negotiated,
	// and then refused.
	c.GetConfigForClient = opensslSuiteChoice(c, certs, ssl.PreferServerCiphers, level >= 1, ssl.SNI.CertificateByName)
	if cmds.NoTLS13 && c.MaxVersion >= tls.VersionTLS13 {
		// "ssl_conf_command Ciphersuites" with no suite while TLS 1.3 is
		// enabled: OpenSSL refuses every handshake (tlsconfcmd.go).
		c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, errNoTLS13Suites }
	}
	return c, nil
}

// setSessions applies ssl_session_cache, ssl_session_tickets,
// ssl_session_ticket_key and ssl_session_timeout. A ticket carries its
// expiry (in SessionState.Extra) and is refused after ssl_session_timeout,
// as OpenSSL refuses a session older than its timeout; the lifetime hint
// Go sends stays its own. With tickets off, a session cache (builtin or
// shared) resumes sessions from a store in the process (tlscache.go);
// without one nothing resumes.
func setSessions(c *tls.Config, ssl *confparse.SSLConf, certs []tls.Certificate) error {
	spec, err := tlsconf.ParseSessionCache(ssl.SessionCache)
	if err != nil {
		return err
	}
	if !ssl.SessionTickets {
		if !spec.Stores() {
			c.SessionTicketsDisabled = true
			return nil
		}
		var cas []byte
		if ssl.VerifyClient != confparse.VerifyOff && ssl.ClientCertificate != "" {
			cas, _ = os.ReadFile(ssl.ClientCertificate) // a failure is loadVerifier's error
		}
		setSessionCache(c, ssl, spec, sessionContext(certs, cas))
		return nil
	}
	if len(ssl.SessionTicketKeys) > 0 {
		var keys [][32]byte
		for _, f := range ssl.SessionTicketKeys {
			k, err := tlsconf.LoadTicketKey(f)
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		c.SetSessionTicketKeys(keys)
	} else {
		// One random key for the server's lifetime, as OpenSSL makes
		// when nginx has no ssl_session_ticket_key (and set explicitly,
		// so that the per-handshake clones of opensslSuiteChoice share it).
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			return err
		}
		c.SetSessionTicketKeys([][32]byte{k})
	}
	timeout := ssl.SessionTimeout
	c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		exp := make([]byte, len(ticketExpiry)+8)
		copy(exp, ticketExpiry)
		binary.BigEndian.PutUint64(exp[len(ticketExpiry):], uint64(time.Now().Add(timeout).Unix()))
		ss.Extra = append(ss.Extra, exp)
		return c.EncryptTicket(cs, ss)
	}
	c.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := c.DecryptTicket(identity, cs)
		if ss == nil || err != nil {
			return nil, err
		}
		for _, e := range ss.Extra {
			if len(e) == len(ticketExpiry)+8 && string(e[:len(ticketExpiry)]) == ticketExpiry {
				if time.Now().Unix() < int64(binary.BigEndian.Uint64(e[len(ticketExpiry):])) {
					return ss, nil
				}
			}
		}
		return nil, nil // expired or not ours: a full handshake
	}
	return nil
}

const ticketExpiry = "mailgate-expiry:"

// errNoSigalg refuses a TLS 1.0 or 1.1 handshake as OpenSSL 3 does at
// security level 1 and above.
var errNoSigalg = errors.New("tls: no signature algorithm for TLS 1.0/1.1 at OpenSSL security level 1 or above")

// opensslSuiteChoice makes crypto/tls pick the TLS 1.0-1.2 suite OpenSSL
// would: the client's most preferred suite of ssl_ciphers (the server's
// order with ssl_prefer_server_ciphers on) that the version, the
// certificate and the common groups allow. Go otherwise picks by its own
// order, and Auth-SSL-Cipher would differ from nginx's. TLS 1.3
// handshakes are left to Go.
func opensslSuiteChoice(base *tls.Config, all []tls.Certificate, preferServer, secLevelFloor, byName bool) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	allowed := base.CipherSuites
	return func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		v := negotiatedVersion(base, h)
		if secLevelFloor && v != 0 && v < tls.VersionTLS12 {
			// crypto/tls answers an error here with an internal_error
			// alert, as OpenSSL does.
			return nil, errNoSigalg
		}
		if v == 0 || v >= tls.VersionTLS13 {
			return nil, nil
		}
		// ssl_certificate_by_name: the suite must suit a certificate
		// for the client's name, when one has it (sni.go).
		certs := all
		if byName {
			certs = namedCertificates(certs, h.ServerName)
		}
		first, second := h.CipherSuites, allowed
		if preferServer {
			first, second = allowed, h.CipherSuites
		}
		for _, id := range first {
			if !slices.Contains(second, id) || !suiteUsable(base, h, id, v, certs) {
				continue
			}
			c := base.Clone()
			c.CipherSuites = []uint16{id}
			return c, nil
		}
		return nil, nil
	}
}

func negotiatedVersion(c *tls.Config, h *tls.ClientHelloInfo) uint16 {
	var best uint16
	for _, v := range h.SupportedVersions {
		if (c.MinVersion == 0 || v >= c.MinVersion) && (c.MaxVersion == 0 || v <= c.MaxVersion) && v > best {
			best = v
		}
	}
	return best
}

// suiteUsable is crypto/tls's own test of a suite for this hello: TLS 1.2
// suites need TLS 1.2, ECDHE needs a common group, and the suite must fit
// a certificate's key.
func suiteUsable(c *tls.Config, h *tls.ClientHelloInfo, id uint16, v uint16, certs []tls.Certificate) bool {
	var info *tls.CipherSuite
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if s.ID == id {
			info = s
		}
	}
	if info == nil || !slices.Contains(info.SupportedVersions, v) {
		return false
	}
	name := info.Name
	if strings.HasPrefix(name, "TLS_ECDHE_") {
		prefs := c.CurvePreferences
		if len(prefs) == 0 {
			prefs = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
		}
		common := false
		for _, g := range h.SupportedCurves {
			if slices.Contains(prefs, g) {
				common = true
			}
		}
		if !common {
			return false
		}
	}
	ecdsaSuite := strings.HasPrefix(name, "TLS_ECDHE_ECDSA_")
	for _, cert := range certs {
		_, isRSA := cert.PrivateKey.(*rsa.PrivateKey)
		_, isEC := cert.PrivateKey.(*ecdsa.PrivateKey)
		if _, ok := cert.PrivateKey.(ed25519.PrivateKey); ok {
			isEC = true
		}
		if ecdsaSuite && isEC || !ecdsaSuite && isRSA {
			return true
		}
	}
	return false
}

// clientVerifier is what the post-handshake client-certificate check
// needs besides the tls.Config: the trusted certificates, the CRLs of
// ssl_crl and ssl_verify_depth.
type clientVerifier struct {
	roots *x509.CertPool // the names sent in the certificate request
	tlsconf.ClientVerify
}

func loadVerifier(ssl *confparse.SSLConf, level int) (*clientVerifier, error) {
	v := &clientVerifier{roots: x509.NewCertPool()}
	v.Depth, v.Level = ssl.VerifyDepth, level
	for _, f := range []string{ssl.ClientCertificate, ssl.TrustedCertificate} {
		if f == "" {
			continue
		}
		certs, _, err := tlsconf.LoadCAFile(f)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			v.roots.AddCert(c)
		}
		v.Roots = append(v.Roots, certs...)
	}
	if ssl.CRL != "" {
		_, crls, err := tlsconf.LoadCRLFile(ssl.CRL)
		if err != nil {
			return nil, err
		}
		v.CRLs = append([]*x509.RevocationList{}, crls...)
	}
	return v, nil
}

// verifiers holds each tls.Config's clientVerifier, weakly: an entry goes
// when its config (an old one after a reload) is collected.
var verifiers sync.Map // weak.Pointer[tls.Config] -> *clientVerifier

func setVerifier(c *tls.Config, v *clientVerifier) {
	k := weak.Make(c)
	verifiers.Store(k, v)
	runtime.AddCleanup(c, func(k weak.Pointer[tls.Config]) { verifiers.Delete(k) }, k)
}

func getVerifier(c *tls.Config) *clientVerifier {
	if v, ok := verifiers.Load(weak.Make(c)); ok {
		return v.(*clientVerifier)
	}
	return &clientVerifier{roots: c.ClientCAs, ClientVerify: tlsconf.ClientVerify{Depth: 100, Level: tlsconf.DefaultSecurityLevel}}
}

// verifyCert judges the client certificate after the handshake as nginx
// does. It reports whether the session goes on.
func (e *engine) verifyCert() bool {
	s := e.s
	mode := e.sc.conf.SSL.VerifyClient
	if mode == confparse.VerifyOff || s.TLS == nil {
		return true
	}
	certs := s.TLS.PeerCertificates
	if len(certs) == 0 {
		s.certVerify = "NONE"
		if mode == confparse.VerifyOn {
			s.Logf(errlog.Info, "client sent no required SSL certificate")
			s.Write(e.h.CertError(true))
			e.flush() //nolint:errcheck
			return false
		}
		return true
	}
	code := getVerifier(s.TLSConfig).VerifyClientChain(certs, time.Now())
	if code == tlsconf.VerifyOK {
		s.certVerify = "SUCCESS"
		return true
	}
	text := tlsconf.VerifyErrorText(code)
	s.certVerify = "FAILED:" + text
	if mode == confparse.VerifyOptionalNoCA && tlsconf.VerifyOptionalNoCA(code) {
		return true
	}
	s.Logf(errlog.Info, "client SSL certificate verify error: (%d:%s)", code, text)
	s.Write(e.h.CertError(false))
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

// handshakeErrors map crypto/tls's handshake failures to the OpenSSL
// error nginx logs for the same client ("SSL_do_handshake() failed (SSL:
// ...)"); others keep Go's text.
var handshakeErrors = []struct{ goText, openssl string }{
	{"client offered only unsupported versions", "error:0A000102:SSL routines::unsupported protocol"},
	{"unsupported versions", "error:0A000102:SSL routines::unsupported protocol"},
	{"no cipher suite supported by both client and server", "error:0A0000C1:SSL routines::no shared cipher"},
	{"no ECDHE curve supported by both client and server", "error:0A000065:SSL routines::no suitable key share"},
	{"no key exchanges supported by both client and server", "error:0A000065:SSL routines::no suitable key share"},
	{"no application protocol", "error:0A0000EA:SSL routines::no application protocol"},
	{errNoSigalg.Error(), "error:0A000076:SSL routines::no suitable signature algorithm"},
	{errNoTLS13Suites.Error(), "error:0A0000B5:SSL routines::no ciphers available:No ciphers enabled for max supported SSL/TLS version"},
}

func handshakeErrorText(err error) string {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil {
		// Not TLS at all: OpenSSL names HTTP and proxy requests.
		h := string(rh.RecordHeader[:])
		switch {
		case strings.HasPrefix(h, "GET "), strings.HasPrefix(h, "POST "), strings.HasPrefix(h, "HEAD "), strings.HasPrefix(h, "PUT "):
			return "error:0A00009C:SSL routines::http request"
		case h == "CONNE":
			return "error:0A00009B:SSL routines::https proxy request"
		}
		return "error:0A00010B:SSL routines::wrong version number"
	}
	msg := err.Error()
	for _, h := range handshakeErrors {
		if strings.Contains(msg, h.goText) {
			return h.openssl
		}
	}
	return msg
}

// opensslCipherName is OpenSSL's name of a suite, as nginx sends it in
// Auth-SSL-Cipher.
func opensslCipherName(id uint16) string { return tlsconf.CipherName(id) }
