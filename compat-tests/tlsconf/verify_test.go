package tlsconf_test

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TestVerifyResultsAgainstNginx presents client certificates that fail
// verification in each way OpenSSL names (self-signed, self-signed in the
// chain, unknown issuer, first certificate unverifiable, expired, not yet
// valid, wrong purpose, non-CA issuer, chain too deep, keys and digests
// below Debian's OpenSSL security level 2) under
// ssl_verify_client on, optional and optional_no_ca, and compares
// Auth-SSL-Verify, the reply and the error.log line.
func TestVerifyResultsAgainstNginx(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl (the command) is needed: apt-get install openssl")
	}
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: "127.0.0.1:9"},
	}})
	cert, key := harness.SelfSigned("mx.test")
	root := issue(t, certSpec{cn: "root", ca: true})
	inter := issue(t, certSpec{cn: "inter", ca: true, parent: root})
	leaf := issue(t, certSpec{cn: "leaf", parent: inter})
	direct := issue(t, certSpec{cn: "direct", parent: root})
	self := issue(t, certSpec{cn: "self"})
	selfExpired := issue(t, certSpec{cn: "self-expired", notBefore: -48 * time.Hour, notAfter: -24 * time.Hour})
	expired := issue(t, certSpec{cn: "expired", parent: root, notBefore: -48 * time.Hour, notAfter: -24 * time.Hour})
	future := issue(t, certSpec{cn: "future", parent: root, notBefore: 24 * time.Hour, notAfter: 48 * time.Hour})
	interExpired := issue(t, certSpec{cn: "inter-expired", ca: true, parent: root, notBefore: -48 * time.Hour, notAfter: -24 * time.Hour})
	leafOfExpired := issue(t, certSpec{cn: "leaf-of-expired", parent: interExpired})
	serverOnly := issue(t, certSpec{cn: "server-only", parent: root, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	nonCA := issue(t, certSpec{cn: "non-ca", parent: root, notCA: true})
	leafOfNonCA := issue(t, certSpec{cn: "leaf-of-non-ca", parent: nonCA})
	otherRoot := issue(t, certSpec{cn: "other-root", ca: true})
	stranger := issue(t, certSpec{cn: "stranger", parent: otherRoot})
	strangerExpired := issue(t, certSpec{cn: "stranger-expired", parent: otherRoot, notBefore: -48 * time.Hour, notAfter: -24 * time.Hour})

	files := map[string]string{"cert.pem": cert, "key.pem": key, "root.pem": root.pem, "inter.pem": inter.pem}
	dir := t.TempDir()
	sha1Leaf := signWithOpenSSL(t, dir, root, "sha1-leaf", "-sha1", "ec:prime256v1")
	smallKey := signWithOpenSSL(t, dir, root, "rsa-1024", "-sha256", "rsa:1024")
	sha1Inter := signWithOpenSSL(t, dir, root, "sha1-inter", "-sha1", "ec:prime256v1", "basicConstraints=critical,CA:TRUE", "keyUsage=keyCertSign,cRLSign")
	leafOfSHA1 := issue(t, certSpec{cn: "leaf-of-sha1", parent: sha1Inter})
	n := 0
	write := func(s string) string {
		n++
		p := filepath.Join(dir, "f"+string(rune('a'+n)))
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	present := func(c *issued, chain ...*issued) []string {
		args := []string{"-tls1_2", "-cert", write(c.pem), "-key", write(c.kpem)}
		if len(chain) > 0 {
			var s string
			for _, x := range chain {
				s += x.pem
			}
			args = append(args, "-cert_chain", write(s))
		}
		return args
	}
	lowSec := []string{"-cipher", "DEFAULT@SECLEVEL=0"}
	const (
		noCA     = "ssl_verify_client optional_no_ca; "
		on       = "ssl_verify_client on; ssl_client_certificate {{prefix}}root.pem; "
		optional = "ssl_verify_client optional; ssl_client_certificate {{prefix}}root.pem; "
	)
	scenarios := []scenario{
		{name: "no_ca, leaf alone", server: noCA, client: present(stranger),
			must: []string{"Auth-SSL-Verify: FAILED:unable to verify the first certificate\n"}},
		{name: "no_ca, leaf and intermediate", server: noCA, client: present(leaf, inter),
			must: []string{"Auth-SSL-Verify: FAILED:unable to get local issuer certificate\n"}},
		{name: "no_ca, whole chain", server: noCA, client: present(leaf, inter, root),
			must: []string{"Auth-SSL-Verify: FAILED:self-signed certificate in certificate chain\n"}},
		{name: "no_ca, self-signed", server: noCA, client: present(self),
			must: []string{"Auth-SSL-Verify: FAILED:self-signed certificate\n"}},
		{name: "no_ca, self-signed expired", server: noCA, client: present(selfExpired), must: []string{"(10:certificate has expired)"}},
		{name: "no_ca, expired, unknown issuer", server: noCA, client: present(strangerExpired), must: []string{"(10:certificate has expired)"}},
		{name: "no_ca, depth 0 chain", server: noCA + "ssl_verify_depth 0;", client: present(leaf, inter, root), must: []string{"FAILED:unable to get local issuer certificate\n"}},
		{name: "on, expired", server: on, client: present(expired), must: []string{"(10:certificate has expired)"}},
		{name: "on, not yet valid", server: on, client: present(future), must: []string{"(9:certificate is not yet valid)"}},
		{name: "on, intermediate expired", server: on, client: present(leafOfExpired, interExpired), must: []string{"(10:certificate has expired)"}},
		{name: "on, server purpose only", server: on, client: present(serverOnly), must: []string{"(26:unsuitable certificate purpose)"}},
		{name: "on, issuer not a CA", server: on, client: present(leafOfNonCA, nonCA), must: []string{"(26:unsuitable certificate purpose)"}},
		{name: "on, self-signed", server: on, client: present(self), must: []string{"(18:self-signed certificate)"}},
		{name: "on, unknown issuer", server: on, client: present(stranger), must: []string{"(21:unable to verify the first certificate)"}},
		{name: "on, unknown issuer with its root", server: on, client: present(stranger, otherRoot), must: []string{"(19:self-signed certificate in certificate chain)"}},
		{name: "on, depth 0", server: on + "ssl_verify_depth 0;", client: present(leaf, inter), must: []string{"(20:unable to get local issuer certificate)"}},
		{name: "optional, unknown issuer", server: optional, client: present(stranger), must: []string{"(21:unable to verify the first certificate)"}},
		// s_client itself refuses to use these below security level 0
		{name: "on, SHA-1 signed", server: on, client: append(present(sha1Leaf), lowSec...), must: []string{"(68:CA signature digest algorithm too weak)"}},
		{name: "on, RSA-1024 key", server: on, client: append(present(smallKey), lowSec...), must: []string{"(66:EE certificate key too weak)"}},
		{name: "on, RSA-1024 key, SECLEVEL=1", server: on + "ssl_ciphers HIGH:!aNULL:@SECLEVEL=1;", client: append(present(smallKey), lowSec...), must: []string{"Auth-SSL-Verify: SUCCESS"}},
		{name: "on, SHA-1 signed, SECLEVEL=0", server: on + "ssl_ciphers HIGH:!aNULL:@SECLEVEL=0;", client: append(present(sha1Leaf), lowSec...), must: []string{"Auth-SSL-Verify: SUCCESS"}},
		{name: "on, SHA-1 signed intermediate", server: on, client: append(present(leafOfSHA1, sha1Inter), lowSec...), must: []string{"(68:CA signature digest algorithm too weak)"}},
		{name: "on, only the intermediate trusted", server: "ssl_verify_client on; ssl_client_certificate {{prefix}}inter.pem;", client: present(leaf),
			must: []string{"(2:unable to get issuer certificate)"}},
		{name: "on, intermediate and root trusted", server: "ssl_verify_client on; ssl_client_certificate {{prefix}}inter.pem; ssl_trusted_certificate {{prefix}}root.pem;", client: present(leaf),
			must: []string{"Auth-SSL-Verify: SUCCESS"}},
		{name: "on, direct", server: on, client: present(direct),
			must: []string{"Auth-SSL-Verify: SUCCESS"}},
	}
	runScenarios(t, auth, files, scenarios)
}
