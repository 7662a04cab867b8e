package confparse

import (
	"strings"
	"testing"
)

// The OAuth values of *_auth (mailgate-only): accepted, mapped to their
// bits, and each listed by check; the nginx values alone give no notice.
func TestAuthOAuthValues(t *testing.T) {
	conf := `events {}
mail {
  auth_http 127.0.0.1:9/auth;
  imap_auth plain oauthbearer;
  server { listen 127.0.0.1:27143; protocol imap; }
  server { listen 127.0.0.1:27110; protocol pop3; pop3_auth apop XOAUTH2; }
  server { listen 127.0.0.1:27587; protocol smtp; smtp_auth login oauthbearer xoauth2; }
  server { listen 127.0.0.1:27144; protocol imap; imap_auth plain cram-md5; }
}
`
	diags, dir := checkString(t, conf)
	if errs := diagLines(diags, dir, false); len(errs) > 0 {
		t.Fatalf("errors: %q", errs)
	}
	var got []string
	for _, l := range diagLines(diags, dir, true) {
		if strings.Contains(l, "is not in nginx 1.22.1") {
			got = append(got, l)
		}
	}
	want := []string{
		`[notice] "imap_auth" value "oauthbearer" is not in nginx 1.22.1 in nginx.conf:4`,
		`[notice] "pop3_auth" value "xoauth2" is not in nginx 1.22.1 in nginx.conf:6`,
		`[notice] "smtp_auth" value "oauthbearer" is not in nginx 1.22.1 in nginx.conf:7`,
		`[notice] "smtp_auth" value "xoauth2" is not in nginx 1.22.1 in nginx.conf:7`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	cfg, _ := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	if cfg == nil || cfg.Mail == nil || len(cfg.Mail.Servers) != 4 {
		t.Fatalf("config not loaded: %+v", cfg)
	}
	s := cfg.Mail.Servers
	for i, c := range []struct{ got, want AuthMethods }{
		{s[0].IMAP.Auth, AuthPlain | AuthOAuthBearer},
		{s[1].POP3.Auth, AuthAPOP | AuthXOAuth2},
		{s[2].SMTP.Auth, AuthLogin | AuthOAuthBearer | AuthXOAuth2},
		{s[3].IMAP.Auth, AuthPlain | AuthCRAMMD5},
	} {
		if c.got != c.want {
			t.Errorf("server %d: auth %b, want %b", i, c.got, c.want)
		}
	}
}

// Without the OAuth values no value notice appears (an nginx.conf stays
// silent about them).
func TestAuthNoOAuthNoNotice(t *testing.T) {
	diags, dir := checkString(t, `events {}
mail {
  auth_http 127.0.0.1:9/auth;
  server { listen 127.0.0.1:27143; protocol imap; imap_auth plain login cram-md5 external; }
}
`)
	if errs := diagLines(diags, dir, false); len(errs) > 0 {
		t.Fatalf("errors: %q", errs)
	}
	lint := diagLines(diags, dir, true)
	if len(lint) == 0 {
		t.Fatal("no mailgate advice at all: lint did not run") // the plain-text warning is expected
	}
	for _, l := range lint {
		if strings.Contains(l, "value") && strings.Contains(l, "is not in nginx 1.22.1") {
			t.Errorf("unexpected notice %s", l)
		}
	}
}
