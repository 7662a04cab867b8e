package confparse

import (
	"strings"
	"testing"
)

func TestAuthHTTPResolveDirective(t *testing.T) {
	for _, c := range []struct {
		mail, server string
		want         bool
		warn, err    string
	}{
		{},
		{mail: "resolver 127.0.0.1; auth_http_resolve on;", want: true},
		{mail: "resolver 127.0.0.1; auth_http_resolve on;", server: "auth_http_resolve off;"},
		{server: "auth_http_resolve on;", want: true, warn: `"auth_http_resolve on" without "resolver"`},
		{mail: "auth_http_resolve yes;", err: `it must be "on" or "off"`},
	} {
		conf := "events {}\nmail {\n  auth_http 127.0.0.1:9/auth;\n" + c.mail +
			"\n  server { listen 127.0.0.1:27143; protocol imap; " + c.server + " }\n}\n"
		diags, dir := checkString(t, conf)
		errs := strings.Join(diagLines(diags, dir, false), "\n")
		all := strings.Join(diagLines(diags, dir, true), "\n")
		name := c.mail + " / " + c.server
		if c.err != "" {
			if !strings.Contains(errs, c.err) {
				t.Errorf("%q: errors %q, want %q", name, errs, c.err)
			}
			continue
		}
		if errs != "" {
			t.Errorf("%q: errors %q", name, errs)
			continue
		}
		if c.warn != "" && !strings.Contains(all, c.warn) || c.warn == "" && strings.Contains(all, "without \"resolver\"") {
			t.Errorf("%q: want warning %q in:\n%s", name, c.warn, all)
		}
		used := strings.Contains(c.mail+c.server, "auth_http_resolve")
		if listed := strings.Contains(all, `"auth_http_resolve" is not in nginx 1.22.1`); used != listed {
			t.Errorf("%q: listed as mailgate-only %v:\n%s", name, listed, all)
		}
		cfg, _ := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
		if got := cfg.Mail.Servers[0].AuthHTTP.Resolve; got != c.want {
			t.Errorf("%q: Resolve %v, want %v", name, got, c.want)
		}
	}
}
