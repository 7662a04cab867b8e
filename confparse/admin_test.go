package confparse

import (
	"strings"
	"testing"
)

// admin_listen and admin_pprof: parsed into Core.Admin, listed by check as
// mailgate-only, and check warns about a listener others can reach.
func TestAdminDirectives(t *testing.T) {
	for _, c := range []struct {
		conf      string
		want      Admin
		warn, err string
	}{
		{conf: "", want: Admin{}},
		{conf: "admin_listen 127.0.0.1:9180;", want: Admin{Network: "tcp", Addr: "127.0.0.1:9180"}},
		{conf: "admin_listen 9180; admin_pprof on;", want: Admin{Network: "tcp", Addr: "127.0.0.1:9180", Pprof: true}},
		{conf: "admin_listen [::1]:9180;", want: Admin{Network: "tcp", Addr: "[::1]:9180"}},
		{conf: "admin_listen unix:/run/mailgate-admin.sock;", want: Admin{Network: "unix", Addr: "/run/mailgate-admin.sock"}},
		{conf: "admin_listen 0.0.0.0:9180;", want: Admin{Network: "tcp", Addr: "0.0.0.0:9180"},
			warn: `"admin_listen" is not a loopback address or a unix socket`},
		{conf: "admin_listen 10.0.0.1:9180; admin_pprof on;", want: Admin{Network: "tcp", Addr: "10.0.0.1:9180", Pprof: true},
			warn: `"admin_pprof on" on a non-loopback admin listener`},
		{conf: "admin_listen example.org:80;", err: `invalid address "example.org:80" in "admin_listen" directive`},
		{conf: "admin_listen 70000;", err: `invalid address "70000" in "admin_listen" directive`},
		{conf: "admin_pprof maybe;", err: `admin_pprof`},
		{conf: "admin_listen 9180; admin_listen 9181;", err: `"admin_listen" directive is duplicate`},
	} {
		conf := c.conf + "\nevents {}\nmail {\n  auth_http 127.0.0.1:9/auth;\n  server { listen 127.0.0.1:27143; protocol imap; }\n}\n"
		diags, dir := checkString(t, conf)
		errs := strings.Join(diagLines(diags, dir, false), "\n")
		all := strings.Join(diagLines(diags, dir, true), "\n")
		if c.err != "" {
			if !strings.Contains(errs, c.err) {
				t.Errorf("%q: errors %q, want %q", c.conf, errs, c.err)
			}
			continue
		}
		if errs != "" {
			t.Errorf("%q: errors %q", c.conf, errs)
			continue
		}
		if c.warn != "" && !strings.Contains(all, c.warn) {
			t.Errorf("%q: no warning %q in:\n%s", c.conf, c.warn, all)
		}
		if c.warn == "" && strings.Contains(all, "loopback") {
			t.Errorf("%q: unexpected warning in:\n%s", c.conf, all)
		}
		if c.conf != "" && !strings.Contains(all, `"admin_listen" is not in nginx 1.22.1`) && strings.Contains(c.conf, "admin_listen") {
			t.Errorf("%q: admin_listen not listed as mailgate-only:\n%s", c.conf, all)
		}
		cfg, _ := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
		if cfg == nil {
			t.Fatalf("%q: not loaded", c.conf)
		}
		got := cfg.Core.Admin
		got.Pos = Pos{}
		if got != c.want {
			t.Errorf("%q: Admin %+v, want %+v", c.conf, got, c.want)
		}
	}
}
