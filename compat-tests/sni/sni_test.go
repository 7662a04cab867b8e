// Package sni tests certificate choice by the client's server name
// (mailgate-only ssl_certificate_by_name) with `openssl s_client
// -servername` against the real binaries: without the directive mailgate
// presents the certificate nginx 1.22.1 presents (by key type only, the
// last of a type), compared live; with it, the certificate for the name.
package sni

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

func certPEM(t *testing.T, rsaKey bool, names ...string) (string, string) {
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
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
}

var subjectRE = regexp.MustCompile(`(?m)^subject=.*?CN ?= ?([^,\n]+)`)

// presented runs openssl s_client against addr and returns the CN of the
// certificate the server presented.
func presented(t *testing.T, addr, servername string, args ...string) string {
	t.Helper()
	a := []string{"s_client", "-connect", addr}
	if servername != "" {
		a = append(a, "-servername", servername)
	} else {
		a = append(a, "-noservername")
	}
	cmd := exec.Command("openssl", append(a, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	m := subjectRE.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("openssl %q: no certificate:\n%s", a, out)
	}
	return strings.TrimSpace(m[1])
}

func TestCertificateChoice(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is required")
	}
	files := map[string]string{}
	for _, c := range []struct {
		file string
		rsa  bool
		name []string
	}{
		{"b", false, []string{"b.example.test"}},
		{"a", true, []string{"a.example.test"}},
		{"c", true, []string{"c.example.test", "*.c.example.test"}},
	} {
		files[c.file+".crt"], files[c.file+".key"] = certPEM(t, c.rsa, c.name...)
	}
	as := harness.StartAuth(t, authserver.Script{})
	conf := func(extra string) harness.Config {
		return harness.Config{Vars: map[string]string{"auth": as.URL()}, Files: files, Mail: `
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port imaps}} ssl;
        protocol imap;
        ssl_certificate {{prefix}}b.crt; ssl_certificate_key {{prefix}}b.key;
        ssl_certificate {{prefix}}a.crt; ssl_certificate_key {{prefix}}a.key;
        ssl_certificate {{prefix}}c.crt; ssl_certificate_key {{prefix}}c.key;
        ` + extra + `
    }`}
	}
	rsaOnly := []string{"-sigalgs", "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"}
	ecOnly := []string{"-sigalgs", "ecdsa_secp256r1_sha256"}
	type probe struct {
		name string
		args []string
	}
	probes := []probe{
		{"a.example.test", nil}, {"a.example.test", rsaOnly}, {"b.example.test", rsaOnly},
		{"c.example.test", ecOnly}, {"", rsaOnly}, {"", nil},
		{"a.example.test", append([]string{"-tls1_2"}, rsaOnly...)},
	}
	// Off: nginx's choice, compared live.
	ng := harness.StartNginx(t, conf(""))
	mg := harness.StartMailgate(t, conf(""))
	for _, p := range probes {
		want := presented(t, ng.Addr("imaps"), p.name, p.args...)
		t.Logf("nginx, -servername %q %q: %s", p.name, p.args, want)
		if got := presented(t, mg.Addr("imaps"), p.name, p.args...); got != want {
			t.Errorf("off, -servername %q %q: mailgate presents %q, nginx %q", p.name, p.args, got, want)
		}
	}
	// The nginx choice the comparison relies on: by key type, the last RSA
	// certificate for an RSA-only client whatever the name.
	if got := presented(t, ng.Addr("imaps"), "a.example.test", rsaOnly...); got != "c.example.test" {
		t.Errorf("nginx presents %q for an RSA-only client, want the last RSA certificate", got)
	}
	ng.Stop()
	mg.Stop()

	// On: by name, then key type.
	on := harness.StartMailgate(t, conf("ssl_certificate_by_name on;"))
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a.example.test", nil, "a.example.test"},
		{"a.example.test", []string{"-tls1_2"}, "a.example.test"},
		{"b.example.test", nil, "b.example.test"},
		{"c.example.test", nil, "c.example.test"},
		{"imap.c.example.test", nil, "c.example.test"},
		{"unknown.example.test", nil, "b.example.test"},
		{"unknown.example.test", rsaOnly, "c.example.test"},
		{"b.example.test", rsaOnly, "c.example.test"},
		{"", nil, "b.example.test"},
	} {
		if got := presented(t, on.Addr("imaps"), c.name, c.args...); got != c.want {
			t.Errorf("on, -servername %q %q: %q, want %q", c.name, c.args, got, c.want)
		}
	}
}

// TestServerNameToAuth: auth_http_pass_ssl_server_name sends the name of
// openssl s_client's -servername to auth_http, through the real binary.
func TestServerNameToAuth(t *testing.T) {
	files := map[string]string{}
	files["a.crt"], files["a.key"] = certPEM(t, false, "imap.example.test")
	as := harness.StartAuth(t, authserver.Script{})
	for _, on := range []bool{false, true} {
		extra := ""
		if on {
			extra = "auth_http_pass_ssl_server_name on;"
		}
		p := harness.StartMailgate(t, harness.Config{Vars: map[string]string{"auth": as.URL()}, Files: files, Mail: `
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port imaps}} ssl;
        protocol imap;
        ssl_certificate {{prefix}}a.crt; ssl_certificate_key {{prefix}}a.key;
        ` + extra + `
    }`})
		as.Reset()
		cmd := exec.Command("openssl", "s_client", "-quiet", "-crlf", "-ign_eof", "-connect", p.Addr("imaps"), "-servername", "imap.example.test")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, "a LOGIN alice wrong\n") //nolint:errcheck
		replied := make(chan string, 1)
		go func() {
			r := bufio.NewReader(stdout)
			for {
				l, err := r.ReadString('\n')
				if strings.HasPrefix(l, "a ") || err != nil {
					replied <- l
					return
				}
			}
		}()
		select {
		case l := <-replied:
			if !strings.HasPrefix(l, "a NO") {
				t.Errorf("reply to LOGIN: %q", l)
			}
		case <-time.After(10 * time.Second):
			t.Error("no reply to LOGIN")
		}
		stdin.Close()
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
		reqs := as.Parsed()
		if len(reqs) != 1 {
			t.Fatalf("%d auth requests", len(reqs))
		}
		got, want := reqs[0].Get("Auth-SSL-Server-Name"), ""
		if on {
			want = "imap.example.test"
		}
		if got != want || reqs[0].Has("Auth-SSL-Server-Name") != on {
			t.Errorf("on=%v: Auth-SSL-Server-Name %q, want %q", on, got, want)
		}
		p.Stop()
	}
}
