package mailtest_test

// ssl_certificate_by_name and auth_http_pass_ssl_server_name (mailgate-only)
// through the real engine with crypto/tls clients: off, the certificate is
// chosen by key type only, as nginx's OpenSSL does; on, by the client's
// server name first, then by key type; the name reaches auth_http only
// when asked for.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailgate/mail/mailtest"
)

// writeNamedCert writes a self-signed certificate for names with an RSA
// or ECDSA key and returns the ssl_certificate/ssl_certificate_key lines.
func writeNamedCert(t *testing.T, dir, file string, rsaKey bool, names ...string) string {
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: names}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, kf := filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return "ssl_certificate " + cert + "; ssl_certificate_key " + kf + ";"
}

func TestCertificateByName(t *testing.T) {
	dir := t.TempDir()
	// nginx's OpenSSL keeps one certificate per key type, the last one
	// written: d-rsa and d-ec, unless the name picks another.
	certs := writeNamedCert(t, dir, "a", true, "a.example.test") +
		writeNamedCert(t, dir, "b", false, "b.example.test") +
		writeNamedCert(t, dir, "c", true, "c.example.test", "*.c.example.test") +
		writeNamedCert(t, dir, "d-rsa", true, "d.example.test") +
		writeNamedCert(t, dir, "d-ec", false, "d.example.test")
	ecdsaOnly := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	for _, tc := range []struct {
		name, conf, sni string
		client          *tls.Config
		want            string // the chosen certificate's first name and key type
		header          string // Auth-SSL-Server-Name, "" for none
	}{
		{name: "off: SNI ignored, the last RSA certificate", conf: "", sni: "b.example.test", want: "d.example.test/rsa"},
		{name: "off: key type, the last ECDSA certificate", conf: "", sni: "c.example.test", client: ecdsaOnly, want: "d.example.test/ecdsa"},
		{name: "off: no SNI", conf: "", want: "d.example.test/rsa"},
		{name: "on: by name", conf: "ssl_certificate_by_name on;", sni: "b.example.test", want: "b.example.test/ecdsa"},
		{name: "on: by name, TLS 1.2", conf: "ssl_certificate_by_name on;", sni: "c.example.test",
			client: &tls.Config{MaxVersion: tls.VersionTLS12}, want: "c.example.test/rsa"},
		{name: "on: first RSA certificate by name", conf: "ssl_certificate_by_name on;", sni: "a.example.test", want: "a.example.test/rsa"},
		{name: "on: wildcard", conf: "ssl_certificate_by_name on;", sni: "imap.c.example.test", want: "c.example.test/rsa"},
		{name: "on: name of another case", conf: "ssl_certificate_by_name on;", sni: "B.Example.Test", want: "b.example.test/ecdsa"},
		{name: "on: unknown name falls back", conf: "ssl_certificate_by_name on;", sni: "x.example.test", want: "d.example.test/rsa"},
		{name: "on: unknown name, key type", conf: "ssl_certificate_by_name on;", sni: "x.example.test", client: ecdsaOnly, want: "d.example.test/ecdsa"},
		{name: "on: no SNI", conf: "ssl_certificate_by_name on;", want: "d.example.test/rsa"},
		{name: "on: name then key type (RSA)", conf: "ssl_certificate_by_name on;", sni: "d.example.test",
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, want: "d.example.test/rsa"},
		{name: "on: name then key type (ECDSA)", conf: "ssl_certificate_by_name on;", sni: "d.example.test", client: ecdsaOnly, want: "d.example.test/ecdsa"},
		{name: "on: name without a usable key falls back", conf: "ssl_certificate_by_name on;", sni: "b.example.test",
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, want: "d.example.test/rsa"},
		{name: "header", conf: "ssl_certificate_by_name on; auth_http_pass_ssl_server_name on;", sni: "b.example.test",
			want: "b.example.test/ecdsa", header: "b.example.test"},
		{name: "header without by_name", conf: "auth_http_pass_ssl_server_name on;", sni: "Mail.Example.Test",
			want: "d.example.test/rsa", header: "Mail.Example.Test"},
		{name: "header, no SNI", conf: "auth_http_pass_ssl_server_name on;", want: "d.example.test/rsa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := mailtest.StartAuthServer(t)
			as.Script([]byte("HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\n\r\n"))
			cfg := mailtest.Config(t, "server { listen 127.0.0.1:993 ssl; protocol imap; auth_http "+as.URL()+"; "+certs+tc.conf+" }")
			env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols})
			c := env.Dial(t, mailtest.Unix, 0)
			cc := &tls.Config{}
			if tc.client != nil {
				cc = tc.client.Clone()
			}
			cc.ServerName, cc.InsecureSkipVerify = tc.sni, true //nolint:gosec // the test looks at the certificate itself
			tc1 := tls.Client(c.Conn, cc)
			tc1.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			if err := tc1.Handshake(); err != nil {
				t.Fatalf("handshake: %v\n%s", err, env.Log)
			}
			leaf := tc1.ConnectionState().PeerCertificates[0]
			kind := "rsa"
			if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok {
				kind = "ecdsa"
			}
			got := leaf.DNSNames[0] + "/" + kind
			if got != tc.want {
				t.Errorf("certificate for %q, want %q", got, tc.want)
			}
			c.Conn = tc1
			if g := c.ReadLine(5 * time.Second); g != "* OK IMAP4 ready\r\n" {
				t.Fatalf("greeting %q", g)
			}
			c.Send("a1 LOGIN alice secret\r\n") //nolint:errcheck
			if g := c.ReadLine(5 * time.Second); g != "a1 NO Invalid login\r\n" {
				t.Fatalf("login: %q\n%s", g, env.Log)
			}
			reqs := as.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d auth requests", len(reqs))
			}
			h, ok := mailtest.Header(reqs[0], "Auth-SSL-Server-Name")
			if h != tc.header || ok != (tc.header != "") {
				t.Errorf("Auth-SSL-Server-Name %q (%v), want %q", h, ok, tc.header)
			}
			if !strings.Contains(string(reqs[0]), "Auth-SSL: on\r\n") {
				t.Errorf("no Auth-SSL: %q", reqs[0])
			}
		})
	}
}
