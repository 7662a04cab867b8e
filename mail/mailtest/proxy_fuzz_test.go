package mailtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailgate/mail"
	"mailgate/mail/imap"
	"mailgate/mail/mailtest"
	"mailgate/mail/pop3"
	"mailgate/mail/smtp"
)

// FuzzProxyHeaderSession runs sessions that start with a PROXY header
// (v1 or v2) on every protocol, and the STARTTLS paths of servers whose
// handshake never completes (garbage or a cut ClientHello after STARTTLS,
// STARTTLS where no certificate is loaded), through the real engine.
func FuzzProxyHeaderSession(f *testing.F) {
	cert, key := writeCert(f)
	body := `
		set_real_ip_from 127.0.0.0/8;
		set_real_ip_from unix:;
		auth_http {{auth}};
		timeout 500ms;
		proxy_timeout 200ms;
		server { listen 127.0.0.1:143 proxy_protocol; protocol imap; }
		server { listen 127.0.0.1:110 proxy_protocol; protocol pop3; }
		server { listen 127.0.0.1:25 proxy_protocol; protocol smtp; smtp_auth plain none; }
		server { listen 127.0.0.1:1143; protocol imap; starttls on; ssl_certificate ` + cert + `; ssl_certificate_key ` + key + `; }
		server { listen 127.0.0.1:1110; protocol pop3; starttls only; ssl_certificate ` + cert + `; ssl_certificate_key ` + key + `; }
		server { listen 127.0.0.1:1025; protocol smtp; starttls on; ssl_certificate ` + cert + `; ssl_certificate_key ` + key + `; }
		server { listen 127.0.0.1:2143; protocol imap; }`
	sf := mailtest.NewSessionFuzzer(f, map[string]mail.Protocol{"imap": imap.Protocol{}, "pop3": pop3.Protocol{}, "smtp": smtp.Protocol{}}, body)
	// nginx 1.22.1 reads the header with one peek and does not wait for
	// a header cut across reads; STARTTLS drops what was pipelined behind
	// it in the same read.
	sf.SplitDependent = func(in mailtest.Input, whole, split, wl, sl string) bool {
		return mailtest.DefaultSplitDependent(in, whole, split, wl, sl) ||
			strings.Contains(wl+sl, "broken header") || strings.Contains(wl+sl, "PROXY protocol") ||
			strings.Contains(wl+sl, "SSL") || strings.Contains(wl+sl, "peer closed connection in SSL handshake")
	}
	hello := clientHello(f)
	seeds := []struct {
		listen                   uint8
		client, splits, auth, up string
	}{
		{0, "PROXY TCP4 192.0.2.1 192.0.2.2 1234 143\r\na1 LOGIN alice secret\r\n", "\x30", authOK143, upIMAP},
		{1, "PROXY TCP6 2001:db8::1 2001:db8::2 1234 110\r\nUSER a\r\nPASS b\r\n", "\x05", authFail, ""},
		{2, "PROXY UNKNOWN\r\nEHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", "", authFail, ""},
		{0, "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc0\x00\x02\x02\x04\xd2\x00\x8f" + "a1 CAPABILITY\r\n", "\x1c", "", ""},
		{0, "\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24" + strings.Repeat("\x20", 32) + "\x04\xd2\x00\x8f" + "a1 NOOP\r\n", "", "", ""},
		{0, "PROXY TCP4 999.0.2.1 192.0.2.2 99999 143\r\n", "", "", ""},
		{3, "a1 STARTTLS\r\n" + hello, "\x0d\x40", "", ""},
		{4, "STLS\r\n" + hello[:40], "", "", ""},
		{5, "EHLO x\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello", "\x0e", "", ""},
		{6, "a1 STARTTLS\r\na2 LOGIN a b\r\n", "", authFail, ""},
	}
	for _, s := range seeds {
		f.Add(s.listen, []byte(s.client), []byte(s.splits), []byte(s.auth), []byte(s.up))
	}
	f.Fuzz(func(t *testing.T, listen uint8, client, splits, auth, up []byte) {
		sf.RunOn(t, int(listen)%7, mailtest.Input{Client: client, Splits: splits, Auth: auth, Upstream: up})
	})
}

const (
	authOK143 = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"
	authFail  = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\nAuth-Wait: 1\r\n\r\n"
	upIMAP    = "* OK upstream ready\r\n\x00+ go ahead\r\n\x00+ go ahead\r\n\x00a1 OK LOGIN completed\r\n\x00"
)

// writeCert makes a self-signed ECDSA certificate and key in a temporary
// directory.
func writeCert(t testing.TB) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"mx.example.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// clientHello is the first flight of a real TLS client, for seeds.
func clientHello(t testing.TB) string {
	a, b := net.Pipe()
	go func() {
		tls.Client(a, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"}).Handshake() //nolint:errcheck
		a.Close()
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	buf := make([]byte, 4096)
	n, err := io.ReadAtLeast(b, buf, 5)
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}
