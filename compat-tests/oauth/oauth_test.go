// Package oauth tests mailgate's OAUTHBEARER and XOAUTH2 (mailgate-only
// *_auth values oauthbearer and xoauth2) with a real client, curl
// --oauth2-bearer, against real Dovecot (IMAP, POP3) and Postfix (SMTP).
// The auth server maps the token to the user's real password (Auth-Pass),
// so the upstream login is nginx's LOGIN, USER/PASS or XCLIENT. nginx
// refuses the values ("invalid value"), so only mailgate runs; that is
// checked too. That configurations without the values keep nginx's bytes
// is the imap, pop3 and smtp suites' job (capability lines included).
//
// OAUTH_TRACE=1 logs curl's --trace-ascii of every run (tokens included).
// curl 7.88.1 answers OAUTHBEARER's error challenge with %x01 and closes
// the connection on XOAUTH2's; both are failures it reports.
package oauth

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

const (
	token = "ya29.a0AfB_byC-mailgate.oauth~token/42+="
	msg1  = "From: a@example.test\r\nSubject: one\r\n\r\nhello over oauth\r\n"
)

// bigToken is the size of a real JWT access token (8 KiB).
var bigToken = strings.Repeat("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9", 228)[:8192]

type env struct {
	dc *harness.Dovecot
	pf *harness.Postfix
	as *authserver.Server
	p  *harness.Proxy
}

func setup(t *testing.T, tok string) *env {
	t.Helper()
	for _, bin := range []string{"curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is required: %v", bin, err)
		}
	}
	e := &env{}
	e.dc = harness.StartDovecot(t, map[string]string{"alice": "s3cret-pw"}, "auth_failure_delay = 0")
	e.pf = harness.StartPostfix(t)
	upstream := map[string]string{"imap": e.dc.IMAPAddr, "pop3": e.dc.POP3Addr, "smtp": e.pf.Addr}
	e.as = harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{"alice": {Password: "s3cret-pw", Token: tok}},
		// The upstream by protocol.
		Handler: func(r *authserver.Request) *authserver.Behavior {
			host, port, _ := net.SplitHostPort(upstream[r.Get("Auth-Protocol")])
			return &authserver.Behavior{Server: host, Port: port}
		},
	})
	e.p = harness.StartMailgate(t, harness.Config{LogLevel: "debug", Vars: map[string]string{"auth": e.as.URL()}, Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port imap}}; protocol imap; imap_auth plain oauthbearer xoauth2; }
    server { listen 127.0.0.1:{{port pop3}}; protocol pop3; pop3_auth plain oauthbearer xoauth2; }
    server { listen 127.0.0.1:{{port smtp}}; protocol smtp; smtp_auth plain login oauthbearer xoauth2; xclient on; }
    # XOAUTH2 only: curl 7.88.1 takes OAUTHBEARER whenever it is offered,
    # --login-options AUTH=XOAUTH2 notwithstanding.
    server { listen 127.0.0.1:{{port imapx}}; protocol imap; imap_auth xoauth2; }
    server { listen 127.0.0.1:{{port pop3x}}; protocol pop3; pop3_auth xoauth2; }
    server { listen 127.0.0.1:{{port smtpx}}; protocol smtp; smtp_auth xoauth2; xclient on; }`})
	return e
}

// curl runs curl with args and returns its output (stdout) or fails with
// its verbose trace (tokens are in it: it is the test's own output).
func curl(t *testing.T, wantOK bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--max-time", "30", "--trace-ascii", trace}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if os.Getenv("OAUTH_TRACE") != "" {
		tr, _ := os.ReadFile(trace)
		t.Logf("curl %q:\n%.3000s", args, tr)
	}
	if (err == nil) != wantOK {
		tr, _ := os.ReadFile(trace)
		t.Fatalf("curl %q: err %v (want ok %v)\nstderr: %s\ntrace:\n%.6000s", args, err, wantOK, errb.String(), tr)
	}
	return out.String()
}

// lastAuth is the last auth_http request.
func (e *env) lastAuth(t *testing.T) *authserver.Request {
	t.Helper()
	reqs := e.as.Parsed()
	if len(reqs) == 0 {
		t.Fatal("no auth_http request")
	}
	return reqs[len(reqs)-1]
}

func (e *env) checkAuth(t *testing.T, method, proto, tok string) {
	t.Helper()
	r := e.lastAuth(t)
	if r.Get("Auth-Method") != method || r.User() != "alice" || r.Pass() != tok || r.Get("Auth-Protocol") != proto {
		t.Errorf("auth request: method %q user %q protocol %q pass ok %v; want %s alice %s",
			r.Get("Auth-Method"), r.User(), r.Get("Auth-Protocol"), r.Pass() == tok, method, proto)
	}
}

// noSecrets fails if a token or the password reached error.log.
func (e *env) noSecrets(t *testing.T) {
	t.Helper()
	log := e.p.ErrorLog()
	for _, s := range []string{token, bigToken, "s3cret-pw"} {
		if strings.Contains(log, s) {
			t.Errorf("secret %.20q... in error.log", s)
		}
	}
}

func TestCurlIMAP(t *testing.T) {
	e := setup(t, token)
	e.dc.SetMailbox("alice", msg1)
	url := func(port string) string { return "imap://" + e.p.Addr(port) + "/INBOX;UID=1" }
	// curl picks OAUTHBEARER from the capabilities, XOAUTH2 where it is
	// the only one.
	for _, c := range []struct{ port, opts, method string }{
		{"imap", "", "oauthbearer"},
		{"imap", "AUTH=OAUTHBEARER", "oauthbearer"},
		{"imapx", "AUTH=XOAUTH2", "xoauth2"},
		{"imapx", "", "xoauth2"},
	} {
		args := []string{"--user", "alice:", "--oauth2-bearer", token}
		if c.opts != "" {
			args = append(args, "--login-options", c.opts)
		}
		if got := curl(t, true, append(args, url(c.port))...); got != msg1 {
			t.Fatalf("%s: fetched %q", c.method, got)
		}
		e.checkAuth(t, c.method, "imap", token)
	}
	// A wrong token: the error challenge, curl's answer, the NO.
	curl(t, false, "--user", "alice:", "--oauth2-bearer", "wrong-token", url("imap"))
	curl(t, false, "--user", "alice:", "--oauth2-bearer", "wrong-token", url("imapx"))
	log := e.p.ErrorLog()
	if n := strings.Count(log, "client logged in"); n != 4 {
		t.Errorf("%d logins, want 4:\n%s", n, log)
	}
	if n := strings.Count(log, `client login failed: "Invalid login or password"`); n != 2 {
		t.Errorf("%d failures, want 2:\n%s", n, log)
	}
	e.noSecrets(t)
}

func TestCurlPOP3(t *testing.T) {
	e := setup(t, token)
	e.dc.SetMailbox("alice", msg1)
	url := func(port string) string { return "pop3://" + e.p.Addr(port) + "/1" }
	for _, c := range []struct{ port, opts, method string }{
		{"pop3", "", "oauthbearer"},
		{"pop3", "AUTH=OAUTHBEARER", "oauthbearer"},
		{"pop3x", "AUTH=XOAUTH2", "xoauth2"},
	} {
		args := []string{"--user", "alice:", "--oauth2-bearer", token}
		if c.opts != "" {
			args = append(args, "--login-options", c.opts)
		}
		if got := curl(t, true, append(args, url(c.port))...); got != msg1 {
			t.Fatalf("%s: fetched %q", c.method, got)
		}
		e.checkAuth(t, c.method, "pop3", token)
	}
	curl(t, false, "--user", "alice:", "--oauth2-bearer", "wrong-token", url("pop3"))
	curl(t, false, "--user", "alice:", "--oauth2-bearer", "wrong-token", url("pop3x"))
	if n := strings.Count(e.p.ErrorLog(), "client logged in"); n != 3 {
		t.Errorf("%d logins, want 3:\n%s", n, e.p.ErrorLog())
	}
	e.noSecrets(t)
}

func TestCurlSMTP(t *testing.T) {
	e := setup(t, token)
	mail := filepath.Join(t.TempDir(), "mail")
	for i, c := range []struct{ port, opts, method string }{
		{"smtp", "", "oauthbearer"},
		{"smtpx", "AUTH=XOAUTH2", "xoauth2"},
	} {
		url := "smtp://" + e.p.Addr(c.port)
		body := "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: oauth " + c.method + "\r\n\r\nsent with " + c.method + "\r\n"
		if err := os.WriteFile(mail, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"--user", "alice:", "--oauth2-bearer", token, "--mail-from", "alice@example.org", "--mail-rcpt", "bob@example.com", "--upload-file", mail}
		if c.opts != "" {
			args = append(args, "--login-options", c.opts)
		}
		curl(t, true, append(args, url)...)
		e.checkAuth(t, c.method, "smtp", token)
		msgs := e.pf.WaitMessages(i+1, 10*time.Second)
		if len(msgs) != i+1 || !strings.Contains(msgs[i], "sent with "+c.method) {
			t.Fatalf("postfix has %d messages: %q", len(msgs), msgs)
		}
	}
	curl(t, false, "--user", "alice:", "--oauth2-bearer", "wrong-token", "--mail-from", "alice@example.org", "--mail-rcpt", "bob@example.com", "--upload-file", mail, "smtp://"+e.p.Addr("smtp"))
	if !strings.Contains(e.p.ErrorLog(), `client login failed: "Invalid login or password"`) {
		t.Errorf("no failure logged:\n%s", e.p.ErrorLog())
	}
	e.noSecrets(t)
}

// An 8 KiB token (a JWT's size) goes through every protocol: beyond
// imap_client_buffer, smtp_client_buffer and POP3's 128 bytes.
func TestCurlBigToken(t *testing.T) {
	e := setup(t, bigToken)
	e.dc.SetMailbox("alice", msg1)
	for _, proto := range []string{"imap", "pop3"} {
		for _, opts := range []string{"AUTH=OAUTHBEARER", "AUTH=XOAUTH2"} {
			port := proto
			if opts == "AUTH=XOAUTH2" {
				port += "x"
			}
			url := proto + "://" + e.p.Addr(port) + "/INBOX;UID=1"
			if proto == "pop3" {
				url = "pop3://" + e.p.Addr(port) + "/1"
			}
			if got := curl(t, true, "--user", "alice:", "--oauth2-bearer", bigToken, "--login-options", opts, url); got != msg1 {
				t.Fatalf("%s %s: fetched %q", proto, opts, got)
			}
			e.checkAuth(t, strings.ToLower(strings.TrimPrefix(opts, "AUTH=")), proto, bigToken)
		}
	}
	mail := filepath.Join(t.TempDir(), "mail")
	os.WriteFile(mail, []byte("Subject: big token\r\n\r\nbig\r\n"), 0o644) //nolint:errcheck
	curl(t, true, "--user", "alice:", "--oauth2-bearer", bigToken, "--mail-from", "alice@example.org", "--mail-rcpt", "bob@example.com", "--upload-file", mail, "smtp://"+e.p.Addr("smtp"))
	e.checkAuth(t, "oauthbearer", "smtp", bigToken)
	if msgs := e.pf.WaitMessages(1, 10*time.Second); len(msgs) != 1 {
		t.Fatalf("postfix has %d messages", len(msgs))
	}
	e.noSecrets(t)
}

// nginx refuses the values; mailgate check lists them as mailgate-only.
func TestNginxRefusesOAuthValues(t *testing.T) {
	conf := harness.Config{Vars: map[string]string{"auth": "127.0.0.1:9/auth"}, Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port imap}}; protocol imap; imap_auth plain xoauth2; }`}
	if np, err := harness.TryStart(t, harness.Nginx, conf); err == nil {
		np.Stop()
		t.Fatal("nginx accepted xoauth2")
	} else if !strings.Contains(err.Error(), `invalid value "xoauth2"`) {
		t.Fatalf("nginx: %v", err)
	}
	p := harness.StartMailgate(t, conf)
	out, _ := exec.Command(harness.MailgateBinary(t), "check", "-p", p.Prefix, "-c", p.Prefix+"nginx.conf").CombinedOutput()
	if !strings.Contains(string(out), `"imap_auth" value "xoauth2" is not in nginx 1.22.1`) {
		t.Errorf("mailgate check:\n%s", out)
	}
}

// introspection is an RFC 7662 token introspection endpoint for Dovecot's
// oauth2 passdb: token is active for alice.
func introspection(t *testing.T, tok string) (url string, calls func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm() //nolint:errcheck
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("token") == tok {
			io.WriteString(w, `{"active":true,"username":"alice"}`) //nolint:errcheck
			return
		}
		io.WriteString(w, `{"active":false}`) //nolint:errcheck
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/introspect", func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// When auth_http accepts the token without an Auth-Pass, mailgate logs in
// to the upstream with the client's mechanism and token: Dovecot checks
// the token itself (oauth2 passdb, token introspection).
func TestTokenToUpstream(t *testing.T) {
	iurl, calls := introspection(t, token)
	dir := t.TempDir()
	ext := filepath.Join(dir, "dovecot-oauth2.conf.ext")
	if err := os.WriteFile(ext, []byte("introspection_mode = post\nintrospection_url = "+iurl+
		"\nforce_introspection = yes\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) //nolint:errcheck // read by Dovecot's auth process
	dc := harness.StartDovecot(t, map[string]string{"alice": "s3cret-pw"}, "auth_failure_delay = 0",
		"auth_mechanisms = plain login oauthbearer xoauth2",
		"passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = "+ext+"\n}")
	dc.SetMailbox("alice", msg1)
	upstream := map[string]string{"imap": dc.IMAPAddr, "pop3": dc.POP3Addr}
	as := harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{"alice": {Password: "s3cret-pw", Token: token, TokenNoPass: true}},
		Handler: func(r *authserver.Request) *authserver.Behavior {
			host, port, _ := net.SplitHostPort(upstream[r.Get("Auth-Protocol")])
			return &authserver.Behavior{Server: host, Port: port}
		},
	})
	addr, rec := harness.Record(t, dc.IMAPAddr)
	upstream["imap"] = addr
	p := harness.StartMailgate(t, harness.Config{Vars: map[string]string{"auth": as.URL()}, Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port imap}}; protocol imap; imap_auth oauthbearer; }
    server { listen 127.0.0.1:{{port imapx}}; protocol imap; imap_auth xoauth2; }
    server { listen 127.0.0.1:{{port pop3}}; protocol pop3; pop3_auth oauthbearer; }`})
	for _, c := range []struct{ url, mech string }{
		{"imap://" + p.Addr("imap") + "/INBOX;UID=1", "AUTHENTICATE OAUTHBEARER "},
		{"imap://" + p.Addr("imapx") + "/INBOX;UID=1", "AUTHENTICATE XOAUTH2 "},
		{"pop3://" + p.Addr("pop3") + "/1", ""},
	} {
		if got := curl(t, true, "--user", "alice:", "--oauth2-bearer", token, c.url); got != msg1 {
			t.Fatalf("%s: fetched %q\n%s", c.url, got, dc.Log())
		}
		if c.mech == "" {
			continue
		}
		conns := rec.Conns()
		sent := string(conns[len(conns)-1].Sent())
		if !strings.Contains(sent, c.mech) || strings.Contains(sent, "LOGIN") {
			t.Errorf("upstream got %q, want %s", sent, c.mech)
		}
	}
	if n := calls(); n < 3 {
		t.Errorf("Dovecot introspected %d tokens, want 3", n)
	}
	if strings.Contains(p.ErrorLog(), token) {
		t.Error("token in error.log")
	}
}
