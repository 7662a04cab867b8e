package mail

import (
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailgate/confparse"
)

const sslFixtures = "../confparse/testdata/sslfile/"

// tlsServer is confparse's defaults for a TLS server with the test
// certificate, changed by edit.
func tlsServer(t *testing.T, edit func(*confparse.SSLConf)) *confparse.Server {
	t.Helper()
	dir, err := filepath.Abs(sslFixtures)
	if err != nil {
		t.Fatal(err)
	}
	sc := &confparse.Server{Protocol: confparse.ProtoIMAP}
	sc.SSL = confparse.SSLConf{
		StartTLS:        confparse.StartTLSOn,
		Certificates:    []string{filepath.Join(dir, "cert.pem")},
		CertificateKeys: []string{filepath.Join(dir, "key.pem")},
		ECDHCurve:       "auto",
		Protocols:       []string{"TLSv1.2", "TLSv1.3"},
		Ciphers:         "HIGH:!aNULL:!MD5",
		SessionCache:    "none",
		SessionTickets:  true,
		SessionTimeout:  5 * time.Minute,
		VerifyDepth:     1,
	}
	if edit != nil {
		edit(&sc.SSL)
	}
	return sc
}

// handshake runs one TLS handshake between c (client) and s (server).
func handshake(t *testing.T, s, c *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	// A real socket: net.Pipe is unbuffered, and both sides of a TLS 1.3
	// HelloRetryRequest write at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srvErr := make(chan error, 1)
	go func() {
		ts := tls.Server(a, s)
		ts.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		err := ts.Handshake()
		if err == nil {
			// Let the client read the TLS 1.3 tickets.
			ts.Write([]byte("x")) //nolint:errcheck
		}
		srvErr <- err
	}()
	tc := tls.Client(b, c)
	tc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	err = tc.Handshake()
	if err == nil {
		buf := make([]byte, 1)
		tc.Read(buf) //nolint:errcheck
	}
	if err == nil {
		err = <-srvErr
	}
	return tc.ConnectionState(), err
}

func clientConf() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example"} //nolint:gosec // test server
}

func TestLoadTLSCiphersAndCurves(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*confparse.SSLConf)
		client  func(*tls.Config)
		version uint16
		suite   uint16
		curve   tls.CurveID
		fails   bool
	}{
		{"one suite", func(c *confparse.SSLConf) { c.Ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384" },
			func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.X25519, false},
		{"no common suite", func(c *confparse.SSLConf) { c.Ciphers = "ECDHE-ECDSA-AES128-SHA" },
			func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
			}, 0, 0, 0, true},
		{"secp384r1 only", func(c *confparse.SSLConf) { c.ECDHCurve = "secp384r1" }, nil, tls.VersionTLS13, 0, tls.CurveP384, false},
		{"TLSv1.2 only", func(c *confparse.SSLConf) { c.Protocols = []string{"TLSv1.2"} }, nil, tls.VersionTLS12, 0, tls.X25519, false},
		{"TLSv1.3 suites ignore ssl_ciphers", func(c *confparse.SSLConf) { c.Ciphers = "aNULL" }, nil, tls.VersionTLS13, 0, tls.X25519, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadTLS(tlsServer(t, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			cc := clientConf()
			if tc.client != nil {
				tc.client(cc)
			}
			st, err := handshake(t, s, cc)
			if tc.fails {
				if err == nil {
					t.Fatalf("handshake succeeded with %s", tls.CipherSuiteName(st.CipherSuite))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tc.version || (tc.suite != 0 && st.CipherSuite != tc.suite) || st.CurveID != tc.curve {
				t.Fatalf("got %s %s %v", tlsVersionName(st.Version), opensslCipherName(st.CipherSuite), st.CurveID)
			}
		})
	}
}

func TestOpenSSLSuiteChoice(t *testing.T) {
	hello := func(suites ...uint16) *tls.ClientHelloInfo {
		return &tls.ClientHelloInfo{
			CipherSuites:      suites,
			SupportedVersions: []uint16{tls.VersionTLS12, tls.VersionTLS11},
			SupportedCurves:   []tls.CurveID{tls.X25519},
		}
	}
	chacha, aes128, aes256 := tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
	rsaSuite := tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	tests := []struct {
		name   string
		prefer bool
		h      *tls.ClientHelloInfo
		want   uint16 // 0: left to Go
	}{
		{"client order", false, hello(chacha, aes128), chacha},
		{"client order 2", false, hello(aes128, chacha), aes128},
		{"server order", true, hello(aes128, chacha), chacha}, // OpenSSL's HIGH order: AES256-GCM, CHACHA20, AES128-GCM
		{"server order, first is offered", true, hello(aes128, aes256), aes256},
		{"RSA suite does not fit an ECDSA certificate", false, hello(rsaSuite, aes128), aes128},
		{"nothing common", false, hello(rsaSuite), 0},
		{"no common group", false, &tls.ClientHelloInfo{CipherSuites: []uint16{aes128}, SupportedVersions: []uint16{tls.VersionTLS12}, SupportedCurves: []tls.CurveID{tls.CurveID(30)}}, 0},
		{"TLS 1.3 is Go's", false, &tls.ClientHelloInfo{CipherSuites: []uint16{aes128}, SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}}, 0},
	}
	for _, tc := range tests {
		base, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) { c.PreferServerCiphers = tc.prefer }))
		if err != nil {
			t.Fatal(err)
		}
		got, err := base.GetConfigForClient(tc.h)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.want == 0 && got != nil:
			t.Errorf("%s: chose %v", tc.name, got.CipherSuites)
		case tc.want != 0 && (got == nil || len(got.CipherSuites) != 1 || got.CipherSuites[0] != tc.want):
			t.Errorf("%s: got %v want %s", tc.name, got, tls.CipherSuiteName(tc.want))
		}
	}
}

func TestLoadTLSErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*confparse.SSLConf)
		want string
	}{
		{"encrypted key without password", func(c *confparse.SSLConf) { c.CertificateKeys = []string{fx(t, "enc_pkcs8.key")} }, `cannot load certificate key "` + fx(t, "enc_pkcs8.key") + `": PEM_read_bio_PrivateKey() failed`},
		{"bad cipher string", func(c *confparse.SSLConf) { c.Ciphers = "FOO" }, `SSL_CTX_set_cipher_list("FOO") failed (SSL: error:0A0000B9:SSL routines::no cipher match)`},
		{"bad curve", func(c *confparse.SSLConf) { c.ECDHCurve = "bogus" }, `SSL_CTX_set1_curves_list("bogus") failed`},
		{"short ticket key", func(c *confparse.SSLConf) { c.SessionTicketKeys = []string{fx(t, "ticket32.key")} }, `must be 48 or 80 bytes`},
	}
	for _, tc := range tests {
		_, err := loadTLS(tlsServer(t, tc.edit))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func fx(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(sslFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTLSPasswordFile(t *testing.T) {
	for _, key := range []string{"enc_legacy.key", "enc_pkcs8.key"} {
		s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) {
			c.CertificateKeys = []string{fx(t, key)}
			c.PasswordFile = fx(t, "pass.txt") // "wrong", then "secret"
		}))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if _, err := handshake(t, s, clientConf()); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
}

func TestSessionTickets(t *testing.T) {
	resumed := func(s1, s2 *tls.Config, version uint16) bool {
		t.Helper()
		cc := clientConf()
		cc.MaxVersion = version
		cc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		if _, err := handshake(t, s1, cc); err != nil {
			t.Fatal(err)
		}
		st, err := handshake(t, s2, cc)
		if err != nil {
			t.Fatal(err)
		}
		return st.DidResume
	}
	withKey := func(c *confparse.SSLConf) {
		c.SessionTicketKeys = []string{fx(t, "ticket80.key"), fx(t, "ticket48.key")}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		a, _ := loadTLS(tlsServer(t, withKey))
		b, _ := loadTLS(tlsServer(t, withKey))
		if !resumed(a, a, v) {
			t.Errorf("%x: no resumption on the same server", v)
		}
		if !resumed(a, b, v) {
			t.Errorf("%x: the same ticket key file does not resume across servers", v)
		}
		other, _ := loadTLS(tlsServer(t, func(c *confparse.SSLConf) { c.SessionTicketKeys = []string{fx(t, "ticket48.key")} }))
		if resumed(a, other, v) {
			t.Errorf("%x: a ticket resumed on a server without its key", v)
		}
		off, _ := loadTLS(tlsServer(t, func(c *confparse.SSLConf) { c.SessionTickets = false }))
		if resumed(off, off, v) {
			t.Errorf("%x: ssl_session_tickets off resumed", v)
		}
		expired, _ := loadTLS(tlsServer(t, func(c *confparse.SSLConf) { c.SessionTimeout = 0 }))
		if resumed(expired, expired, v) {
			t.Errorf("%x: a session past ssl_session_timeout resumed", v)
		}
	}
}

func TestHandshakeErrorText(t *testing.T) {
	tests := []struct {
		name   string
		server func(*confparse.SSLConf)
		client func(*tls.Config)
		want   string
	}{
		{"version", func(c *confparse.SSLConf) { c.Protocols = []string{"TLSv1.2"} },
			func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, "error:0A000102:SSL routines::unsupported protocol"},
		{"cipher", func(c *confparse.SSLConf) { c.Ciphers = "ECDHE-ECDSA-AES128-SHA" },
			func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
			}, "error:0A0000C1:SSL routines::no shared cipher"},
		{"group", func(c *confparse.SSLConf) { c.ECDHCurve = "secp521r1" },
			func(c *tls.Config) { c.MinVersion, c.CurvePreferences = tls.VersionTLS13, []tls.CurveID{tls.X25519} }, "error:0A000065:SSL routines::no suitable key share"},
		// TLS 1.0/1.1 fail at OpenSSL's security level 1 even when listed
		{"TLSv1 listed", func(c *confparse.SSLConf) { c.Protocols = []string{"TLSv1", "TLSv1.2"} },
			func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10 }, "error:0A000076:SSL routines::no suitable signature algorithm"},
		{"TLSv1.1 listed", func(c *confparse.SSLConf) { c.Protocols = []string{"TLSv1.1"} },
			func(c *tls.Config) { c.MinVersion = tls.VersionTLS10 }, "error:0A000076:SSL routines::no suitable signature algorithm"},
	}
	for _, tc := range tests {
		s, err := loadTLS(tlsServer(t, tc.server))
		if err != nil {
			t.Fatal(err)
		}
		srvErr := make(chan error, 1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				srvErr <- err
				return
			}
			defer c.Close()
			srvErr <- tls.Server(c, s).Handshake()
		}()
		cc := clientConf()
		tc.client(cc)
		if c, err := tls.Dial("tcp", ln.Addr().String(), cc); err == nil {
			c.Close()
		}
		err = <-srvErr
		ln.Close()
		if err == nil || handshakeErrorText(err) != tc.want {
			t.Errorf("%s: %v -> %q, want %q", tc.name, err, handshakeErrorText(err), tc.want)
		}
	}
	// ... and work with @SECLEVEL=0, as with nginx
	s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) {
		c.Protocols, c.Ciphers = []string{"TLSv1", "TLSv1.2"}, "HIGH:!aNULL:@SECLEVEL=0"
	}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		srvErr <- tls.Server(c, s).Handshake()
	}()
	cc := clientConf()
	cc.MinVersion, cc.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
	c, err := tls.Dial("tcp", ln.Addr().String(), cc)
	if err == nil {
		if v := c.ConnectionState().Version; v != tls.VersionTLS10 {
			t.Errorf("@SECLEVEL=0: version %x", v)
		}
		c.Close()
	}
	if err := <-srvErr; err != nil {
		t.Errorf("@SECLEVEL=0, TLS 1.0: %v", err)
	}
	ln.Close()
	for in, want := range map[string]string{
		"GET / HTTP/1.1\r\n":  "error:0A00009C:SSL routines::http request",
		"HEAD / HTTP/1.1\r\n": "error:0A00009C:SSL routines::http request",
		"CONNECT x:1\r\n":     "error:0A00009B:SSL routines::https proxy request",
		"a LOGIN x y\r\n":     "error:0A00010B:SSL routines::wrong version number",
	} {
		s, err := loadTLS(tlsServer(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		go func() { b.Write([]byte(in)); b.Close() }() //nolint:errcheck
		err = tls.Server(a, s).Handshake()
		a.Close()
		if got := handshakeErrorText(err); got != want {
			t.Errorf("%q: %v -> %q, want %q", in, err, got, want)
		}
	}
	if got := handshakeErrorText(errors.New("tls: something new")); got != "tls: something new" {
		t.Errorf("unmapped error: %q", got)
	}
}
