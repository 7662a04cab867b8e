package confparse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNginxRefuses: every mailgate-only directive or value is recorded
// with nginx 1.22.1's error at its line, Load too, and Check lists each
// as a mailgate-only notice. (compat-tests/migrate runs the same lines
// through the real nginx.)
func TestNginxRefuses(t *testing.T) {
	conf := `events {}
mail {
    auth_http 127.0.0.1:9000;
    proxy_protocol v2;
    resolver 127.0.0.1 ipv4=off;
    server {
        listen 127.0.0.1:11143 multipath;
        protocol imap;
        ssl_certificate_compression on;
        proxy_protocol on;
    }
}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range cfg.NginxRefuses {
		got = append(got, strings.ReplaceAll(d.String(), dir+"/", ""))
	}
	want := []string{
		`invalid value "v2" in "proxy_protocol" directive, it must be "on" or "off" in nginx.conf:4`,
		`host not found in resolver "ipv4=off" in nginx.conf:5`,
		`the invalid "multipath" parameter in nginx.conf:7`,
		`unknown directive "ssl_certificate_compression" in nginx.conf:9`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("NginxRefuses:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range cfg.Notices {
		if strings.Contains(d.Msg, "nginx 1.22.1") {
			t.Errorf("Load put a mailgate-only notice where -t prints it: %v", d)
		}
	}
	diags, dir2 := checkString(t, conf)
	var notes []string
	for _, l := range diagLines(diags, dir2, true) {
		if strings.Contains(l, "is not in nginx 1.22.1") {
			notes = append(notes, l)
		}
	}
	wantNotes := []string{
		`[notice] "proxy_protocol v2" is not in nginx 1.22.1 in nginx.conf:4`,
		`[notice] "resolver ... ipv4=" is not in nginx 1.22.1 in nginx.conf:5`,
		`[notice] "listen ... multipath" is not in nginx 1.22.1 in nginx.conf:7`,
		`[notice] "ssl_certificate_compression" is not in nginx 1.22.1 in nginx.conf:9`,
	}
	if strings.Join(notes, "\n") != strings.Join(wantNotes, "\n") {
		t.Errorf("Check notices:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(wantNotes, "\n"))
	}
}

// TestMailgateOnlyMarkIsAField: the mark lives in the table entry, so a
// directive added with mailgateOnly: true is reported without more code.
func TestMailgateOnlyMarkIsAField(t *testing.T) {
	d := &directive{name: "mailgate_test_only", module: "test", ctx: ctxMail, args: take1, set: setStr, mailgateOnly: true}
	register(d)
	defer func() {
		table = table[:len(table)-1]
		delete(byName, d.name)
	}()
	diags, dir := checkString(t, "events {}\nmail {\n    mailgate_test_only x;\n}\n")
	found := false
	for _, l := range diagLines(diags, dir, true) {
		if l == `[notice] "mailgate_test_only" is not in nginx 1.22.1 in nginx.conf:3` {
			found = true
		}
	}
	if !found {
		t.Errorf("no notice for a marked directive: %q", diagLines(diags, dir, true))
	}
}
