package confparse

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeSNICert(t *testing.T, dir, name string, dnsNames ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dnsNames[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: dnsNames}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)   //nolint:errcheck
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o644) //nolint:errcheck
}

// ssl_certificate_by_name and auth_http_pass_ssl_server_name: merged,
// listed as mailgate-only; check warns about a server_name that none of
// the server's certificates covers.
func TestSNIDirectives(t *testing.T) {
	for _, c := range []struct {
		mail, server     string
		byName, passName bool
		warn             string
	}{
		{server: "server_name mail.example.test;"},
		{mail: "ssl_certificate_by_name on;", server: "server_name imap.wild.example.test;", byName: true},
		{mail: "ssl_certificate_by_name on; auth_http_pass_ssl_server_name on;", server: "ssl_certificate_by_name off;", passName: true},
		{server: "server_name other.example.test;", warn: `"server_name other.example.test" is not covered by any "ssl_certificate" of its server`},
		{server: ""}, // the host name by default: not the admin's choice, no warning
	} {
		dir := t.TempDir()
		writeSNICert(t, dir, "a", "mail.example.test")
		writeSNICert(t, dir, "b", "*.wild.example.test")
		conf := "events {}\nmail {\n  auth_http 127.0.0.1:9/auth;\n  ssl_certificate a.crt; ssl_certificate_key a.key;\n  ssl_certificate b.crt; ssl_certificate_key b.key;\n" +
			c.mail + "\n  server { listen 127.0.0.1:27993 ssl; protocol imap; " + c.server + " }\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
		errs := strings.Join(diagLines(diags, dir, false), "\n")
		all := strings.Join(diagLines(diags, dir, true), "\n")
		name := c.mail + " / " + c.server
		if errs != "" || cfg == nil {
			t.Errorf("%q: errors %q", name, errs)
			continue
		}
		if c.warn != "" && !strings.Contains(all, c.warn) || c.warn == "" && strings.Contains(all, "is not covered") {
			t.Errorf("%q: want warning %q in:\n%s", name, c.warn, all)
		}
		for _, d := range []string{"ssl_certificate_by_name", "auth_http_pass_ssl_server_name"} {
			used := strings.Contains(c.mail+c.server, d)
			if listed := strings.Contains(all, `"`+d+`" is not in nginx 1.22.1`); used != listed {
				t.Errorf("%q: %s listed %v:\n%s", name, d, listed, all)
			}
		}
		sni := cfg.Mail.Servers[0].SSL.SNI
		if sni.CertificateByName != c.byName || sni.PassServerName != c.passName {
			t.Errorf("%q: %+v", name, sni)
		}
	}
}
