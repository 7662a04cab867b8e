package confparse

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func checkString(t *testing.T, conf string) ([]Diag, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	return diags, dir
}

func diagLines(diags []Diag, dir string, mailgateOnly bool) []string {
	var out []string
	for _, d := range diags {
		if d.MailgateOnly != mailgateOnly {
			continue
		}
		out = append(out, "["+sevNames[d.Sev]+"] "+strings.ReplaceAll(d.String(), dir+"/", ""))
	}
	return out
}

func TestCheckReportsEveryError(t *testing.T) {
	conf := `events {}
mail {
  server { listen 127.0.0.1:27001; }
  server { listen 127.0.0.1:27002; protocol imap; timeout x; imap_auth plain plain; }
  server { protocol pop3; xclient maybe; }
  server { listen 127.0.0.1:27002; listen 127.0.0.1:27003 ssl; protocol smtp; auth_http 127.0.0.1:1; }
}
`
	diags, dir := checkString(t, conf)
	got := diagLines(diags, dir, false)
	want := []string{
		`[emerg] "timeout" directive invalid value in nginx.conf:4`,
		`[warn] duplicate value "plain" in nginx.conf:4`,
		`[emerg] invalid value "maybe" in "xclient" directive, it must be "on" or "off" in nginx.conf:5`,
		`[emerg] no "listen" is defined for server in nginx.conf:5`,
		`[emerg] duplicate "127.0.0.1:27002" address and port pair in nginx.conf:6`,
		// merge: core for every server, then ssl, then auth_http
		`[emerg] unknown mail protocol for server in nginx.conf:3`,
		`[emerg] no "ssl_certificate" is defined for the "listen ... ssl" directive in nginx.conf:6`,
		`[emerg] no "auth_http" is defined for server in nginx.conf:3`,
		`[emerg] no "auth_http" is defined for server in nginx.conf:4`,
		`[emerg] no "auth_http" is defined for server in nginx.conf:5`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Load stops at the first error
	_, err := Load(Options{Prefix: dir + "/", ConfFile: "nginx.conf"})
	var e *Error
	if !errors.As(err, &e) || e.Pos.Line != 4 || e.Msg != `"timeout" directive invalid value` {
		t.Errorf("Load: %v", err)
	}
}

func TestCheckStopsAtSyntaxError(t *testing.T) {
	diags, dir := checkString(t, "events {}\ndaemon maybe;\nmail {\n  server_name \"x\"y;\n}\n")
	got := diagLines(diags, dir, false)
	want := []string{
		`[emerg] invalid value "maybe" in "daemon" directive, it must be "on" or "off" in nginx.conf:2`,
		`[emerg] unexpected "y" in nginx.conf:4`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(diagLines(diags, dir, true)) != 0 {
		t.Errorf("advice after errors: %v", diagLines(diags, dir, true))
	}
}

func TestCheckMailgateAdvice(t *testing.T) {
	conf := `load_module modules/ngx_mail_module.so;
worker_processes 4;
error_log memory:32m debug;
user daemon;
events {}
http { server { listen 8080; } }
stream { }
mail {
  auth_http 127.0.0.1:1;
  ssl_certificate @DIR@c.pem; ssl_certificate_key @DIR@c.pem;
  proxy on;
  ssl_session_cache shared:MAIL:1m;
  server { listen 127.0.0.1:27143; protocol imap; }
  server { listen 127.0.0.1:27993 ssl; protocol imap; xclient on; proxy_smtp_auth off; }
  server { listen 127.0.0.1:27110; protocol pop3; starttls only; }
  server { listen 127.0.0.1:27025; protocol smtp; smtp_auth none; xclient on; proxy_smtp_auth on; }
  server { listen 127.0.0.1:27587; protocol smtp; starttls on; }
  server { listen 127.0.0.1:27465; protocol smtp; ssl on; }
}
`
	dir := t.TempDir()
	conf = strings.ReplaceAll(conf, "@DIR@", dir+"/")
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), testCombinedPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	// load_module must name an existing file (its content is not read).
	if err := os.MkdirAll(filepath.Join(dir, "modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules", "ngx_mail_module.so"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf"})
	errs := diagLines(diags, dir, false)
	if os.Geteuid() != 0 && len(errs) > 0 && strings.Contains(errs[0], `the "user" directive makes sense only`) {
		errs = errs[1:] // nginx's own warning when not run as root
	}
	if len(errs) != 1 || !strings.Contains(errs[0], `[warn] the "ssl" directive is deprecated`) {
		t.Fatalf("nginx diagnostics: %q", errs)
	}
	got := diagLines(diags, dir, true)
	want := []string{
		`[notice] "load_module" directive ignored in nginx.conf:1`,
		`[notice] "http" block ignored in nginx.conf:6`,
		`[notice] "stream" block ignored in nginx.conf:7`,
		`[warn] "worker_processes" directive ignored in nginx.conf:2`,
		`[warn] "user" directive does not switch users in mailgate in nginx.conf:4`,
		`[warn] "error_log memory:" target ignored in nginx.conf:3`,
		`[warn] "proxy" directive has no effect in nginx.conf:11`,
		`[warn] "ssl_session_cache shared:" is per process in mailgate in nginx.conf:12`,
		`[warn] the "ssl" directive was removed in nginx 1.25.1 in nginx.conf:18`,
		`[warn] "xclient on" has no effect with "protocol imap" in nginx.conf:14`,
		`[warn] "ssl_session_cache" resumes TLS 1.2 sessions only for clients that accept session tickets in nginx.conf:12`,
		`[warn] passwords may be sent in plain text on 127.0.0.1:27143 in nginx.conf:13`,
		`[warn] passwords may be sent in plain text on 127.0.0.1:27587 in nginx.conf:17`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range diags {
		if d.MailgateOnly && d.Extra == "" {
			t.Errorf("no explanation for %q", d.Msg)
		}
	}
	// Load keeps the ignored-block notices but not Check's advice
	var notices []string
	for _, n := range cfg.Notices {
		if n.MailgateOnly {
			notices = append(notices, n.Msg)
		}
	}
	if len(notices) != 3 {
		t.Errorf("Load notices %q", notices)
	}
}

// FuzzLoad feeds arbitrary configuration text to Load and Check: they
// must not panic or hang. Inputs with '/' are skipped so that includes
// and file directives stay inside the scratch directory, and host names
// are not resolved.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		"events {}\nmail { auth_http 127.0.0.1:1; server { listen 127.0.0.1:27001; protocol imap; } }",
		"events{}mail{server{listen 25;}}",
		"events {}\nmail { server { listen [::1]:143 ssl so_keepalive=1:2:3; starttls only; } }",
		"include *;\nevents {}",
		"a \"b\\\"c\" 'd' `e` 1\\;2 ${x} # c\n;}",
		"events { worker_connections x; } mail { error_log x debug_mail; resolver 127.0.0.1 valid=1s; }",
		"mail { mail { server { server { } } } }",
		"events {}\nmail { set_real_ip_from 10.0.0.1/8; smtp_auth plain plain; ssl on; starttls on; }",
		"events {}\nmail { proxy_ssl on; proxy_starttls on; server { listen 1; proxy_ssl_protocols TLSv1.3 TLSv1.3; proxy_ssl_ciphers x; proxy_ssl_verify on; } }",
		"events {}\nmail { proxy_ssl_auth_header on; proxy_ssl_verify_depth 0; server { listen 2; protocol pop3; proxy_ssl_name n; } }",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	saved := lookupHost
	lookupHost = func(host string) ([]netip.Addr, error) {
		if host == "localhost" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	defer func() { lookupHost = saved }()
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 || strings.Contains(s, "/") {
			return
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		o := Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "h"}
		cfg, err := Load(o)
		if cfg == nil {
			t.Fatal("nil config")
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T", err)
			}
		}
		_, diags := Check(o)
		// Check's first error is the one Load stopped at.
		var first *Diag
		for i := range diags {
			if diags[i].Sev <= SevError && !diags[i].MailgateOnly {
				first = &diags[i]
				break
			}
		}
		switch {
		case err == nil && first != nil:
			t.Fatalf("Check found %q but Load did not fail", first.String())
		case err != nil && first == nil:
			t.Fatalf("Load failed (%v) but Check found nothing", err)
		case err != nil && first.String() != err.Error():
			t.Fatalf("Load: %v; Check's first error: %s", err, first.String())
		}
	})
}

func TestSSLEngineAccepted(t *testing.T) {
	cfg, _, err := loadString(t, "ssl_engine pkcs11;\nevents {}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notices) != 1 || !cfg.Notices[0].MailgateOnly || cfg.Notices[0].Pos.Line != 1 {
		t.Errorf("notices %+v", cfg.Notices)
	}
	_, _, err = loadString(t, "ssl_engine a;\nssl_engine b;\nevents {}\n", nil)
	if err == nil || err.(*Error).Msg != `"ssl_engine" directive is duplicate` {
		t.Errorf("duplicate: %v", err)
	}
}

func TestCheckGoesOnAfterIncludeErrors(t *testing.T) {
	diags, dir := checkString(t, "events {}\ninclude missing.conf;\ninclude nginx.conf;\ndaemon maybe;\n")
	got := diagLines(diags, dir, false)
	want := []string{
		`[emerg] open() "missing.conf" failed (2: No such file or directory) in nginx.conf:2`,
		`[emerg] include of "nginx.conf" includes itself recursively in nginx.conf:3`,
		`[emerg] invalid value "maybe" in "daemon" directive, it must be "on" or "off" in nginx.conf:4`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckPidAdvice: check warns when mailgate would take the pid file
// of the nginx that serves the same file's http{}, and what it advises
// passes check without an error or the warning.
func TestCheckPidAdvice(t *testing.T) {
	const mailBlock = "mail {\n  auth_http 127.0.0.1:1;\n  server { listen 127.0.0.1:27110; protocol pop3; }\n}\n"
	share := func(diags []Diag) string {
		for _, d := range diags {
			if strings.Contains(d.Msg, "share the pid file") {
				return d.Msg + " | " + d.Extra
			}
		}
		return ""
	}
	errorsOf := func(diags []Diag) []string {
		var out []string
		for _, d := range diags {
			if d.Sev <= SevError {
				out = append(out, d.String())
			}
		}
		return out
	}
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(conf, globals string) []Diag {
		_, diags := Check(Options{Prefix: dir + "/", ConfFile: conf, Globals: globals, Hostname: "mx"})
		return diags
	}

	// The file sets pid: -g cannot replace it, so the advice is a file of
	// mailgate's own around the same mail{}.
	write("mail.inc", mailBlock)
	write("nginx.conf", "pid /run/nginx.pid;\nevents {}\nhttp {}\ninclude mail.inc;\n")
	w := share(check("nginx.conf", ""))
	if !strings.Contains(w, `"/run/nginx.pid"`) || strings.Contains(w, `-g "pid`) || !strings.Contains(w, `pid /run/mailgate.pid; events {}`) {
		t.Errorf("pid line in the file: %q", w)
	}
	if errs := errorsOf(check("nginx.conf", "pid /run/mailgate.pid;")); len(errs) == 0 || !strings.Contains(errs[0], `"pid" directive is duplicate`) {
		t.Errorf("-g pid on a file with a pid line: %q (it must stay nginx's duplicate error, so check may not advise it)", errs)
	}
	write("mailgate.conf", "pid /run/mailgate.pid; events {}\ninclude mail.inc;\n")
	if d := check("mailgate.conf", ""); len(errorsOf(d)) > 0 || share(d) != "" {
		t.Errorf("the advised file: %q %q", errorsOf(d), share(d))
	}

	// No pid line: nginx uses /run/nginx.pid, mailgate /run/mailgate.pid.
	write("nopid.conf", "events {}\nhttp {}\n"+mailBlock)
	if d := check("nopid.conf", ""); len(errorsOf(d)) > 0 || share(d) != "" {
		t.Errorf("no pid line: %q %q", errorsOf(d), share(d))
	}
	// ... unless -g names nginx's; then -g with another one is the advice.
	w = share(check("nopid.conf", "pid /run/nginx.pid;"))
	if !strings.Contains(w, `-g "pid /run/mailgate.pid;"`) {
		t.Errorf("-g pid /run/nginx.pid: %q", w)
	}
	if d := check("nopid.conf", "pid /run/mailgate.pid;"); len(errorsOf(d)) > 0 || share(d) != "" {
		t.Errorf("the advised -g: %q %q", errorsOf(d), share(d))
	}
}

// TestCheckAuthWarnings: an auth_http served by the file's own http{}
// (also by a wildcard or port-only listen, or a unix socket), variables in
// auth_http_header, and *_auth in a server of another protocol.
func TestCheckAuthWarnings(t *testing.T) {
	conf := `events {}
http {
  server { listen 8880; }
  server { listen [::]:8881; }
  server { listen unix:/tmp/mg-auth.sock; }
  server { location / { listen 8882; } }
  include http.inc;
}
mail {
  auth_http 127.0.0.1:8880/auth;
  auth_http_header X-A $remote_addr;
  auth_http_header X-B plain$;
  server { listen 127.0.0.1:27110; protocol pop3; smtp_auth login; imap_auth plain; pop3_auth apop; }
  server { listen 127.0.0.1:27143; protocol imap; auth_http [::1]:8881/a; }
  server { listen 127.0.0.1:27144; protocol imap; auth_http unix:/tmp/mg-auth.sock:/a; }
  server { listen 127.0.0.1:27145; protocol imap; auth_http 127.0.0.1:8882/a; }
  server { listen 127.0.0.1:27146; protocol imap; auth_http 127.0.0.1:8883/a; }
  server { listen 127.0.0.1:27147; protocol imap; auth_http 127.0.0.2:8884/a; }
}
`
	dir := t.TempDir()
	for name, s := range map[string]string{"nginx.conf": conf, "http.inc": "server { listen 127.0.0.1:8883; }\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, diags := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	if errs := diagLines(diags, dir, false); len(errs) > 0 {
		t.Fatalf("errors: %q", errs)
	}
	var got []string
	for _, l := range diagLines(diags, dir, true) {
		if !strings.Contains(l, "plain text") && !strings.Contains(l, `block ignored`) {
			got = append(got, l)
		}
	}
	want := []string{
		`[warn] "imap_auth" has no effect with "protocol pop3" in nginx.conf:13`,
		`[warn] "smtp_auth" has no effect with "protocol pop3" in nginx.conf:13`,
		`[warn] "auth_http_header X-A" value "$remote_addr" is sent literally in nginx.conf:11`,
		`[warn] auth_http "127.0.0.1:8880/auth" is served by this file's http{} (listen 8880 in nginx.conf:3) in nginx.conf:10`,
		`[warn] auth_http "[::1]:8881/a" is served by this file's http{} (listen [::]:8881 in nginx.conf:4) in nginx.conf:14`,
		`[warn] auth_http "unix:/tmp/mg-auth.sock:/a" is served by this file's http{} (listen unix:/tmp/mg-auth.sock in nginx.conf:5) in nginx.conf:15`,
		`[warn] auth_http "127.0.0.1:8883/a" is served by this file's http{} (listen 127.0.0.1:8883 in http.inc:1) in nginx.conf:17`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckOldProtocols: TLSv1/TLSv1.1 listed in ssl_protocols of a TLS
// server are explained, unless @SECLEVEL=0 lets them through.
func TestCheckOldProtocols(t *testing.T) {
	conf := `events {}
mail {
  auth_http 127.0.0.1:1;
  ssl_certificate c.pem;
  ssl_certificate_key c.pem;
  ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
  server { listen 127.0.0.1:27993 ssl; protocol imap; }
  server { listen 127.0.0.1:27995 ssl; protocol pop3; ssl_protocols TLSv1.1; }
  server { listen 127.0.0.1:27994 ssl; protocol imap; ssl_ciphers HIGH:@SECLEVEL=0; }
  server { listen 127.0.0.1:27143; protocol imap; ssl_protocols TLSv1; }
  server { listen 127.0.0.1:27144 ssl; protocol imap; ssl_protocols TLSv1.2 TLSv1.3; }
}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), testCombinedPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	if errs := diagLines(diags, dir, false); len(errs) > 0 {
		t.Fatalf("errors: %q", errs)
	}
	var got []string
	for _, d := range diags {
		if d.MailgateOnly && strings.Contains(d.Msg, "ssl_protocols") {
			got = append(got, "["+sevNames[d.Sev]+"] "+strings.ReplaceAll(d.String(), dir+"/", ""))
			if !strings.Contains(d.Extra, "@SECLEVEL=0") {
				t.Errorf("no way out in %q", d.Extra)
			}
		}
	}
	want := []string{
		`[warn] TLSv1 TLSv1.1 in "ssl_protocols" cannot complete a handshake in nginx.conf:6`,
		`[warn] "ssl_protocols" lists no version a handshake can succeed with in nginx.conf:8`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
