package mail

import (
	"bytes"
	"crypto/tls"
	"os"
	"testing"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// TestConfCommandsApplied: each ssl_conf_command with a crypto/tls
// meaning changes the handshake as in nginx.
func TestConfCommandsApplied(t *testing.T) {
	otherCert, otherKey := selfSigned(t)
	otherPEM, err := os.ReadFile(otherCert)
	if err != nil {
		t.Fatal(err)
	}
	tls12 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }
	tests := []struct {
		name   string
		edit   func(*confparse.SSLConf)
		cmds   [][2]string
		client func(*tls.Config)
		check  func(t *testing.T, st tls.ConnectionState, err error)
	}{
		{"CipherString", nil, [][2]string{{"CipherString", "ECDHE-ECDSA-AES128-SHA"}}, tls12,
			suiteIs(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA)},
		{"MaxProtocol TLSv1.2", nil, [][2]string{{"MaxProtocol", "TLSv1.2"}}, nil, versionIs(tls.VersionTLS12)},
		{"MinProtocol TLSv1.3, TLS 1.2 client", nil, [][2]string{{"MinProtocol", "TLSv1.3"}}, tls12, fails},
		{"MinProtocol None keeps ssl_protocols", func(c *confparse.SSLConf) { c.Protocols = []string{"TLSv1.3"} },
			[][2]string{{"MinProtocol", "None"}}, tls12, fails},
		// OpenSSL refuses every handshake then ("no ciphers available").
		{"Ciphersuites empty, TLS 1.3 enabled", nil, [][2]string{{"Ciphersuites", ""}}, tls12, fails},
		{"Ciphersuites empty, TLS 1.2 only", func(c *confparse.SSLConf) { c.Protocols = []string{"TLSv1.2"} },
			[][2]string{{"Ciphersuites", ""}}, nil, versionIs(tls.VersionTLS12)},
		{"Ciphersuites empty, MaxProtocol TLSv1.2", nil, [][2]string{{"Ciphersuites", ""}, {"MaxProtocol", "TLSv1.2"}}, nil, versionIs(tls.VersionTLS12)},
		{"Groups", nil, [][2]string{{"Groups", "secp384r1"}}, nil, curveIs(tls.CurveP384)},
		{"Curves", nil, [][2]string{{"Curves", "prime256v1"}}, nil, curveIs(tls.CurveP256)},
		{"Certificate and PrivateKey", nil, [][2]string{{"Certificate", otherCert}, {"PrivateKey", otherKey}}, nil,
			func(t *testing.T, st tls.ConnectionState, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				if len(st.PeerCertificates) == 0 || !bytes.Contains(otherPEM, []byte("BEGIN")) ||
					st.PeerCertificates[0].SerialNumber.Int64() != 7 {
					t.Errorf("served %v, not the Certificate of ssl_conf_command", st.PeerCertificates[0].Subject)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) {
				if tc.edit != nil {
					tc.edit(c)
				}
				c.ConfCommands = tc.cmds
			}))
			if err != nil {
				t.Fatal(err)
			}
			cc := clientConf()
			if tc.client != nil {
				tc.client(cc)
			}
			st, err := handshake(t, s, cc)
			tc.check(t, st, err)
		})
	}
}

// TestConfCommandServerPreference: with Options ServerPreference a TLS 1.2
// client gets the server's first suite it offers, whichever order
// ssl_ciphers gives; without it (or with -ServerPreference over
// ssl_prefer_server_ciphers on) the client's first, the same for both
// orders. (crypto/tls's client orders its suites itself, so the test
// varies the server's order.)
func TestConfCommandServerPreference(t *testing.T) {
	orders := []struct {
		ciphers string
		first   uint16
	}{
		{"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	}
	tests := []struct {
		name   string
		prefer bool
		cmds   [][2]string
		server bool // the server's order decides
	}{
		{"no command", false, nil, false},
		{"ssl_prefer_server_ciphers on", true, nil, true},
		{"Options ServerPreference", false, [][2]string{{"Options", "ServerPreference"}}, true},
		{"Options -ServerPreference over ssl_prefer_server_ciphers on", true, [][2]string{{"Options", "-ServerPreference"}}, false},
	}
	for _, tc := range tests {
		var got []uint16
		for _, o := range orders {
			s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) {
				c.Ciphers, c.PreferServerCiphers, c.ConfCommands = o.ciphers, tc.prefer, tc.cmds
			}))
			if err != nil {
				t.Fatal(err)
			}
			cc := clientConf()
			cc.MaxVersion = tls.VersionTLS12
			st, err := handshake(t, s, cc)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, st.CipherSuite)
			if tc.server && st.CipherSuite != o.first {
				t.Errorf("%s, %s: got %s", tc.name, o.ciphers, tls.CipherSuiteName(st.CipherSuite))
			}
		}
		if !tc.server && got[0] != got[1] {
			t.Errorf("%s: the server's order decided (%s, %s)", tc.name, tls.CipherSuiteName(got[0]), tls.CipherSuiteName(got[1]))
		}
	}
}

// TestConfCommandNoTLS13Suites: nginx logs OpenSSL's refusal at crit.
func TestConfCommandNoTLS13Suites(t *testing.T) {
	s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) { c.ConfCommands = [][2]string{{"Ciphersuites", ""}} }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.GetConfigForClient(&tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS12}})
	if err == nil || handshakeErrorLevel(err) != errlog.Crit ||
		handshakeErrorText(err) != "error:0A0000B5:SSL routines::no ciphers available:No ciphers enabled for max supported SSL/TLS version" {
		t.Errorf("got %v", err)
	}
	if handshakeErrorLevel(errNoSigalg) != errlog.Info {
		t.Error("another handshake error is not at info")
	}
}

func TestConfCommandTickets(t *testing.T) {
	tests := []struct {
		name    string
		cache   string
		tickets bool
		cmds    [][2]string
		resume  bool
	}{
		{"Options -SessionTicket", "none", true, [][2]string{{"Options", "-SessionTicket"}}, false},
		{"Options -SessionTicket with a cache", "builtin", true, [][2]string{{"Options", "-SessionTicket"}}, true},
		{"Options SessionTicket over ssl_session_tickets off", "none", false, [][2]string{{"Options", "SessionTicket"}}, true},
	}
	for _, tc := range tests {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) {
				c.SessionCache, c.SessionTickets, c.ConfCommands = tc.cache, tc.tickets, tc.cmds
			}))
			if err != nil {
				t.Fatal(err)
			}
			rec := &recordingCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			connect(t, s, rec, v)
			if got := connect(t, s, rec, v); got != tc.resume {
				t.Errorf("%s %s: resumed %v, want %v", tc.name, tlsVersionName(v), got, tc.resume)
			}
			// With the cache the ticket is an id; otherwise the session itself.
			if tc.resume && len(rec.tickets) > 0 && (len(rec.tickets[0]) == 32) != (tc.cache == "builtin") {
				t.Errorf("%s %s: a ticket of %d bytes", tc.name, tlsVersionName(v), len(rec.tickets[0]))
			}
		}
	}
}

func suiteIs(id uint16) func(*testing.T, tls.ConnectionState, error) {
	return func(t *testing.T, st tls.ConnectionState, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if st.CipherSuite != id {
			t.Errorf("suite %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(id))
		}
	}
}

func versionIs(v uint16) func(*testing.T, tls.ConnectionState, error) {
	return func(t *testing.T, st tls.ConnectionState, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != v {
			t.Errorf("version %s, want %s", tlsVersionName(st.Version), tlsVersionName(v))
		}
	}
}

func curveIs(c tls.CurveID) func(*testing.T, tls.ConnectionState, error) {
	return func(t *testing.T, st tls.ConnectionState, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if st.CurveID != c {
			t.Errorf("group %v, want %v", st.CurveID, c)
		}
	}
}

func fails(t *testing.T, _ tls.ConnectionState, err error) {
	t.Helper()
	if err == nil {
		t.Error("the handshake succeeded")
	}
}
