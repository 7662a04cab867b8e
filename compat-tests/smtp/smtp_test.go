// Package smtp holds the SMTP compat suite: the same client sessions run
// through real nginx 1.22.1 and through mailgate, with the same auth_http
// server, a real private Postfix upstream behind a recording pass-through,
// and tiny DNS servers for the resolver, compared byte for byte (client,
// auth_http requests, upstream bytes and the "*N" error.log lines).
package smtp

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
	"mailgate/mail/smtp/dnstest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// reply waits for a complete (possibly multi-line) SMTP reply.
func reply() harness.Step { return harness.Until(`(?m)^\d{3} [^\n]*\n`) }

// greet reads the greeting.
func greet() harness.Step { return harness.Lines(1) }

// send sends a line and waits for its reply.
func send(line string) []harness.Step {
	return []harness.Step{harness.Send(line), reply()}
}

func steps(parts ...any) []harness.Step {
	var out []harness.Step
	for _, p := range parts {
		switch v := p.(type) {
		case harness.Step:
			out = append(out, v)
		case []harness.Step:
			out = append(out, v...)
		case string:
			out = append(out, send(v)...)
		default:
			panic(fmt.Sprintf("steps: %T", p))
		}
	}
	return out
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dnsServer starts a DNS server answering for 127.0.0.1 as setup says.
func dnsServer(t *testing.T, setup func(s *dnstest.Server)) string {
	s, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	setup(s)
	return s.Addr
}

const ptr127 = "1.0.0.127.in-addr.arpa. 60 IN PTR "

const message = "From: <a@example.org>\r\nTo: <b@example.com>\r\nSubject: compat\r\n\r\nhello\r\n.\r\n"

func TestSMTPCompat(t *testing.T) {
	pf := harness.StartPostfix(t)
	up, rec := harness.Record(t, pf.Addr)
	down := closedPort(t)
	// Scripted upstreams for the login dialog's failure paths.
	badUp := fakeUpstream(t, "554 5.3.2 go away\r\n")
	ehloOK := rule{"EHLO", "250-fake.test\r\n250 XCLIENT NAME ADDR LOGIN\r\n"}
	xclientNo := scriptedUpstream(t, "220 fake.test ESMTP\r\n", ehloOK, rule{"XCLIENT", "550 5.7.0 not allowed\r\n"})
	ehloNo := scriptedUpstream(t, "220 fake.test ESMTP\r\n", rule{"EHLO", "502 5.5.2 no\r\n"})
	multiGreet := scriptedUpstream(t, "220-fake.test first\r\n220 fake.test ESMTP\r\n", ehloOK, rule{"XCLIENT", "220 fake.test again\r\n"},
		rule{"MAIL", "250 2.1.0 ok\r\n"}, rule{"RCPT", "250 2.1.5 ok\r\n"}, rule{"QUIT", "221 bye\r\n"})
	mailNo := scriptedUpstream(t, "220 fake.test ESMTP\r\n", ehloOK, rule{"XCLIENT", "220 fake.test\r\n"},
		rule{"MAIL", "553 5.1.8 sender rejected\r\n"})
	rcptTemp := scriptedUpstream(t, "220 fake.test ESMTP\r\n", ehloOK, rule{"XCLIENT", "220 fake.test\r\n"},
		rule{"MAIL", "250 2.1.0 ok\r\n"}, rule{"RCPT", "451 4.3.0 try later\r\n"}, rule{"QUIT", "221 bye\r\n"})
	silent := scriptedUpstream(t, "")
	authNo := scriptedUpstream(t, "220 fake.test ESMTP\r\n", ehloOK, rule{"XCLIENT", "220 fake.test\r\n"},
		rule{"AUTH", "535 5.7.8 bad credentials\r\n"})
	var waitCount atomic.Int32

	as := harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{
			"good":      {Password: "pw", Upstream: up},
			"te st+x=":  {Password: "pw", Upstream: up},
			"down":      {Password: "pw", Upstream: down},
			"badup":     {Password: "pw", Upstream: badUp},
			"nowait":    {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{Status: "Invalid login or password"}},
			"code":      {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{Status: "Relay denied", ErrorCode: "550 5.7.1", Wait: "1"}},
			"garbage":   {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{Garbage: true}},
			"close":     {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{Close: true}},
			"noserver":  {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{NoServer: true}},
			"hostname":  {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{Server: "localhost"}},
			"rename":    {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{User: "other", Pass: "pw2"}},
			"nopass":    {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{NoPass: true}},
			"xclientno": {Password: "pw", Upstream: xclientNo},
			"ehlono":    {Password: "pw", Upstream: ehloNo},
			"multi":     {Password: "pw", Upstream: multiGreet},
			"silent":    {Password: "pw", Upstream: silent},
			"authno":    {Password: "pw", Upstream: authNo},
			"waitonce":  {Password: "pw", Upstream: up},
			"hang":      {Password: "pw", Upstream: up, Behavior: &authserver.Behavior{Hang: true}},
		},
		FailWait:     "1",
		NoneUpstream: up,
		Handler: func(r *authserver.Request) *authserver.Behavior {
			if r.User() == "waitonce" {
				if waitCount.Add(1)%2 == 1 {
					return &authserver.Behavior{Status: "WAIT", Wait: "1"}
				}
				return nil
			}
			if r.Get("Auth-Method") != "none" {
				return nil
			}
			from := r.Get("Auth-SMTP-From")
			switch {
			case strings.Contains(from, "mailno@"):
				return &authserver.Behavior{Status: "OK", Server: "127.0.0.1", Port: portOf(mailNo)}
			case strings.Contains(from, "rcpttemp@"):
				return &authserver.Behavior{Status: "OK", Server: "127.0.0.1", Port: portOf(rcptTemp)}
			case strings.Contains(from, "multi@"):
				return &authserver.Behavior{Status: "OK", Server: "127.0.0.1", Port: portOf(multiGreet)}
			case strings.Contains(from, "reject@"):
				return &authserver.Behavior{Status: "Relay access denied", Wait: "1"}
			case strings.Contains(from, "deny@"):
				return &authserver.Behavior{Status: "Sender denied", ErrorCode: "554 5.7.1"}
			}
			return &authserver.Behavior{Status: "OK"}
		},
	})

	dnsOK := dnsServer(t, func(s *dnstest.Server) {
		s.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr127 + "client.example.net."}})
		s.Set("client.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"client.example.net. 60 IN A 127.0.0.1"}})
	})
	dnsMismatch := dnsServer(t, func(s *dnstest.Server) {
		s.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr127 + "client.example.net."}})
		s.Set("client.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"client.example.net. 60 IN A 127.0.0.2"}})
	})
	dnsNX := dnsServer(t, func(s *dnstest.Server) {})
	dnsFwdNX := dnsServer(t, func(s *dnstest.Server) {
		s.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr127 + "client.example.net."}})
	})
	dnsServFail := dnsServer(t, func(s *dnstest.Server) {
		s.SetPTR("127.0.0.1", dnstest.Answer{Rcode: dns.RcodeServerFailure})
	})
	dnsDrop := dnsServer(t, func(s *dnstest.Server) {
		s.SetPTR("127.0.0.1", dnstest.Answer{Drop: true})
	})
	dnsCNAME := dnsServer(t, func(s *dnstest.Server) {
		s.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{"1.0.0.127.in-addr.arpa. 60 IN CNAME 1.0/0.0.127.in-addr.arpa."}})
	})
	dnsInject := dnsServer(t, func(s *dnstest.Server) {
		s.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr127 + `evil\013\010XCLIENT\032NAME=x.example.net.`}})
	})

	conf := harness.Config{
		Vars: map[string]string{
			"dns_ok": dnsOK, "dns_mismatch": dnsMismatch, "dns_nx": dnsNX, "dns_fwdnx": dnsFwdNX,
			"dns_servfail": dnsServFail, "dns_drop": dnsDrop, "dns_inject": dnsInject,
			"authdown":  closedPort(t) + "/auth",
			"dns_cname": dnsCNAME, "dns_refused": closedPort(t),
		},
		Mail: `
    auth_http {{auth}};
    server_name mx.example.test;
    server {
        listen 127.0.0.1:{{port smtp}};
        protocol smtp;
        smtp_auth plain login cram-md5 external;
        smtp_capabilities PIPELINING "SIZE 10485760" 8BITMIME;
    }
    server {
        listen 127.0.0.1:{{port none}};
        protocol smtp;
        smtp_auth plain login none;
    }
    server {
        listen 127.0.0.1:{{port noxc}};
        protocol smtp;
        smtp_auth plain login none;
        xclient off;
    }
    server {
        listen 127.0.0.1:{{port sauth}};
        protocol smtp;
        proxy_smtp_auth on;
    }
    server {
        listen 127.0.0.1:{{port sauthnoxc}};
        protocol smtp;
        smtp_auth plain login external;
        proxy_smtp_auth on;
        xclient off;
    }
    server {
        listen 127.0.0.1:{{port errmsg}};
        protocol smtp;
        proxy_pass_error_message on;
    }
    server {
        listen 127.0.0.1:{{port short}};
        protocol smtp;
        timeout 2s;
        auth_http_timeout 1s;
        smtp_auth plain none;
    }
    server {
        listen 127.0.0.1:{{port authdown}};
        protocol smtp;
        auth_http {{authdown}};
    }
    server {
        listen 127.0.0.1:{{port delay}};
        protocol smtp;
        smtp_greeting_delay 1s;
    }
    server {
        listen 127.0.0.1:{{port buf}};
        protocol smtp;
        smtp_client_buffer 64;
        max_errors 3;
    }
    server { listen 127.0.0.1:{{port r_ok}};       protocol smtp; smtp_auth plain none; resolver {{dns_ok}} ipv6=off;       resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_mismatch}}; protocol smtp; smtp_auth plain none; resolver {{dns_mismatch}} ipv6=off; resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_nx}};       protocol smtp; smtp_auth plain none; resolver {{dns_nx}} ipv6=off;       resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_fwdnx}};    protocol smtp; smtp_auth plain none; resolver {{dns_fwdnx}} ipv6=off;    resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_servfail}}; protocol smtp; smtp_auth plain none; resolver {{dns_servfail}} ipv6=off; resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_drop}};     protocol smtp; smtp_auth plain none; resolver {{dns_drop}} ipv6=off;     resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_cname}};    protocol smtp; smtp_auth plain none; resolver {{dns_cname}} ipv6=off;    resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_refused}};  protocol smtp; smtp_auth plain none; resolver {{dns_refused}} ipv6=off;  resolver_timeout 1s; }
    server { listen 127.0.0.1:{{port r_inject}};   protocol smtp; smtp_auth plain none; resolver {{dns_inject}} ipv6=off;   resolver_timeout 1s; }
`,
	}

	plain := func(user, pass string) string { return "AUTH PLAIN " + b64("\x00"+user+"\x00"+pass) + "\r\n" }
	ehlo := "EHLO client.example\r\n"
	data := []harness.Step{harness.Send("DATA\r\n"), reply(), harness.Send(message), reply()}
	quit := []harness.Step{harness.Send("QUIT\r\n"), reply(), harness.Closed()}
	mailTo := func(to string) []harness.Step {
		return steps("MAIL FROM:<a@example.org>\r\n", "RCPT TO:<"+to+">\r\n")
	}
	noneMail := func(to string) []harness.Step {
		return steps(ehlo, "MAIL FROM:<a@example.org> BODY=8BITMIME\r\n", "RCPT TO:<"+to+">\r\n")
	}

	suite := &harness.Suite{
		Name:        "smtp",
		Config:      conf,
		Auth:        as,
		Upstreams:   map[string]*harness.Recorder{"postfix": rec},
		CompareLog:  true,
		ReadTimeout: 4 * time.Second,
	}
	scenarios := []harness.Scenario{
		// --- every command in the auth state ---
		{Name: "ehlo helo", Listen: "smtp", Steps: steps(greet(), ehlo, "HELO client.example\r\n", "EHLO\r\n", "HELO a b\r\n", quit)},
		{Name: "noop rset quit case", Listen: "smtp", Steps: steps(greet(), "noop\r\n", "RsEt\r\n", "NOOP args here\n", quit)},
		{Name: "vrfy expn help data unknown", Listen: "smtp", Steps: steps(greet(), "VRFY a\r\n", "EXPN a\r\n", "HELP\r\n", "DATA\r\n", "BDAT 1\r\n", "STARTTLS\r\n", "NOOP\r\n", "XYZZY\r\n", "\r\n", "NOOP\r\n", harness.Closed())},
		{Name: "max_errors", Listen: "buf", Steps: steps(greet(), "DATA\r\n", "VRFY x\r\n", "FOO\r\n", "NOOP\r\n", "BAR\r\n", harness.Closed())},
		{Name: "mail without none", Listen: "smtp", Steps: steps(greet(), ehlo, "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", quit)},
		{Name: "rejected mail logs the buffer", Listen: "smtp", Steps: steps(greet(), harness.Send("EHLO x\r\nMAIL FROM:<a@example.org>\r\nNOOP\r\n"), harness.Quiet(500*time.Millisecond), harness.Send("QUIT\r\n"), harness.Quiet(500*time.Millisecond), harness.Close()),
			Differ: "nginx 1.22.1 turns CR/LF into '_' inside its buffer when it logs a rejected MAIL, so a command pipelined after it never ends (NOOP__QUIT is invalid); mailgate logs the same line and keeps the pipelined commands"},
		{Name: "args limit", Listen: "none", Steps: steps(greet(), "MAIL 1 2 3 4 5 6 7 8 9 10 11\r\n", "RSET\r\n", "MAIL 1 2 3 4 5 6 7 8 9 10 11 12\r\n", quit)},
		{Name: "bare LF and stray CR", Listen: "smtp", Steps: steps(greet(), "NOOP\n", "NOOP\rX\r\n", "EHLO a\n", quit)},

		// --- AUTH methods ---
		{Name: "auth plain", Listen: "smtp", Steps: steps(greet(), ehlo, plain("good", "pw"), mailTo("b@example.com"), data, quit)},
		{Name: "auth plain continuation", Listen: "smtp", Steps: steps(greet(), "AUTH PLAIN\r\n", b64("\x00good\x00pw")+"\r\n", quit)},
		{Name: "auth login", Listen: "smtp", Steps: steps(greet(), ehlo, "AUTH LOGIN\r\n", b64("good")+"\r\n", b64("pw")+"\r\n", quit)},
		{Name: "auth login initial", Listen: "smtp", Steps: steps(greet(), "auth login "+b64("good")+"\r\n", b64("pw")+"\r\n", quit)},
		{Name: "auth login empty user", Listen: "smtp", Steps: steps(greet(), "AUTH LOGIN\r\n", "\r\n", b64("pw")+"\r\n", quit)},
		{Name: "auth cram-md5", Listen: "smtp", Steps: steps(greet(), "AUTH CRAM-MD5\r\n", b64("good 0123456789abcdef0123456789abcdef")+"\r\n", quit)},
		{Name: "auth cram-md5 disabled", Listen: "none", Steps: steps(greet(), "AUTH CRAM-MD5\r\n", "AUTH EXTERNAL\r\n", quit)},
		{Name: "auth external", Listen: "smtp", Steps: steps(greet(), "AUTH EXTERNAL\r\n", b64("good")+"\r\n", quit)},
		{Name: "auth external initial when disabled", Listen: "none", Steps: steps(greet(), "AUTH EXTERNAL "+b64("good")+"\r\n", quit)},
		{Name: "auth arguments", Listen: "smtp", Steps: steps(greet(), "AUTH\r\n", "AUTH FOO\r\n", "AUTH PLAIN a b\r\n", "AUTH LOGIN a b\r\n", "AUTH CRAM-MD5 x\r\n", "NOOP\r\n", quit)},
		{Name: "auth bad base64 and cancel", Listen: "smtp", Steps: steps(greet(), "AUTH PLAIN\r\n", "*\r\n", "AUTH PLAIN\r\n", "\r\n", "AUTH LOGIN\r\n", "a\r\n", "AUTH PLAIN "+b64("nonul")+"\r\n", "AUTH PLAIN "+b64("\x00one")+"\r\n", quit)},
		{Name: "auth cram-md5 bad hash", Listen: "smtp", Steps: steps(greet(), "AUTH CRAM-MD5\r\n", b64("good short")+"\r\n", quit)},
		{Name: "auth wrong password then right", Listen: "smtp", Steps: steps(greet(), ehlo, plain("good", "bad"), plain("good", "pw"), quit)},
		// Found by TestSMTPRandomDifferential: EXTERNAL keeps the password
		// of the failed attempt before it, and auth_http gets it.
		{Name: "auth external after a failed plain", Listen: "smtp", Steps: steps(greet(), plain("good", "bad"), "AUTH EXTERNAL "+b64("good")+"\r\n", quit)},
		{Name: "client gone during auth wait", Listen: "smtp", Steps: steps(greet(), harness.Send(plain("good", "bad")+"NOOP\r\n"), harness.Sleep(300*time.Millisecond), harness.Close())},
		{Name: "auth fail without wait", Listen: "smtp", Steps: steps(greet(), plain("nowait", "pw"), harness.Closed())},
		{Name: "auth error code", Listen: "smtp", Steps: steps(greet(), plain("code", "pw"), "NOOP\r\n", quit)},
		{Name: "pipelined auth", Listen: "smtp", Steps: steps(greet(), harness.Send(ehlo+plain("good", "pw")+"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n"), harness.Until(`(?s)235 .*250 [^\n]*\n.*250 [^\n]*\n`), data, quit)},
		{Name: "auth override user", Listen: "smtp", Steps: steps(greet(), plain("rename", "pw"), quit)},
		{Name: "xclient login xtext", Listen: "smtp", Steps: steps(greet(), plain("te st+x=", "pw"), quit),
			Differ: "XCLIENT LOGIN= is xtext-encoded as in nginx 1.29.2+ (1.22.1 sends it raw)",
			Check: upstreamHas(map[harness.Impl]string{
				harness.Nginx:    "XCLIENT ADDR=127.0.0.1 LOGIN=te st+x= NAME=[UNAVAILABLE]\r\n",
				harness.Mailgate: "XCLIENT ADDR=127.0.0.1 LOGIN=te+20st+2Bx+3D NAME=[UNAVAILABLE]\r\n",
			})},

		// --- smtp_auth none ---
		{Name: "none accept", Listen: "none", Steps: steps(greet(), noneMail("b@example.com"), data, quit)},
		{Name: "none accept helo", Listen: "none", Steps: steps(greet(), "HELO client.example\r\n", "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", data, quit)},
		{Name: "none without helo", Listen: "none", Steps: steps(greet(), "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", quit)},
		{Name: "none unknown recipient passed on", Listen: "none", Steps: steps(greet(), noneMail("nobody@nowhere.invalid"), "RCPT TO:<b@example.com>\r\n", data, quit)},
		{Name: "none sequence errors", Listen: "none", Steps: steps(greet(), "RCPT TO:<b@example.com>\r\n", "MAIL\r\n", "MAIL FROM:<a@example.org>\r\n", "MAIL FROM:<c@example.org>\r\n", "RCPT\r\n", "RSET\r\n", "RCPT TO:<b@example.com>\r\n", quit)},
		{Name: "none reject with wait", Listen: "none", Steps: steps(greet(), ehlo, "MAIL FROM:<reject@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", "RCPT TO:<c@example.com>\r\n", "RSET\r\n", quit)},
		{Name: "none reject without wait", Listen: "none", Steps: steps(greet(), ehlo, "MAIL FROM:<deny@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", harness.Closed())},
		{Name: "none after failed auth", Listen: "none", Steps: steps(greet(), ehlo, plain("good", "bad"), "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", quit),
			Differ: "MAIL under none clears the failed AUTH's login and password as nginx 1.29.1+ does (1.22.1 sends them to auth_http and XCLIENT)",
			Check: func(t testing.TB, tr *harness.Transcript) {
				want := map[harness.Impl]string{harness.Nginx: "Auth-User: good\r\nAuth-Pass: bad\r\n", harness.Mailgate: "Auth-User: \r\nAuth-Pass: \r\n"}[tr.Impl]
				if len(tr.Auth) != 2 || !strings.Contains(string(tr.Auth[1]), "Auth-Method: none\r\n"+want) {
					t.Errorf("%s: none request %q", tr.Impl, tr.Auth)
				}
				upstreamHas(map[harness.Impl]string{
					harness.Nginx:    "XCLIENT ADDR=127.0.0.1 LOGIN=good NAME=[UNAVAILABLE]\r\n",
					harness.Mailgate: "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n",
				})(t, tr)
			}},
		{Name: "none plain still works", Listen: "none", Steps: steps(greet(), plain("good", "pw"), quit)},
		{Name: "xclient off none", Listen: "noxc", Steps: steps(greet(), noneMail("b@example.com"), data, quit)},
		{Name: "xclient off auth", Listen: "noxc", Steps: steps(greet(), "HELO c\r\n", plain("good", "pw"), mailTo("b@example.com"), data, quit)},
		{Name: "xclient off no helo", Listen: "noxc", Steps: steps(greet(), plain("good", "pw"), quit)},

		// --- proxy_smtp_auth ---
		{Name: "proxy_smtp_auth", Listen: "sauth", Steps: steps(greet(), ehlo, plain("good", "pw"), quit)},
		{Name: "proxy_smtp_auth no password", Listen: "sauthnoxc", Steps: steps(greet(), "AUTH EXTERNAL "+b64("nopass")+"\r\n", harness.Closed())},
		{Name: "proxy_smtp_auth xclient off", Listen: "sauthnoxc", Steps: steps(greet(), "HELO c\r\n", plain("good", "pw"), quit)},

		// --- greeting delay, pipelining, buffer ---
		{Name: "greeting delay silent", Listen: "delay", Steps: steps(greet(), ehlo, quit)},
		{Name: "greeting delay early talker", Listen: "delay", Steps: steps(harness.Send("EHLO x\r\nMAIL"), harness.Closed())},
		{Name: "pipelining", Listen: "smtp", Steps: steps(greet(), harness.Send("EHLO a\r\nNOOP\r\nRSET\r\nVRFY x\r\nDATA\r\nNOOP\r\n"), harness.Quiet(500*time.Millisecond), quit)},
		{Name: "split command", Listen: "smtp", Steps: steps(greet(), harness.Send("NO"), harness.Sleep(100*time.Millisecond), harness.Send("OP\r"), harness.Sleep(100*time.Millisecond), harness.Send("\nEH"), reply(), harness.Send("LO x\r\n"), reply(), quit)},
		{Name: "too long line", Listen: "buf", Steps: steps(greet(), harness.Send("MAIL FROM:<"+strings.Repeat("a", 60)+">\r\n"), harness.Closed())},
		{Name: "pipelining past the buffer", Listen: "buf", Steps: steps(greet(), harness.Send(strings.Repeat("NOOP\r\n", 10)+"NOOP"), harness.Closed())},
		{Name: "pipelining past the default buffer", Listen: "smtp", Steps: steps(greet(), harness.Send(strings.Repeat("NOOP\r\n", 682)+"NOOP"), harness.Closed())},
		{Name: "auth line longer than the buffer", Listen: "buf",
			Differ: "mailgate keeps credentials out of the 'client sent too long command' log line (AUTH initial responses and SASL responses become ***); nginx logs the buffer as it is",
			Steps:  steps(greet(), harness.Send("AUTH PLAIN "+b64("\x00good\x00"+strings.Repeat("p", 50))+"\r\n"), harness.Closed())},
		{Name: "line of exactly the buffer", Listen: "buf", Steps: steps(greet(), "HELO "+strings.Repeat("h", 57)+"\r\n", quit)},

		// --- auth_http and upstream failures ---
		{Name: "auth http garbage", Listen: "smtp", Steps: steps(greet(), plain("garbage", "pw"), harness.Closed())},
		{Name: "auth http close", Listen: "smtp", Steps: steps(greet(), plain("close", "pw"), harness.Closed())},
		{Name: "auth http no server", Listen: "smtp", Steps: steps(greet(), plain("noserver", "pw"), harness.Closed())},
		{Name: "auth http hostname server", Listen: "smtp", Steps: steps(greet(), plain("hostname", "pw"), harness.Closed())},
		{Name: "upstream down", Listen: "smtp", Steps: steps(greet(), plain("down", "pw"), harness.Closed())},
		{Name: "upstream bad greeting", Listen: "smtp", Steps: steps(greet(), plain("badup", "pw"), harness.Closed())},
		{Name: "upstream bad greeting pass error", Listen: "errmsg", Steps: steps(greet(), plain("badup", "pw"), harness.Closed())},
		{Name: "upstream refuses XCLIENT", Listen: "smtp", Steps: steps(greet(), plain("xclientno", "pw"), harness.Closed())},
		{Name: "upstream refuses XCLIENT pass error", Listen: "errmsg", Steps: steps(greet(), plain("xclientno", "pw"), harness.Closed())},
		{Name: "upstream refuses EHLO", Listen: "smtp", Steps: steps(greet(), ehlo, plain("ehlono", "pw"), harness.Closed())},
		{Name: "upstream multi-line greeting", Listen: "none", Steps: steps(greet(), "EHLO c\r\n", "MAIL FROM:<multi@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", quit)},
		{Name: "upstream refuses MAIL", Listen: "none", Steps: steps(greet(), "MAIL FROM:<mailno@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", harness.Closed())},
		{Name: "upstream RCPT reply passed on", Listen: "none", Steps: steps(greet(), "MAIL FROM:<rcpttemp@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", quit)},
		{Name: "upstream refuses AUTH", Listen: "sauth", Steps: steps(greet(), plain("authno", "pw"), harness.Closed())},
		{Name: "upstream silent", Listen: "short", Steps: steps(greet(), plain("silent", "pw"), harness.Closed())},
		{Name: "auth http timeout", Listen: "short", Steps: steps(greet(), plain("hang", "pw"), harness.Closed())},
		{Name: "auth http down", Listen: "authdown", Steps: steps(greet(), plain("good", "pw"), harness.Closed())},
		{Name: "auth http WAIT", Listen: "smtp", Steps: steps(greet(), plain("waitonce", "pw"), quit)},
		{Name: "client timeout", Listen: "short", Steps: steps(greet(), "EHLO c\r\n", harness.Closed())},

		// --- resolver ---
		{Name: "resolver confirmed", Listen: "r_ok", Steps: steps(greet(), noneMail("b@example.com"), quit), Check: hostIs("client.example.net", "NAME=client.example.net")},
		{Name: "resolver mismatch", Listen: "r_mismatch", Steps: steps(greet(), noneMail("b@example.com"), quit), Check: hostIs("[UNAVAILABLE]", "NAME=[UNAVAILABLE]")},
		{Name: "resolver nxdomain", Listen: "r_nx", Steps: steps(greet(), plain("good", "pw"), quit)},
		{Name: "resolver forward nxdomain", Listen: "r_fwdnx", Steps: steps(greet(), plain("good", "pw"), quit)},
		{Name: "resolver servfail", Listen: "r_servfail", Steps: steps(greet(), noneMail("b@example.com"), quit), Check: hostIs("[TEMPUNAVAIL]", "NAME=[TEMPUNAVAIL]")},
		{Name: "resolver timeout", Listen: "r_drop", Steps: steps(greet(), plain("good", "pw"), quit), Check: hostIs("[TEMPUNAVAIL]", "NAME=[TEMPUNAVAIL]")},
		{Name: "resolver answer without PTR", Listen: "r_cname", Steps: steps(greet(), plain("good", "pw"), quit),
			Check: both(hostIs("[TEMPUNAVAIL]", "NAME=[TEMPUNAVAIL]"), logHas(": no PTR type in DNS response\n"))},
		{Name: "resolver port refused", Listen: "r_refused", Steps: steps(greet(), plain("good", "pw"), quit),
			Check: both(hostIs("[TEMPUNAVAIL]", "NAME=[TEMPUNAVAIL]"), logHas(": recv() failed (111: Connection refused) while resolving, resolver: 127.0.0.1:"))},
		{Name: "client talks while resolving", Listen: "r_drop", Steps: steps(harness.Send("EHLO early\r\n"), harness.Until(`(?s)220 .*250 [^\n]*\n`), quit)},
		{Name: "resolver injection", Listen: "r_inject", Steps: steps(greet(), noneMail("b@example.com"), quit), Check: hostIs("[TEMPUNAVAIL]", "NAME=[TEMPUNAVAIL]")},
	}
	suite.Run(t, scenarios)
}

// hostIs checks Client-Host in the auth request and NAME= in XCLIENT.
func hostIs(host, xclient string) func(testing.TB, *harness.Transcript) {
	return func(t testing.TB, tr *harness.Transcript) {
		t.Helper()
		if len(tr.Auth) == 0 || !strings.Contains(string(tr.Auth[0]), "Client-Host: "+host+"\r\n") {
			t.Errorf("%s: auth request lacks Client-Host %s: %q", tr.Impl, host, tr.Auth)
		}
		conns := tr.Upstream["postfix"]
		if len(conns) == 0 || !strings.Contains(string(conns[0].Sent()), " "+xclient+"\r\n") {
			t.Errorf("%s: XCLIENT lacks %s", tr.Impl, xclient)
		}
	}
}

// logHas checks the whole error.log, lines without a connection number
// included (the transcripts compare only the "*N" lines).
func logHas(want string) func(testing.TB, *harness.Transcript) {
	return func(t testing.TB, tr *harness.Transcript) {
		t.Helper()
		if log := tr.Proxy.ErrorLog(); !strings.Contains(log, want) {
			t.Errorf("%s: error.log lacks %q:\n%s", tr.Impl, want, log)
		}
	}
}

func both(checks ...func(testing.TB, *harness.Transcript)) func(testing.TB, *harness.Transcript) {
	return func(t testing.TB, tr *harness.Transcript) {
		t.Helper()
		for _, c := range checks {
			c(t, tr)
		}
	}
}

// upstreamHas checks that the first upstream connection received the
// implementation's text.
func upstreamHas(want map[harness.Impl]string) func(testing.TB, *harness.Transcript) {
	return func(t testing.TB, tr *harness.Transcript) {
		t.Helper()
		conns := tr.Upstream["postfix"]
		if len(conns) == 0 || !strings.Contains(string(conns[0].Sent()), want[tr.Impl]) {
			var sent string
			if len(conns) > 0 {
				sent = string(conns[0].Sent())
			}
			t.Errorf("%s: upstream did not get %q; got %q", tr.Impl, want[tr.Impl], sent)
		}
	}
}

// rule answers commands starting with prefix.
type rule struct{ prefix, reply string }

// scriptedUpstream is a fake SMTP server: greeting, then each line gets
// the reply of the first rule whose prefix it starts with; a line no rule
// matches closes the connection.
func scriptedUpstream(t *testing.T, greeting string, rules ...rule) string {
	return harness.FakeServer(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		c.Write([]byte(greeting))                       //nolint:errcheck
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			reply := ""
			for _, ru := range rules {
				if strings.HasPrefix(line, ru.prefix) {
					reply = ru.reply
					break
				}
			}
			if reply == "" {
				return
			}
			c.Write([]byte(reply)) //nolint:errcheck
			if strings.HasPrefix(line, "QUIT") {
				return
			}
		}
	})
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// fakeUpstream answers every connection with greeting and closes.
func fakeUpstream(t *testing.T, greeting string) string {
	return harness.FakeServer(t, func(c net.Conn) {
		defer c.Close()
		c.Write([]byte(greeting)) //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		c.Read(buf) //nolint:errcheck
	})
}
