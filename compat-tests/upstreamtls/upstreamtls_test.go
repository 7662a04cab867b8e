// Package upstreamtls tests mailgate's TLS to upstreams (mailgate-only
// proxy_ssl_*, proxy_starttls, proxy_ssl_auth_header; docs/upstream-tls.md)
// against real Dovecot: a TLS-only listener (imaps, pop3s), a STARTTLS-only
// one (the plain ports of a Dovecot with ssl = required), a Dovecot that
// requires a client certificate (ssl_verify_client_cert,
// auth_ssl_require_client_cert), and a Dovecot without TLS (STARTTLS not
// offered). The certificates are made here. nginx has none of these
// directives, so only mailgate runs; that a configuration without them
// keeps nginx's bytes is the imap, pop3 and smtp suites' job.
package upstreamtls

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

const pw = "s3cret-pw"

var users = map[string]string{"alice": pw, "bob": pw, "carol": pw, "dave": pw}

// writePKI writes a CA, a server certificate for mail.test and 127.0.0.1,
// a client certificate, all signed by it, and a second, unrelated CA.
func writePKI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		write(name+".pem", "CERTIFICATE", der)
		kd, _ := x509.MarshalECPrivateKey(key)
		write(name+".key", "EC PRIVATE KEY", kd)
		return c, key
	}
	caTmpl := func(n int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn}, IsCA: true,
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	ca, caKey := issue(caTmpl(1, "mailgate test CA"), nil, nil, "ca")
	issue(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mail.test"},
		DNSNames: []string{"mail.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey, "server")
	issue(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "mailgate"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey, "client")
	issue(caTmpl(4, "another CA"), nil, nil, "other-ca")
	return dir
}

// tlsDovecot starts a Dovecot with ssl = required: its plain ports speak
// only STARTTLS/STLS before a login, and imaps/pop3s listen on ports of
// their own. extra lines follow.
func tlsDovecot(t *testing.T, pki string, extra ...string) (dc *harness.Dovecot, imaps, pop3s string) {
	t.Helper()
	ip, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pp, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	lines := append([]string{
		"auth_failure_delay = 0",
		"ssl = required",
		"ssl_cert = <" + pki + "/server.pem",
		"ssl_key = <" + pki + "/server.key",
		fmt.Sprintf("service imap-login {\n  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n  }\n}", ip),
		fmt.Sprintf("service pop3-login {\n  inet_listener pop3s {\n    address = 127.0.0.1\n    port = %d\n  }\n}", pp),
	}, extra...)
	dc = harness.StartDovecot(t, users, lines...)
	return dc, fmt.Sprintf("127.0.0.1:%d", ip), fmt.Sprintf("127.0.0.1:%d", pp)
}

type env struct {
	p     *harness.Proxy
	dcTLS *harness.Dovecot // ssl = required
	dcCrt *harness.Dovecot // and a client certificate
	dcPln *harness.Dovecot // ssl = no
}

// cases maps a server block's X-Case (auth_http_header) to the upstream
// and the extra answer headers the auth server sends.
type route struct {
	addr    string
	headers [][2]string
}

func setup(t *testing.T) *env {
	t.Helper()
	pki := writePKI(t)
	e := &env{}
	var imaps, pop3s, certImaps string
	e.dcTLS, imaps, pop3s = tlsDovecot(t, pki)
	e.dcCrt, certImaps, _ = tlsDovecot(t, pki, "ssl_ca = <"+pki+"/ca.pem", "ssl_verify_client_cert = yes", "ssl_require_crl = no", "auth_ssl_require_client_cert = yes")
	e.dcPln = harness.StartDovecot(t, users, "auth_failure_delay = 0")
	routes := map[string]route{
		"imaps":      {addr: imaps},
		"pop3s":      {addr: pop3s},
		"imap-stls":  {addr: e.dcTLS.IMAPAddr},
		"pop3-stls":  {addr: e.dcTLS.POP3Addr},
		"imap-plain": {addr: e.dcPln.IMAPAddr},
		"cert":       {addr: certImaps},
	}
	as := harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{"alice": {Password: pw}, "bob": {Password: pw}, "carol": {Password: pw}, "dave": {Password: pw}},
		Handler: func(r *authserver.Request) *authserver.Behavior {
			rt, ok := routes[r.Get("X-Upstream")]
			if !ok {
				// proxy_ssl_auth_header: the auth server chooses per user.
				switch r.User() {
				case "alice":
					rt = route{addr: imaps, headers: [][2]string{{"Auth-SSL", "on"}}}
				case "bob":
					rt = route{addr: e.dcTLS.IMAPAddr, headers: [][2]string{{"Auth-SSL", "starttls"}}}
				case "carol":
					rt = route{addr: e.dcPln.IMAPAddr, headers: [][2]string{{"Auth-SSL", "off"}}}
				default:
					rt = route{addr: imaps, headers: [][2]string{{"Auth-SSL", "yes"}}}
				}
			}
			host, port, _ := net.SplitHostPort(rt.addr)
			return &authserver.Behavior{Server: host, Port: port, ExtraHeaders: rt.headers}
		},
	})
	verify := "proxy_ssl_verify on; proxy_ssl_trusted_certificate " + pki + "/ca.pem;"
	srv := func(port, proto, up, dirs string) string {
		return fmt.Sprintf("    server { listen 127.0.0.1:{{port %s}}; protocol %s; auth_http_header X-Upstream %s; %s }\n", port, proto, up, dirs)
	}
	mail := "    auth_http {{auth}};\n    proxy_ssl_name mail.test;\n" +
		srv("imaps_verified", "imap", "imaps", "proxy_ssl on; "+verify) +
		srv("imaps_unverified", "imap", "imaps", "proxy_ssl on;") +
		srv("imaps_untrusted", "imap", "imaps", "proxy_ssl on; proxy_ssl_verify on; proxy_ssl_trusted_certificate "+pki+"/other-ca.pem;") +
		srv("imaps_wrongname", "imap", "imaps", "proxy_ssl on; "+verify+" proxy_ssl_name wrong.test;") +
		srv("imaps_byip", "imap", "imaps", "proxy_ssl on; "+verify+" proxy_ssl_name 127.0.0.1; proxy_ssl_server_name on;") +
		srv("pop3s_verified", "pop3", "pop3s", "proxy_ssl on; "+verify) +
		srv("imap_starttls", "imap", "imap-stls", "proxy_starttls on; "+verify) +
		srv("pop3_stls", "pop3", "pop3-stls", "proxy_starttls on; "+verify) +
		srv("imap_starttls_wrongname", "imap", "imap-stls", "proxy_starttls on; "+verify+" proxy_ssl_name wrong.test;") +
		srv("imap_starttls_missing", "imap", "imap-plain", "proxy_starttls on; "+verify) +
		srv("cert_sent", "imap", "cert", "proxy_ssl on; "+verify+" proxy_ssl_certificate "+pki+"/client.pem; proxy_ssl_certificate_key "+pki+"/client.key;") +
		srv("cert_missing", "imap", "cert", "proxy_ssl on; "+verify) +
		srv("by_auth", "imap", "by-user", "proxy_ssl_auth_header on; "+verify) +
		srv("plain", "imap", "imap-plain", "")
	e.p = harness.StartMailgate(t, harness.Config{LogLevel: "info", Vars: map[string]string{"auth": as.URL()}, Mail: mail})
	return e
}

// session logs in over the proxy and runs one command after the login;
// it returns every line the client read.
func session(t *testing.T, addr, proto, user string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	var got []string
	read := func() string {
		l, err := br.ReadString('\n')
		if l != "" {
			got = append(got, l)
		}
		if err != nil {
			return ""
		}
		return l
	}
	send := func(s string) { c.Write([]byte(s)) }
	read() // greeting
	if proto == "pop3" {
		send("USER " + user + "\r\n")
		read()
		send("PASS " + pw + "\r\n")
		if !strings.HasPrefix(read(), "+OK") {
			return got
		}
		send("STAT\r\n")
		read()
		send("QUIT\r\n")
		read()
		return got
	}
	send("a1 LOGIN " + user + " " + pw + "\r\n")
	for {
		l := read()
		if l == "" || strings.HasPrefix(l, "a1 ") || strings.HasPrefix(l, "* BAD") || strings.HasPrefix(l, "* BYE") {
			if !strings.HasPrefix(l, "a1 OK") {
				return got
			}
			break
		}
	}
	send("a2 NOOP\r\n")
	for l := read(); l != "" && !strings.HasPrefix(l, "a2 "); l = read() {
	}
	send("a3 LOGOUT\r\n")
	for l := read(); l != ""; l = read() {
	}
	return got
}

// logins counts Dovecot's successful logins of user, and of those over TLS.
func logins(dc *harness.Dovecot, user string) (all, secure int) {
	for _, l := range strings.Split(dc.Log(), "\n") {
		if !strings.Contains(l, "-login: Info: Login: user=<"+user+">") {
			continue
		}
		all++
		if strings.Contains(l, ", TLS") {
			secure++
		}
	}
	return all, secure
}

// waitLog waits for re in mailgate's error.log.
func waitLog(t *testing.T, p *harness.Proxy, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if rx.MatchString(p.ErrorLog()) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("error.log has no line matching %s:\n%s", re, p.ErrorLog())
}

func TestUpstreamTLS(t *testing.T) {
	e := setup(t)
	// login succeeds through port and the upstream logs it, over TLS
	// unless plain.
	login := func(t *testing.T, port, proto, user string, dc *harness.Dovecot, plain bool) {
		t.Helper()
		all0, sec0 := logins(dc, user)
		got := session(t, e.p.Addr(port), proto, user)
		joined := strings.Join(got, "")
		if proto == "imap" && !strings.Contains(joined, "a1 OK") || proto == "pop3" && !strings.Contains(joined, "+OK 0 0") {
			t.Fatalf("%s: login failed; client read %q\nerror.log:\n%s", port, got, e.p.ErrorLog())
		}
		wantSec := sec0 + 1
		if plain {
			wantSec = sec0
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			all, sec := logins(dc, user)
			if all == all0+1 && sec == wantSec {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Dovecot logged %d logins (%d over TLS), want 1 (plain %v)\n%s", port, all-all0, sec-sec0, plain, dc.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ok := func(t *testing.T, port, proto, user string, dc *harness.Dovecot) {
		t.Helper()
		login(t, port, proto, user, dc, false)
	}
	// fails: the client gets the internal error, the upstream saw no
	// login, and error.log has the line.
	fails := func(t *testing.T, port, proto, user string, dc *harness.Dovecot, logRE string) {
		t.Helper()
		all0, _ := logins(dc, user)
		got := session(t, e.p.Addr(port), proto, user)
		want := "* BAD internal server error\r\n"
		if proto == "pop3" {
			want = "-ERR internal server error\r\n"
		}
		if len(got) < 2 || got[len(got)-1] != want {
			t.Errorf("%s: client read %q, want the internal error last", port, got)
		}
		waitLog(t, e.p, logRE)
		time.Sleep(200 * time.Millisecond)
		if all, _ := logins(dc, user); all != all0 {
			t.Errorf("%s: the upstream logged a login of %s:\n%s", port, user, dc.Log())
		}
	}
	up := func(port string) string { return regexp.QuoteMeta(port) }
	ctx := func(port string) string {
		return `, client: 127\.0\.0\.1, server: 127\.0\.0\.1:` + up(strings.Split(e.p.Addr(port), ":")[1]) + `, login: "alice", upstream: 127\.0\.0\.1:\d+`
	}

	t.Run("imaps verified", func(t *testing.T) { ok(t, "imaps_verified", "imap", "alice", e.dcTLS) })
	t.Run("imaps unverified", func(t *testing.T) { ok(t, "imaps_unverified", "imap", "alice", e.dcTLS) })
	t.Run("imaps verified by IP address, no SNI for it", func(t *testing.T) { ok(t, "imaps_byip", "imap", "alice", e.dcTLS) })
	t.Run("pop3s verified", func(t *testing.T) { ok(t, "pop3s_verified", "pop3", "alice", e.dcTLS) })
	t.Run("imap STARTTLS", func(t *testing.T) { ok(t, "imap_starttls", "imap", "alice", e.dcTLS) })
	t.Run("pop3 STLS", func(t *testing.T) { ok(t, "pop3_stls", "pop3", "alice", e.dcTLS) })
	t.Run("client certificate sent", func(t *testing.T) { ok(t, "cert_sent", "imap", "alice", e.dcCrt) })
	t.Run("plain server keeps plain", func(t *testing.T) { login(t, "plain", "imap", "alice", e.dcPln, true) })

	t.Run("imaps untrusted", func(t *testing.T) {
		fails(t, "imaps_untrusted", "imap", "alice", e.dcTLS,
			`\[error\] \d+#\d+: \*\d+ upstream SSL certificate verify error: \(21:unable to verify the first certificate\) while SSL handshaking to upstream`+ctx("imaps_untrusted"))
	})
	t.Run("imaps wrong name", func(t *testing.T) {
		fails(t, "imaps_wrongname", "imap", "alice", e.dcTLS,
			`\[error\] \d+#\d+: \*\d+ upstream SSL certificate does not match "wrong\.test" while SSL handshaking to upstream`+ctx("imaps_wrongname"))
	})
	t.Run("STARTTLS wrong name", func(t *testing.T) {
		fails(t, "imap_starttls_wrongname", "imap", "alice", e.dcTLS,
			`upstream SSL certificate does not match "wrong\.test" while SSL handshaking to upstream`+ctx("imap_starttls_wrongname"))
	})
	t.Run("STARTTLS not offered", func(t *testing.T) {
		fails(t, "imap_starttls_missing", "imap", "alice", e.dcPln,
			`\[error\] .*upstream sent invalid response: "BAD [^"]*" while reading response from upstream`+ctx("imap_starttls_missing"))
	})
	t.Run("client certificate required, none sent", func(t *testing.T) {
		fails(t, "cert_missing", "imap", "alice", e.dcCrt, `\[error\] .*upstream sent invalid response: "NO \[ALERT\] Client didn't present valid SSL certificate" while reading response from upstream`+ctx("cert_missing"))
	})

	t.Run("Auth-SSL on", func(t *testing.T) { ok(t, "by_auth", "imap", "alice", e.dcTLS) })
	t.Run("Auth-SSL starttls", func(t *testing.T) { ok(t, "by_auth", "imap", "bob", e.dcTLS) })
	t.Run("Auth-SSL off", func(t *testing.T) { login(t, "by_auth", "imap", "carol", e.dcPln, true) })
	t.Run("Auth-SSL invalid", func(t *testing.T) {
		all0, _ := logins(e.dcTLS, "dave")
		got := session(t, e.p.Addr("by_auth"), "imap", "dave")
		if len(got) < 2 || got[len(got)-1] != "* BAD internal server error\r\n" {
			t.Errorf("client read %q", got)
		}
		waitLog(t, e.p, `\[error\] .*auth http server sent invalid "Auth-SSL" header: "yes" while connecting to upstream`)
		if all, _ := logins(e.dcTLS, "dave"); all != all0 {
			t.Errorf("the upstream logged a login of dave")
		}
	})

	if strings.Contains(e.p.ErrorLog(), pw) {
		t.Errorf("the password is in error.log")
	}
}
