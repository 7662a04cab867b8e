package confparse

import (
	"strings"
	"testing"
	"time"
)

func TestAuthHTTPExtDirectives(t *testing.T) {
	base := "events {}\nmail {\n  auth_http 127.0.0.1:9000/auth;\n  %s\n  server { listen 127.0.0.1:27001; protocol imap; %s }\n}\n"
	for _, tt := range []struct {
		name, mail, server string
		wantErr            string
		check              func(t *testing.T, c *AuthHTTPConf)
	}{
		{"defaults: all off", "", "", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.Keepalive != 0 || len(c.Backups) != 0 || c.Cache != "" || c.ThrottleIP != 0 || c.SSL.Enabled || c.TLS ||
				c.FailTimeout != 10*time.Second || c.CacheValid != 5*time.Minute || c.KeepaliveTimeout != time.Minute {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"keepalive", "auth_http_keepalive 16 30s;", "", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.Keepalive != 16 || c.KeepaliveTimeout != 30*time.Second {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"keepalive off in server", "auth_http_keepalive 16;", "auth_http_keepalive off;", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.Keepalive != 0 {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"keepalive bad", "auth_http_keepalive 0;", "", `invalid value "0" in "auth_http_keepalive" directive in nginx.conf:4`, nil},
		{"backups in order, server replaces", "auth_http_backup 127.0.0.1:9001/a;", "auth_http_backup 127.0.0.1:9002/b; auth_http_backup unix:/run/auth.sock:/c; auth_http_fail_timeout 3s;", "", func(t *testing.T, c *AuthHTTPConf) {
			if len(c.Backups) != 2 || c.Backups[0].Addr != "127.0.0.1:9002" || c.Backups[0].URI != "/b" ||
				c.Backups[1].Network != "unix" || c.Backups[1].Peer != "unix:/run/auth.sock" || c.FailTimeout != 3*time.Second {
				t.Errorf("%+v", c.Backups)
			}
		}},
		{"backup bad url", "auth_http_backup 127.0.0.1:0/a;", "", `invalid port in auth_http_backup "127.0.0.1:0/a" in nginx.conf:4`, nil},
		{"memory cache", "auth_http_cache memory:10m; auth_http_cache_valid 1m 10s; auth_http_cache_secret s3;", "", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.Cache != "memory" || c.CacheSize != 10<<20 || c.CacheValid != time.Minute || c.CacheValidFail != 10*time.Second || c.CacheSecret != "s3" {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"redis cache", "auth_http_cache redis://127.0.0.1:6379/2;", "", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.Cache != "redis" || c.CacheAddr != "127.0.0.1:6379" || c.CacheDB != 2 {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"redis host resolved at load, v6", "auth_http_cache redis://localhost:6380;", "auth_http_cache redis://[::1]:6379/1;", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.Cache != "redis" || c.CacheAddr != "[::1]:6379" || c.CacheDB != 1 {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"cache off in server", "auth_http_cache memory;", "auth_http_cache off;", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.Cache != "" {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"cache bad", "auth_http_cache redis://host;", "", `invalid value "redis://host" in "auth_http_cache" directive in nginx.conf:4`, nil},
		{"cache duplicate", "auth_http_cache off; auth_http_cache memory;", "", `"auth_http_cache" directive is duplicate in nginx.conf:4`, nil},
		{"throttle", "auth_http_throttle ip=20/m login=5/min wait=5s;", "", "", func(t *testing.T, c *AuthHTTPConf) {
			if c.ThrottleIP != 20 || c.ThrottleLogin != 5 || c.ThrottleWait != 5*time.Second {
				t.Errorf("%+v", c.AuthHTTPExt)
			}
		}},
		{"throttle bad", "auth_http_throttle ip=20/h;", "", `invalid parameter "ip=20/h" in nginx.conf:4`, nil},
		{"https with ssl directives", "", "auth_http https://127.0.0.1/a; auth_http_ssl_trusted_certificate ca.pem; auth_http_ssl_name auth.example;", "", func(t *testing.T, c *AuthHTTPConf) {
			if !c.TLS || c.Addr != "127.0.0.1:443" || !c.SSL.Enabled || !c.SSL.Verify || c.SSL.Name != "auth.example" || !strings.HasSuffix(c.SSL.TrustedCertificate, "/ca.pem") {
				t.Errorf("%+v %+v", c.SSL, c)
			}
		}},
		// nginx 1.22.1: `invalid port in auth_http "https://..."`
		{"https alone keeps nginx's error", "", "auth_http https://127.0.0.1:8443/a;", `invalid port in auth_http "https://127.0.0.1:8443/a" in nginx.conf:5`, nil},
		{"ssl cert without key", "auth_http_ssl_certificate c.pem;", "", `"auth_http_ssl_certificate" and "auth_http_ssl_certificate_key" must be set together in nginx.conf:5`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, dir, err := loadString(t, strings.Replace(strings.Replace(base, "%s", tt.mail, 1), "%s", tt.server, 1), nil)
			if tt.wantErr != "" {
				if err == nil || strings.ReplaceAll(err.Error(), dir+"/", "") != tt.wantErr {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &cfg.Mail.Servers[0].AuthHTTP)
		})
	}
}

func TestCheckListsMailgateOnly(t *testing.T) {
	conf := `events {}
mail {
  auth_http 127.0.0.1:9000/auth;
  auth_http_keepalive 8;
  server { listen 127.0.0.1:27001; protocol imap;
    auth_http_cache memory; auth_http_backup 127.0.0.1:9001; }
}
`
	diags, dir := checkString(t, conf)
	var got []string
	for _, l := range diagLines(diags, dir, true) {
		if strings.Contains(l, "is not in nginx 1.22.1") {
			got = append(got, l)
		}
	}
	want := []string{
		`[notice] "auth_http_keepalive" is not in nginx 1.22.1 in nginx.conf:4`,
		`[notice] "auth_http_cache" is not in nginx 1.22.1 in nginx.conf:6`,
		`[notice] "auth_http_backup" is not in nginx 1.22.1 in nginx.conf:6`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range Directives() {
		if strings.HasPrefix(d.Name, "auth_http_") && d.Name != "auth_http_header" && d.Name != "auth_http_timeout" &&
			d.Name != "auth_http_pass_client_cert" && !d.MailgateOnly {
			t.Errorf("%s not marked mailgate-only", d.Name)
		}
	}
}
