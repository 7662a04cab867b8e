// Package tlsconf_test compares what TLS clients get from nginx and from
// mailgate under the same ssl_* configuration: the negotiated protocol,
// cipher and group as `openssl s_client` reports them, what the client
// reads, the Auth-SSL-* headers the auth server receives, and the
// connection's error.log lines.
package tlsconf_test

import (
	"bufio"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// sClient runs `openssl s_client -brief` against addr, logs in to the IMAP
// server once (the auth server refuses the password, which is enough for
// it to record the request) and returns the handshake summary and the
// IMAP lines.
func sClient(t *testing.T, addr string, args ...string) string {
	t.Helper()
	cmdArgs := append([]string{"s_client", "-brief", "-crlf", "-connect", addr, "-servername", "mx.test"}, args...)
	cmd := exec.Command("openssl", cmdArgs...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				lines <- l
			}
			if err != nil {
				return
			}
		}
	}()
	var imap strings.Builder
	read := func() bool {
		select {
		case l, ok := <-lines:
			if !ok {
				imap.WriteString("[closed]\n")
				return false
			}
			fmt.Fprintf(&imap, "S: %q\n", l)
			return true
		case <-time.After(5 * time.Second):
			imap.WriteString("[timeout]\n")
			return false
		}
	}
	if read() {
		io.WriteString(stdin, "a LOGIN alice wrong\n") //nolint:errcheck
		imap.WriteString("C: \"a LOGIN alice wrong\\r\\n\"\n")
		read()
	}
	stdin.Close()
	done := make(chan struct{})
	go func() {
		for range lines { //nolint:revive // drain
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill() //nolint:errcheck
	}
	cmd.Wait() //nolint:errcheck
	return summary(stderr.String()) + imap.String()
}

var briefFields = regexp.MustCompile(`(?m)^(Protocol version|Ciphersuite|Peer Temp Key|Server Temp Key): .*$`)

// summary keeps the fields of s_client's -brief report that the server's
// configuration decides, or its error.
func summary(s string) string {
	var b strings.Builder
	for _, m := range briefFields.FindAllString(s, -1) {
		b.WriteString(m + "\n")
	}
	if b.Len() == 0 {
		// A refused handshake: OpenSSL's reason, without the addresses
		// and line numbers.
		re := regexp.MustCompile(`error:[0-9A-F]+:SSL routines:[^:]*:([^:\n]+)`)
		if m := re.FindStringSubmatch(s); m != nil {
			b.WriteString("handshake error: " + m[1] + "\n")
		} else {
			b.WriteString("no handshake: " + strings.TrimSpace(s) + "\n")
		}
	}
	return b.String()
}

type scenario struct {
	name string
	// server directives of the one IMAP server (listen ... ssl)
	server string
	// client arguments to s_client
	client []string
	// must: lines the rendering of both must contain (so a scenario
	// cannot pass by both failing the same way)
	must []string
	// differ, if set, declares why the renderings may differ; they are
	// still shown.
	differ string
}

func TestTLSAgainstNginx(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl (the command) is needed: apt-get install openssl")
	}
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: "127.0.0.1:9"},
	}})
	cert, key := harness.SelfSigned("mx.test")
	encKey := encryptKey(t, key, "secret")
	rsaCert := issue(t, certSpec{cn: "mx.test", rsaBits: 2048, notCA: true})
	files := map[string]string{"cert.pem": cert, "key.pem": key, "enc.key": encKey, "pass.txt": "wrong\nsecret\n",
		"rsa.pem": rsaCert.pem, "rsa.key": rsaCert.kpem}

	scenarios := []scenario{
		{name: "ciphers one suite", server: "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES128-SHA;",
			must: []string{"Protocol version: TLSv1.2", "Ciphersuite: ECDHE-ECDSA-AES128-SHA", "Auth-SSL-Cipher: ECDHE-ECDSA-AES128-SHA"}},
		{name: "ciphers cipher string", server: "ssl_protocols TLSv1.2; ssl_ciphers 'ECDHE+AESGCM:!AES256';",
			must: []string{"Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256"}},
		{name: "ciphers client order", server: "ssl_protocols TLSv1.2;",
			client: []string{"-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"},
			must:   []string{"Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305"}},
		{name: "ciphers server order", server: "ssl_protocols TLSv1.2; ssl_prefer_server_ciphers on; ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305;",
			client: []string{"-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"},
			must:   []string{"Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256"}},
		{name: "ciphers no common suite", server: "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES128-SHA;",
			client: []string{"-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"},
			must:   []string{"handshake error"}},
		{name: "ecdh_curve secp384r1", server: "ssl_ecdh_curve secp384r1;",
			client: []string{"-ciphersuites", "TLS_AES_128_GCM_SHA256"},
			must:   []string{"Protocol version: TLSv1.3", "Server Temp Key: ECDH, secp384r1, 384 bits"}},
		{name: "ecdh_curve secp384r1 TLSv1.2", server: "ssl_protocols TLSv1.2; ssl_ecdh_curve secp384r1;",
			must: []string{"Protocol version: TLSv1.2", "Server Temp Key: ECDH, secp384r1, 384 bits"}},
		{name: "ecdh_curve list, client's key share", server: "ssl_ecdh_curve prime256v1:secp384r1;",
			client: []string{"-groups", "secp384r1:prime256v1", "-ciphersuites", "TLS_AES_128_GCM_SHA256"},
			must:   []string{"Server Temp Key: ECDH, secp384r1, 384 bits"}},
		{name: "ecdh_curve no common group", server: "ssl_ecdh_curve secp521r1;",
			client: []string{"-groups", "X25519"},
			must:   []string{"handshake error"}},
		{name: "encrypted key and password file", server: "ssl_certificate_key {{prefix}}enc.key; ssl_password_file {{prefix}}pass.txt;",
			client: []string{"-ciphersuites", "TLS_AES_128_GCM_SHA256"},
			must:   []string{"Protocol version: TLSv1.3", "Auth-SSL-Protocol: TLSv1.3"}},
		{name: "protocols TLSv1.2 only", server: "ssl_protocols TLSv1.2;",
			must: []string{"Protocol version: TLSv1.2", "Ciphersuite: ECDHE-ECDSA-AES256-GCM-SHA384", "Server Temp Key: X25519, 253 bits", "Auth-SSL-Protocol: TLSv1.2"}},
		{name: "protocols TLSv1.2 only, TLSv1.3 client", server: "ssl_protocols TLSv1.2;",
			client: []string{"-tls1_3"},
			must:   []string{"handshake error"}},
		{name: "protocols TLSv1.3 only, TLSv1.2 client", server: "ssl_protocols TLSv1.3;",
			client: []string{"-tls1_2"},
			must:   []string{"handshake error"}},
		// OpenSSL 3 at security level 1 has no signature algorithm for
		// TLS 1.0/1.1: listed or not, they fail (unless @SECLEVEL=0).
		{name: "protocols TLSv1 listed, TLSv1 client", server: "ssl_protocols TLSv1 TLSv1.1 TLSv1.2;",
			client: []string{"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"},
			must:   []string{"handshake error: tlsv1 alert internal error", "SSL routines::no suitable signature algorithm"}},
		{name: "protocols TLSv1.1 listed, TLSv1.1 client", server: "ssl_protocols TLSv1.1 TLSv1.2;",
			client: []string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"},
			must:   []string{"handshake error: tlsv1 alert internal error", "SSL routines::no suitable signature algorithm"}},
		{name: "protocols TLSv1 listed, TLSv1.2 client", server: "ssl_protocols TLSv1 TLSv1.1 TLSv1.2;",
			client: []string{"-tls1_2"},
			must:   []string{"Protocol version: TLSv1.2"}},
		{name: "protocols TLSv1 only", server: "ssl_protocols TLSv1;",
			client: []string{"-cipher", "DEFAULT@SECLEVEL=0"},
			must:   []string{"handshake error: tlsv1 alert internal error", "SSL routines::no suitable signature algorithm"}},
		{name: "RSA certificate, TLSv1 client, RSA key exchange", server: "ssl_protocols TLSv1 TLSv1.2; ssl_certificate {{prefix}}rsa.pem; ssl_certificate_key {{prefix}}rsa.key;",
			client: []string{"-tls1", "-cipher", "AES256-SHA@SECLEVEL=0"},
			must:   []string{"handshake error: tlsv1 alert internal error", "SSL routines::no suitable signature algorithm"}},
		{name: "RSA certificate, TLSv1 client, ECDHE", server: "ssl_protocols TLSv1 TLSv1.2; ssl_certificate {{prefix}}rsa.pem; ssl_certificate_key {{prefix}}rsa.key;",
			client: []string{"-tls1", "-cipher", "ECDHE-RSA-AES256-SHA@SECLEVEL=0"},
			must:   []string{"handshake error: tlsv1 alert internal error", "SSL routines::no suitable signature algorithm"}},
		{name: "protocols TLSv1 listed, SECLEVEL=0, TLSv1 client", server: "ssl_protocols TLSv1 TLSv1.2; ssl_ciphers HIGH:!aNULL:!MD5:@SECLEVEL=0;",
			client: []string{"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"},
			must:   []string{"Protocol version: TLSv1\n", "Auth-SSL-Protocol: TLSv1\n"}},
		{name: "TLSv1.3 default suites", server: "",
			must:   []string{"Protocol version: TLSv1.3"},
			differ: "TLS 1.3 suite choice: OpenSSL takes the client's first (TLS_AES_256_GCM_SHA384 from s_client), crypto/tls its own order (TLS_AES_128_GCM_SHA256 with AES hardware) and cannot be configured"},
	}

	runScenarios(t, auth, files, scenarios)
}

// runScenarios runs each scenario against nginx and then mailgate, one
// IMAP server with "listen ... ssl" and the scenario's directives.
func runScenarios(t *testing.T, auth *authserver.Server, files map[string]string, scenarios []scenario) {
	conf := func(s scenario) harness.Config {
		return harness.Config{Mail: `
    server_name mx.test;
    auth_http ` + auth.URL() + `;
    ssl_certificate {{prefix}}cert.pem;
    ssl_certificate_key {{prefix}}key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;  # newer nginx's default, mailgate's too
    server {
        listen 127.0.0.1:{{port imaps}} ssl;
        protocol imap;
        ` + s.server + `
    }`, Files: files}
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			var renders []string
			for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
				p := harness.Start(t, impl, conf(s))
				auth.Reset()
				out := sClient(t, p.Addr("imaps"), s.client...)
				time.Sleep(200 * time.Millisecond)
				p.Stop()
				var b strings.Builder
				b.WriteString("== client\n" + out)
				for i, r := range auth.Requests() {
					fmt.Fprintf(&b, "== auth request %d\n%s\n", i+1, sslHeaders(string(r)))
				}
				b.WriteString("== error.log\n" + harness.ConnLogLines(p.ErrorLog()))
				r := b.String()
				r = strings.ReplaceAll(r, p.Addr("imaps"), "127.0.0.1:{{port imaps}}")
				for _, n := range harness.DefaultNormalizers() {
					r = n(r)
				}
				for _, m := range s.must {
					if !strings.Contains(r, m) {
						t.Errorf("%s: no %q in:\n%s", impl, m, r)
					}
				}
				renders = append(renders, r)
			}
			switch {
			case renders[0] == renders[1]:
				t.Logf("identical:\n%s", renders[0])
			case s.differ != "":
				t.Logf("declared difference (%s):\nnginx:\n%s\nmailgate:\n%s", s.differ, renders[0], renders[1])
			default:
				t.Errorf("nginx and mailgate differ:\nnginx:\n%s\nmailgate:\n%s", renders[0], renders[1])
			}
		})
	}
}

// TestClientCertificatesAgainstNginx checks ssl_verify_depth and ssl_crl:
// a client certificate issued through an intermediate CA, with CRLs from
// both CAs or from one, a revoked one, and depths that allow the chain or
// not.
func TestClientCertificatesAgainstNginx(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl (the command) is needed: apt-get install openssl")
	}
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: "127.0.0.1:9"},
	}})
	cert, key := harness.SelfSigned("mx.test")
	pk := newPKI(t)
	files := map[string]string{"cert.pem": cert, "key.pem": key, "root.pem": pk.rootPEM,
		"crl-both.pem": pk.rootCRL + pk.interCRL, "crl-inter.pem": pk.interCRL, "crl-revoked.pem": pk.rootCRL + pk.interCRLRevoked}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := []string{"-cert", write("leaf.pem", pk.leafPEM), "-key", write("leaf.key", pk.leafKey), "-cert_chain", write("inter.pem", pk.interPEM)}
	direct := []string{"-cert", write("direct.pem", pk.directPEM), "-key", write("direct.key", pk.directKey)}
	tls12 := []string{"-tls1_2"}
	verify := "ssl_verify_client on; ssl_client_certificate {{prefix}}root.pem; "
	scenarios := []scenario{
		{name: "chain, depth 1", server: verify + "ssl_verify_depth 1;", client: append(leaf, tls12...),
			must: []string{"Auth-SSL-Verify: SUCCESS", "Auth-SSL-Subject: CN=leaf"}},
		{name: "chain, depth 0", server: verify + "ssl_verify_depth 0;", client: append(leaf, tls12...),
			must: []string{"(20:unable to get local issuer certificate)"}},
		{name: "direct, depth 0", server: verify + "ssl_verify_depth 0;", client: append(direct, tls12...),
			must: []string{"Auth-SSL-Verify: SUCCESS"}},
		{name: "CRLs of both CAs", server: verify + "ssl_verify_depth 2; ssl_crl {{prefix}}crl-both.pem;", client: append(leaf, tls12...),
			must: []string{"Auth-SSL-Verify: SUCCESS"}},
		{name: "revoked", server: verify + "ssl_verify_depth 2; ssl_crl {{prefix}}crl-revoked.pem;", client: append(leaf, tls12...),
			must: []string{"certificate revoked"}},
		{name: "no CRL of the root", server: verify + "ssl_verify_depth 2; ssl_crl {{prefix}}crl-inter.pem;", client: append(leaf, tls12...),
			must: []string{"unable to get certificate CRL"}},
		{name: "revoked, optional", server: "ssl_verify_client optional; ssl_client_certificate {{prefix}}root.pem; ssl_crl {{prefix}}crl-revoked.pem; ssl_verify_depth 2;", client: append(leaf, tls12...),
			must: []string{"certificate revoked"}},
	}
	runScenarios(t, auth, files, scenarios)
}

// TestNotTLSAgainstNginx sends bytes that are not TLS to a "listen ...
// ssl" port: nginx logs OpenSSL's name for them.
func TestNotTLSAgainstNginx(t *testing.T) {
	auth := harness.StartAuth(t, authserver.Script{})
	cert, key := harness.SelfSigned("mx.test")
	conf := harness.Config{Mail: `
    auth_http ` + auth.URL() + `;
    ssl_certificate {{prefix}}cert.pem;
    ssl_certificate_key {{prefix}}key.pem;
    server {
        listen 127.0.0.1:{{port imaps}} ssl;
        protocol imap;
    }`, Files: map[string]string{"cert.pem": cert, "key.pem": key}}
	inputs := []string{"GET / HTTP/1.0\r\n\r\n", "POST / HTTP/1.0\r\n\r\n", "CONNECT mx:993 HTTP/1.0\r\n\r\n", "a LOGIN alice secret\r\n"}
	var renders []string
	for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
		p := harness.Start(t, impl, conf)
		var b strings.Builder
		for _, in := range inputs {
			c, err := net.DialTimeout("tcp", p.Addr("imaps"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte(in))                                //nolint:errcheck
			c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			got, err := io.ReadAll(c)
			fmt.Fprintf(&b, "C: %q\nS: %q [%v]\n", in, got, err)
			c.Close()
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		p.Stop()
		r := b.String() + "== error.log\n" + harness.ConnLogLines(p.ErrorLog())
		r = strings.ReplaceAll(r, p.Addr("imaps"), "127.0.0.1:{{port imaps}}")
		for _, n := range harness.DefaultNormalizers() {
			r = n(r)
		}
		for _, want := range []string{"SSL routines::http request", "SSL routines::https proxy request", "SSL routines::wrong version number"} {
			if !strings.Contains(r, want) {
				t.Errorf("%s: no %q in:\n%s", impl, want, r)
			}
		}
		renders = append(renders, r)
	}
	if renders[0] != renders[1] {
		t.Errorf("nginx and mailgate differ:\nnginx:\n%s\nmailgate:\n%s", renders[0], renders[1])
	} else {
		t.Logf("identical:\n%s", renders[0])
	}
}

// pki is a root CA, an intermediate CA, a client certificate under each
// and their CRLs, PEM-encoded.
type pki struct {
	rootPEM, interPEM, leafPEM, leafKey, directPEM, directKey string
	rootCRL, interCRL, interCRLRevoked                        string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	crl := func(issuer *issued, revoked ...int64) string {
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour)}
		for _, r := range revoked {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: big.NewInt(r), RevocationTime: time.Now().Add(-time.Minute)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.cert, issuer.key)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	}
	root := issue(t, certSpec{cn: "root", serial: 1, ca: true})
	inter := issue(t, certSpec{cn: "inter", serial: 2, ca: true, parent: root})
	leaf := issue(t, certSpec{cn: "leaf", serial: 3, parent: inter})
	direct := issue(t, certSpec{cn: "direct", serial: 4, parent: root})
	return &pki{
		rootPEM: root.pem, interPEM: inter.pem, leafPEM: leaf.pem, leafKey: leaf.kpem,
		directPEM: direct.pem, directKey: direct.kpem,
		rootCRL: crl(root), interCRL: crl(inter), interCRLRevoked: crl(inter, 3),
	}
}

// sslHeaders keeps the Auth-SSL* lines of an auth_http request.
func sslHeaders(req string) string {
	var b strings.Builder
	for _, l := range strings.Split(req, "\r\n") {
		if strings.HasPrefix(l, "Auth-SSL") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// encryptKey writes keyPEM as an encrypted PKCS#8 key (PBES2, AES-256-CBC),
// as `openssl pkcs8 -topk8` does.
func encryptKey(t *testing.T, keyPEM, password string) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(in, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", in, "-passout", "pass:"+password).Output()
	if err != nil {
		t.Fatalf("openssl pkcs8: %v", err)
	}
	if !strings.Contains(string(out), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("openssl pkcs8 wrote %q", out)
	}
	return string(out)
}
