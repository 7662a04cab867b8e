package mailtest_test

// Regression tests for the known attack classes of mail proxies, each run
// through the real engine, the real auth_http client and the real
// upstream login (issue 9). nginx's CVEs name the class; the test says
// what must hold.

import (
	"crypto/tls"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailgate/mail"
	"mailgate/mail/errlog"
	"mailgate/mail/imap"
	"mailgate/mail/mailtest"
	"mailgate/mail/pop3"
	"mailgate/mail/smtp"
	"mailgate/mail/smtp/dnstest"
)

var allProtocols = map[string]mail.Protocol{"imap": imap.Protocol{}, "pop3": pop3.Protocol{}, "smtp": smtp.Protocol{}}

const (
	authFailWait = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 1\r\n\r\n"
	authOK25     = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 25\r\n\r\n"
	authOK110    = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 110\r\nAuth-Pass: secret\r\n\r\n"
	// WAIT with a wait: nginx asks again once the wait is over (and,
	// unlike a WAIT without one, takes the next answer as it is).
	authWaitOne = "HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n"
)

var smtpUpstream = []string{"220 up ESMTP\r\n", "250-up\r\n250 XCLIENT ADDR LOGIN NAME\r\n", "220 up ESMTP\r\n", "250 up\r\n", "250 2.1.0 ok\r\n", "250 2.1.5 ok\r\n"}

func header(req []byte, name string) (string, bool) {
	m := regexp.MustCompile(`(?m)^` + name + `: (.*)\r$`).FindSubmatch(req)
	if m == nil {
		return "", false
	}
	return string(m[1]), true
}

// CVE-2025-53859: with smtp_auth none, a MAIL after a failed AUTH must not
// send the failed attempt's login and password to auth_http, nor its
// login in XCLIENT.
func TestCVE2025_53859CredentialsOfAFailedAuthStayBehind(t *testing.T) {
	as := mailtest.StartAuthServer(t)
	up := &mailtest.Upstream{Replies: smtpUpstream}
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:25; protocol smtp; auth_http "+as.URL()+"; smtp_auth plain none; xclient on; server_name mx.example.test; }")
	env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.Dial})
	as.Script(nil, []byte(authFailWait), []byte(authOK25))
	c := env.Dial(t, mailtest.TCP, 0)
	c.Send("EHLO client.example\r\nAUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00victim\x00hunter2")) + "\r\n")
	c.ReadLine(5 * time.Second) // greeting
	for l := ""; !strings.HasPrefix(l, "250 "); {
		l = c.ReadLine(5 * time.Second)
	}
	if l := c.ReadLine(5 * time.Second); !strings.HasPrefix(l, "535 ") {
		t.Fatalf("failed AUTH got %q", l)
	}
	c.Send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n")
	c.ReadAll(2 * time.Second)
	reqs := as.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d auth requests", len(reqs))
	}
	if m, _ := header(reqs[1], "Auth-Method"); m != "none" {
		t.Fatalf("second request is %q", m)
	}
	for _, h := range []string{"Auth-User", "Auth-Pass"} {
		if v, _ := header(reqs[1], h); v != "" {
			t.Errorf("%s of the none request is %q", h, v)
		}
	}
	<-c.Done()
	up.Wait()
	if got := up.Received(0); strings.Contains(got, "victim") || strings.Contains(got, "hunter2") || !strings.Contains(got, "XCLIENT ") {
		t.Errorf("upstream got %q", got)
	}
}

// CVE-2026-27651: a CRAM-MD5 or APOP login that auth_http answers with
// WAIT goes out again with an empty Auth-Pass and the same salt, and a
// CRAM-MD5 exchange retried after a failure with Auth-Wait keeps the
// session's salt; nothing crashes.
func TestCVE2026_27651RetriedDigestLogins(t *testing.T) {
	as := mailtest.StartAuthServer(t)
	up := &mailtest.Upstream{Replies: []string{"+OK up\r\n", "+OK\r\n", "+OK in\r\n"}}
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:110; protocol pop3; auth_http "+as.URL()+"; pop3_auth apop cram-md5; }")
	env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.Dial})
	panics := mail.PanicsRecovered()
	const digest = "0123456789abcdef0123456789abcdef"
	cramResp := base64.StdEncoding.EncodeToString([]byte("alice " + digest))

	// APOP answered WAIT: the request goes out again after the wait,
	// with an empty Auth-Pass and the same salt.
	as.Script(nil, []byte(authWaitOne), []byte(authOK110))
	c := env.Dial(t, mailtest.TCP, 0)
	salt := regexp.MustCompile(`<[^>]+>`).FindString(c.ReadLine(5 * time.Second))
	c.Send("APOP alice " + digest + "\r\n")
	if l := c.ReadLine(5 * time.Second); l != "+OK in\r\n" {
		t.Fatalf("APOP got %q\n%s\n%q", l, env.Log, as.Requests())
	}
	c.Close()
	<-c.Done()
	checkRequests(t, as.Requests(), salt, []string{"apop", digest, "apop", ""})

	// CRAM-MD5 refused with Auth-Wait, then tried again: the same salt,
	// then a WAIT whose repeat has an empty Auth-Pass.
	as.Script(nil, []byte(authFailWait), []byte(authWaitOne), []byte(authOK110))
	c = env.Dial(t, mailtest.TCP, 0)
	salt = regexp.MustCompile(`<[^>]+>`).FindString(c.ReadLine(5 * time.Second))
	challenge := "+ " + base64.StdEncoding.EncodeToString([]byte(salt)) + "\r\n"
	for i, want := range []string{"-ERR Invalid login or password\r\n", "+OK in\r\n"} {
		c.Send("AUTH CRAM-MD5\r\n")
		if l := c.ReadLine(5 * time.Second); l != challenge {
			t.Fatalf("attempt %d: challenge %q, want the greeting's salt %s", i+1, l, salt)
		}
		c.Send(cramResp + "\r\n")
		if l := c.ReadLine(5 * time.Second); l != want {
			t.Fatalf("attempt %d got %q, want %q\n%s", i+1, l, want, env.Log)
		}
	}
	c.Close()
	<-c.Done()
	checkRequests(t, as.Requests(), salt, []string{"cram-md5", digest, "cram-md5", digest, "cram-md5", ""})
	if mail.PanicsRecovered() != panics {
		t.Fatalf("a panic was contained:\n%s", env.Log)
	}
}

// checkRequests compares each request's Auth-Method and Auth-Pass with
// want (pairs) and its Auth-Salt with salt.
func checkRequests(t *testing.T, reqs [][]byte, salt string, want []string) {
	t.Helper()
	if len(reqs) != len(want)/2 {
		t.Fatalf("%d auth requests, want %d", len(reqs), len(want)/2)
	}
	for i, req := range reqs {
		m, _ := header(req, "Auth-Method")
		p, _ := header(req, "Auth-Pass")
		s, _ := header(req, "Auth-Salt")
		if m != want[2*i] || p != want[2*i+1] || s != salt {
			t.Errorf("request %d: method %q pass %q salt %q, want %q %q %q", i+1, m, p, s, want[2*i], want[2*i+1], salt)
		}
	}
}

// CVE-2026-28753: a PTR name must not carry CR, LF or other bytes into
// the Client-Host header or XCLIENT NAME: such a name is [TEMPUNAVAIL].
func TestCVE2026_28753PTRNameInjection(t *testing.T) {
	d, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{`1.0.0.127.in-addr.arpa. 60 IN PTR a\013\010Auth-User:\032admin.example.net.`}})
	d.Set("a\r\nAuth-User: admin.example.net", dns.TypeA, dnstest.Answer{RRs: []string{`a\013\010Auth-User:\032admin.example.net. 60 IN A 127.0.0.1`}})
	as := mailtest.StartAuthServer(t)
	up := &mailtest.Upstream{Replies: smtpUpstream}
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:25; protocol smtp; auth_http "+as.URL()+"; smtp_auth none; xclient on; resolver "+d.Addr+"; resolver_timeout 2s; }")
	env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.Dial})
	as.Script(nil, []byte(authOK25))
	c := env.Dial(t, mailtest.TCP, 0)
	c.Send("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n")
	c.ReadAll(3 * time.Second)
	reqs := as.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d auth requests:\n%s", len(reqs), env.Log)
	}
	if h, _ := header(reqs[0], "Client-Host"); h != "[TEMPUNAVAIL]" {
		t.Errorf("Client-Host %q", h)
	}
	if strings.Contains(string(reqs[0]), "Auth-User: admin") {
		t.Errorf("injected header reached auth_http:\n%s", reqs[0])
	}
	<-c.Done()
	up.Wait()
	if got := up.Received(0); !strings.Contains(got, "NAME=[TEMPUNAVAIL]") || strings.Contains(got, "admin") {
		t.Errorf("upstream got %q", got)
	}
}

// The STARTTLS command-injection class (CVE-2011-0411 and kin): bytes the
// client pipelined behind STARTTLS in plain text are dropped, never run
// as commands after the handshake, in all three protocols.
func TestSTARTTLSInjectionDropped(t *testing.T) {
	cert, key := writeCert(t)
	tlsConf := "ssl_certificate " + cert + "; ssl_certificate_key " + key + ";"
	tests := []struct {
		proto, listen       string
		startTLS, injected  string
		after, wantFirst    string
		greetLines, okLines int
	}{
		{"imap", "127.0.0.1:143", "a STARTTLS\r\n", "b NOOP\r\n", "c LOGOUT\r\n", "* BYE\r\n", 1, 1},
		{"pop3", "127.0.0.1:110", "STLS\r\n", "CAPA\r\n", "QUIT\r\n", "+OK\r\n", 1, 1},
		{"smtp", "127.0.0.1:25", "STARTTLS\r\n", "NOOP\r\n", "QUIT\r\n", "221 2.0.0 Bye\r\n", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.proto, func(t *testing.T) {
			cfg := mailtest.Config(t, "server { listen "+tt.listen+"; protocol "+tt.proto+"; auth_http 127.0.0.1:1/a; starttls on; "+tlsConf+" }")
			env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols})
			c := env.Dial(t, mailtest.TCP, 0)
			c.ReadLine(5 * time.Second)
			c.Send(tt.startTLS + tt.injected)
			if l := c.ReadLine(5 * time.Second); !strings.Contains(l, "OK") && !strings.HasPrefix(l, "220") {
				t.Fatalf("STARTTLS got %q", l)
			}
			tc := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test certificate
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatalf("handshake: %v\n%s", err, env.Log)
			}
			tc.Write([]byte(tt.after))
			buf := make([]byte, 256)
			n, _ := tc.Read(buf)
			if got := string(buf[:n]); !strings.HasPrefix(got, tt.wantFirst) {
				t.Fatalf("first reply after the handshake %q, want %q (the injected %q ran)", got, tt.wantFirst, tt.injected)
			}
		})
	}
}

// CR, LF and NUL in a login never split an auth_http header or an XCLIENT
// line: auth_http gets them escaped, XCLIENT LOGIN= xtext-encoded.
func TestControlBytesInLogins(t *testing.T) {
	as := mailtest.StartAuthServer(t)
	imapUp := &mailtest.Upstream{Replies: []string{"* OK up\r\n", "+ go\r\n", "+ go\r\n", "a OK in\r\n"}}
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; }")
	env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: imapUp.Dial})
	login := "eve\r\nAuth-Port: 1\x00"
	as.Script(nil, []byte("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"))
	c := env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a LOGIN {" + strconv.Itoa(len(login)) + "+}\r\n" + login + " pw\r\n")
	c.ReadAll(2 * time.Second)
	reqs := as.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests\n%s", len(reqs), env.Log)
	}
	if u, _ := header(reqs[0], "Auth-User"); u != "eve%0D%0AAuth-Port:%201%00" {
		t.Errorf("Auth-User %q", u)
	}
	if regexp.MustCompile(`(?m)^Auth-Port`).Match(reqs[0]) {
		t.Errorf("a header was injected:\n%s", reqs[0])
	}

	as2 := mailtest.StartAuthServer(t)
	up := &mailtest.Upstream{Replies: smtpUpstream}
	cfg = mailtest.Config(t, "server { listen 127.0.0.1:25; protocol smtp; auth_http "+as2.URL()+"; smtp_auth plain; xclient on; }")
	env = mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.Dial})
	as2.Script(nil, []byte(authOK25))
	c = env.Dial(t, mailtest.TCP, 0)
	c.Send("EHLO x\r\nAUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+login+"\x00pw")) + "\r\n")
	c.ReadAll(2 * time.Second)
	c.Close()
	<-c.Done()
	up.Wait()
	got := up.Received(0)
	xclient := regexp.MustCompile(`XCLIENT [^\r\n]*\r\n`).FindString(got)
	// The PLAIN response's own NUL ends the login at "1".
	if !strings.Contains(xclient, " LOGIN=eve+0D+0AAuth-Port:+201 ") || strings.Count(got, "\r\n") != strings.Count(got, "\n") {
		t.Errorf("XCLIENT line %q (all: %q)", xclient, got)
	}
}

// Passwords never reach a log line, at any level, debug included: every
// path that sees one (LOGIN, PASS, AUTH PLAIN/LOGIN, a too long command,
// failed and good logins, an upstream that refuses the password).
func TestPasswordsNeverLogged(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sessions := []struct {
		proto, listen, in string
		auth              []string
		up                []string
	}{
		{"imap", "127.0.0.1:143", "a LOGIN alice " + secret + "\r\n", []string{authFailWait}, nil},
		{"imap", "127.0.0.1:143", "a LOGIN alice {11}\r\n" + secret + "\r\n", []string{"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"}, []string{"* OK\r\n", "+ go\r\n", "+ go\r\n", "a NO [AUTHENTICATIONFAILED] bad " + secret + "\r\n"}},
		{"imap", "127.0.0.1:143", "a AUTHENTICATE PLAIN\r\n" + b64("\x00alice\x00"+secret) + "\r\n", []string{authFailWait}, nil},
		{"imap", "127.0.0.1:143", "a LOGIN alice " + secret + strings.Repeat("x", 5000) + "\r\n", nil, nil},
		{"pop3", "127.0.0.1:110", "USER alice\r\nPASS " + secret + "\r\n", []string{authFailWait}, nil},
		{"pop3", "127.0.0.1:110", "USER alice\r\nPASS " + secret + strings.Repeat("y", 200) + "\r\n", nil, nil},
		{"pop3", "127.0.0.1:110", "AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64(secret) + "\r\n", []string{authFailWait}, nil},
		{"smtp", "127.0.0.1:25", "EHLO x\r\nAUTH PLAIN " + b64("\x00alice\x00"+secret) + "\r\n", []string{authOK25}, []string{"220 up\r\n", "250 up\r\n", "535 5.7.8 no " + secret + "\r\n"}},
		{"smtp", "127.0.0.1:25", "EHLO x\r\nAUTH LOGIN " + b64("alice") + "\r\n" + b64(secret) + strings.Repeat("z", 600) + "\r\n", nil, nil},
	}
	for _, ss := range sessions {
		as := mailtest.StartAuthServer(t)
		up := &mailtest.Upstream{Replies: ss.up}
		extra := ""
		if ss.proto == "smtp" {
			extra = "smtp_auth plain login; proxy_smtp_auth on; xclient off;"
		}
		cfg := mailtest.Config(t, "server { listen "+ss.listen+"; protocol "+ss.proto+"; auth_http "+as.URL()+"; "+extra+" }")
		env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.Dial, LogLevel: errlog.Debug})
		var auths [][]byte
		for _, a := range ss.auth {
			auths = append(auths, []byte(a))
		}
		as.Script(nil, auths...)
		c := env.Dial(t, mailtest.TCP, 0)
		c.Send(ss.in)
		c.ReadAll(time.Second)
		c.Close()
		<-c.Done()
		up.Wait()
		log := env.Log.String()
		if log == "" {
			t.Fatalf("%s %q: nothing logged", ss.proto, ss.in)
		}
		// The debug lines are there, with the password hidden.
		if len(ss.auth) > 0 && !strings.Contains(log, `auth http request: "Auth-Pass: (not shown)"`) {
			t.Errorf("%s %q: no auth_http debug lines:\n%s", ss.proto, ss.in, log)
		}
		if len(ss.up) > 0 && !strings.Contains(log, "upstream login, ") {
			t.Errorf("%s %q: no upstream login debug lines:\n%s", ss.proto, ss.in, log)
		}
		for _, s := range []string{secret, b64(secret), b64("\x00alice\x00" + secret)} {
			if strings.Contains(log, s) {
				t.Errorf("%s %q: the log holds %q:\n%s", ss.proto, ss.in, s, log)
			}
		}
	}
}
