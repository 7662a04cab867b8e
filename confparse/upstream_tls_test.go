package confparse

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The proxy_ssl_* and proxy_starttls directives: merged main→server, off
// unless written, listed by check as mailgate-only, their files checked.
func TestUpstreamTLSDirectives(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	td := filepath.Join(wd, "testdata", "sslfile")
	def := UpstreamTLSConf{VerifyDepth: 1, Protocols: []string{"TLSv1.2", "TLSv1.3"}, Ciphers: "DEFAULT", SessionReuse: true}
	with := func(f func(c *UpstreamTLSConf)) UpstreamTLSConf {
		c := def
		c.Protocols = append([]string{}, def.Protocols...)
		f(&c)
		return c
	}
	for _, c := range []struct {
		name       string
		mail, srv  string
		want       UpstreamTLSConf
		err        string
		notListed  bool // no directive written: nothing listed
		wantListed string
	}{
		{name: "none", want: def, notListed: true},
		{name: "proxy_ssl in mail, inherited", mail: "proxy_ssl on;", want: with(func(c *UpstreamTLSConf) { c.Mode = UpstreamSSL }),
			wantListed: `"proxy_ssl" is not in nginx 1.22.1`},
		{name: "server overrides mail", mail: "proxy_ssl on;", srv: "proxy_ssl off; proxy_starttls on;",
			want: with(func(c *UpstreamTLSConf) { c.Mode = UpstreamStartTLS }), wantListed: `"proxy_starttls" is not in nginx 1.22.1`},
		{name: "everything", mail: "proxy_ssl on; proxy_ssl_verify on; proxy_ssl_trusted_certificate " + td + "/cert.pem;",
			srv: "proxy_ssl_verify_depth 3; proxy_ssl_name mail.example; proxy_ssl_server_name on; proxy_ssl_protocols TLSv1.3;" +
				" proxy_ssl_ciphers HIGH:!aNULL; proxy_ssl_certificate " + td + "/cert.pem; proxy_ssl_certificate_key " + td + "/key.pem;" +
				" proxy_ssl_session_reuse off; proxy_ssl_auth_header on;",
			want: UpstreamTLSConf{Mode: UpstreamSSL, AuthHeader: true, Verify: true, TrustedCertificate: td + "/cert.pem", VerifyDepth: 3,
				Name: "mail.example", ServerName: true, Protocols: []string{"TLSv1.3"}, Ciphers: "HIGH:!aNULL",
				Certificate: td + "/cert.pem", CertificateKey: td + "/key.pem"},
			wantListed: `"proxy_ssl_auth_header" is not in nginx 1.22.1`},
		{name: "both modes", srv: "proxy_ssl on; proxy_starttls on;", err: `"proxy_ssl" and "proxy_starttls" cannot both be on`},
		{name: "verify without CA", srv: "proxy_starttls on; proxy_ssl_verify on;", err: "no proxy_ssl_trusted_certificate for proxy_ssl_verify"},
		{name: "certificate without key", srv: "proxy_ssl on; proxy_ssl_certificate " + td + "/cert.pem;",
			err: `no "proxy_ssl_certificate_key" is defined for certificate`},
		{name: "bad cipher string", srv: "proxy_ssl on; proxy_ssl_ciphers NOSUCHCIPHER;", err: "NOSUCHCIPHER"},
		{name: "missing CA file", srv: "proxy_ssl on; proxy_ssl_verify on; proxy_ssl_trusted_certificate " + td + "/nosuch.pem;", err: "nosuch.pem"},
		{name: "bad flag", srv: "proxy_ssl maybe;", err: `invalid value "maybe" in "proxy_ssl" directive`},
		{name: "files unchecked while off", srv: "proxy_ssl_verify on;",
			want: with(func(c *UpstreamTLSConf) { c.Verify = true }), wantListed: `"proxy_ssl_verify" is not in nginx 1.22.1`},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := "events {}\nmail {\n  auth_http 127.0.0.1:9/auth;\n  " + c.mail +
				"\n  server { listen 127.0.0.1:27143; protocol imap; " + c.srv + " }\n}\n"
			diags, dir := checkString(t, conf)
			errs := strings.Join(diagLines(diags, dir, false), "\n")
			listed := strings.Join(diagLines(diags, dir, true), "\n")
			if c.err != "" {
				if !strings.Contains(errs, c.err) {
					t.Errorf("errors %q, want %q", errs, c.err)
				}
				return
			}
			if errs != "" {
				t.Fatalf("errors %q", errs)
			}
			if c.notListed && strings.Contains(listed, "proxy_ssl") {
				t.Errorf("listed without any directive:\n%s", listed)
			}
			unverified := `without "proxy_ssl_verify on"`
			if warn := c.want.Mode != UpstreamPlain && !c.want.Verify; warn != strings.Contains(listed, unverified) {
				t.Errorf("advice %q given: %v, want %v:\n%s", unverified, !warn, warn, listed)
			}
			if c.wantListed != "" && !strings.Contains(listed, c.wantListed) {
				t.Errorf("not listed as mailgate-only (%q):\n%s", c.wantListed, listed)
			}
			cfg, _ := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
			if cfg == nil || cfg.Mail == nil || len(cfg.Mail.Servers) != 1 {
				t.Fatal("not loaded")
			}
			if got := cfg.Mail.Servers[0].Proxy.TLS; !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}
