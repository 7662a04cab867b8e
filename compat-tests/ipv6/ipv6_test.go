// Package ipv6_test runs IPv6 clients and an IPv6 upstream through nginx
// and mailgate, against real Dovecot and Postfix, and compares what the
// client, the auth_http server and the upstream see. The address text is
// what differs between IPv4 and IPv6 sessions: Client-IP, XCLIENT ADDR,
// the log lines' "client:" and "server:" parts, and the IPv4-mapped form
// a dual-stack listener reports.
package ipv6_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

const message = "From: a@example.org\r\nTo: b@example.com\r\nSubject: v6\r\n\r\nover IPv6\r\n.\r\n"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// steps turns strings into Send followed by one reply read with read.
func steps(read harness.Step, parts ...any) []harness.Step {
	var out []harness.Step
	for _, p := range parts {
		switch v := p.(type) {
		case harness.Step:
			out = append(out, v)
		case string:
			out = append(out, harness.Send(v), read)
		}
	}
	return out
}

// forward6 listens on [::1] and copies each connection to target, so an
// IPv4-only recorder can stand behind an IPv6 Auth-Server.
func forward6(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("listen [::1]: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp4", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
			}
			go pipe(u, c)
			go func() { pipe(c, u); c.Close(); u.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestIPv6(t *testing.T) {
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		t.Fatalf("this test needs IPv6 on loopback: %v", err)
	}
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"},
		"auth_failure_delay = 0", "login_trusted_networks = 127.0.0.0/8 ::1/128")
	imapUp, imapRec := harness.Record(t, dc.IMAPAddr)
	pop3Up, pop3Rec := harness.Record(t, dc.POP3Addr)
	// Postfix parses XCLIENT ADDR=IPV6:... only with IPv6 enabled.
	pf := harness.StartPostfix(t, "inet_protocols = all")
	smtpUp, smtpRec := harness.Record(t, pf.Addr)
	_, portText, _ := net.SplitHostPort(forward6(t, smtpUp))

	as := harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{
			"alice": {Password: "secret", Upstream: imapUp},
			"pop":   {Password: "secret", Upstream: pop3Up},
			"smtp":  {Password: "pw", Upstream: smtpUp},
			// Auth-Server names an IPv6 upstream.
			"six": {Password: "pw", Upstream: smtpUp, Behavior: &authserver.Behavior{Server: "::1", Port: portText}},
		},
		FailWait:     "1",
		NoneUpstream: smtpUp,
		Handler: func(r *authserver.Request) *authserver.Behavior {
			// Dovecot knows alice only; POP3 logs in as her.
			if r.User() == "pop" && r.Pass() == "secret" {
				return &authserver.Behavior{User: "alice"}
			}
			return nil
		},
	})

	conf := harness.Config{Mail: `
    auth_http {{auth}};
    server { listen [::1]:{{port imap}}; protocol imap; }
    server { listen [::1]:{{port pop3}}; protocol pop3; }
    server { listen [::1]:{{port smtp}}; protocol smtp; smtp_auth plain login none; xclient on; }
    server { listen [::]:{{port dual}} ipv6only=off; protocol smtp; smtp_auth none; xclient on; }
    server { listen [::]:{{port v6only}}; listen 127.0.0.1:{{port v6only}}; protocol pop3; }
`}
	suite := &harness.Suite{
		Name:        "ipv6",
		Config:      conf,
		Auth:        as,
		Upstreams:   map[string]*harness.Recorder{"dovecot-imap": imapRec, "dovecot-pop3": pop3Rec, "postfix": smtpRec},
		CompareLog:  true,
		ReadTimeout: 4 * time.Second,
		Reset:       func(t testing.TB) { dc.SetMailbox("alice", "From: a@example.test\nSubject: one\n\nfirst\n") },
	}
	imapLine := harness.Until(`(?m)^(A\d+|\*|\+)[^\n]*\n`)
	tagged := func(tag string) harness.Step { return harness.Until(`(?m)^` + tag + ` [^\n]*\n`) }
	pop3Line := harness.Lines(1)
	smtpReply := harness.Until(`(?m)^\d{3} [^\n]*\n`)
	noneSession := func(read harness.Step) []harness.Step {
		return steps(read, read, "EHLO client.example\r\n", "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n",
			"DATA\r\n", message, "QUIT\r\n", harness.Closed())
	}
	scenarios := []harness.Scenario{
		{Name: "imap login over [::1]", Listen: "imap", Client6: true,
			Steps: []harness.Step{imapLine, harness.Send("A1 CAPABILITY\r\n"), tagged("A1"),
				harness.Send("A2 LOGIN alice secret\r\n"), tagged("A2"),
				harness.Send("A3 SELECT INBOX\r\n"), tagged("A3"),
				harness.Send("A4 LOGOUT\r\n"), tagged("A4"), harness.Closed()}},
		{Name: "imap failed login over [::1]", Listen: "imap", Client6: true,
			Steps: []harness.Step{imapLine, harness.Send("A1 LOGIN alice wrong\r\n"), tagged("A1"),
				harness.Send("A2 LOGOUT\r\n"), tagged("A2"), harness.Closed()}},
		{Name: "pop3 user pass over [::1]", Listen: "pop3", Client6: true,
			Steps: steps(pop3Line, pop3Line, "USER pop\r\n", "PASS secret\r\n", "STAT\r\n", "QUIT\r\n", harness.Closed())},
		{Name: "pop3 auth plain over [::1]", Listen: "pop3", Client6: true,
			Steps: steps(pop3Line, pop3Line, "AUTH PLAIN "+b64("\x00pop\x00secret")+"\r\n", "LIST\r\n", "QUIT\r\n", harness.Closed())},
		{Name: "smtp auth over [::1]", Listen: "smtp", Client6: true,
			Steps: steps(smtpReply, smtpReply, "EHLO client.example\r\n", "AUTH PLAIN "+b64("\x00smtp\x00pw")+"\r\n",
				"MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", "DATA\r\n", message, "QUIT\r\n", harness.Closed())},
		{Name: "smtp none with xclient over [::1]", Listen: "smtp", Client6: true, Steps: noneSession(smtpReply)},
		{Name: "smtp to an IPv6 Auth-Server", Listen: "smtp", Client6: true,
			Steps: steps(smtpReply, smtpReply, "EHLO client.example\r\n", "AUTH LOGIN\r\n", b64("six")+"\r\n", b64("pw")+"\r\n",
				"MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", "DATA\r\n", message, "QUIT\r\n", harness.Closed())},
		{Name: "dual-stack listener, IPv6 client", Listen: "dual", Client6: true, Steps: noneSession(smtpReply)},
		// An IPv4 client on a dual-stack socket arrives as ::ffff:127.0.0.1.
		{Name: "dual-stack listener, IPv4 client", Listen: "dual", Steps: noneSession(smtpReply)},
		{Name: "[::] and 127.0.0.1 on one port, IPv6 client", Listen: "v6only", Client6: true,
			Steps: steps(pop3Line, pop3Line, "USER pop\r\n", "PASS wrong\r\n", "QUIT\r\n", harness.Closed())},
		{Name: "[::] and 127.0.0.1 on one port, IPv4 client", Listen: "v6only",
			Steps: steps(pop3Line, pop3Line, "USER pop\r\n", "PASS wrong\r\n", "QUIT\r\n", harness.Closed())},
	}
	// The facts the comparison relies on, checked on both: an IPv6
	// client's address reaches auth_http as nginx writes it.
	for i := range scenarios {
		sc := &scenarios[i]
		want := "::1"
		if !sc.Client6 {
			want = "127.0.0.1"
			if sc.Listen == "dual" {
				want = "::ffff:127.0.0.1"
			}
		}
		sendsMessage := sc.Listen == "smtp" || sc.Listen == "dual" // every SMTP scenario sends one
		sc.Check = func(t testing.TB, tr *harness.Transcript) {
			if sendsMessage && !bytes.Contains(tr.Received, []byte("250 2.0.0 Ok: queued as")) {
				t.Errorf("%s %s: the message was not queued by Postfix", tr.Impl, sc.Name)
			}
			if len(tr.Auth) == 0 {
				t.Errorf("%s %s: no auth_http request", tr.Impl, sc.Name)
				return
			}
			if line := "\r\nClient-IP: " + want + "\r\n"; !bytes.Contains(tr.Auth[0], []byte(line)) {
				t.Errorf("%s %s: no %q in the auth_http request:\n%s", tr.Impl, sc.Name, line, tr.Auth[0])
			}
		}
	}
	suite.Run(t, scenarios)
}
