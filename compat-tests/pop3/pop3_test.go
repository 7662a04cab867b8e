// Package pop3 compares mailgate's POP3 proxy with nginx 1.22.1 byte for
// byte: the client dialogue, the auth_http requests, what the real Dovecot
// upstream receives, and the connection lines of error.log.
package pop3

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const mailBody = `
    server_name mx.test;
    auth_http {{auth}};
    max_errors 3;
    timeout 3s;
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;
        pop3_auth plain apop cram-md5 external;
    }
    server {
        listen 127.0.0.1:{{port plain}};
        protocol pop3;
    }
    server {
        listen 127.0.0.1:{{port stls}};
        protocol pop3;
        starttls on;
        ssl_certificate {{prefix}}cert.pem;
        ssl_certificate_key {{prefix}}key.pem;
    }
    server {
        listen 127.0.0.1:{{port only}};
        protocol pop3;
        starttls only;
        ssl_certificate {{prefix}}cert.pem;
        ssl_certificate_key {{prefix}}key.pem;
    }
`

// single is a one-server config with extra directives.
func single(extra string) *harness.Config {
	return &harness.Config{Mail: `
    server_name mx.test;
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;
        ` + extra + `
    }`}
}

// saltDiffer: the auth client follows newer nginx (1.29.7) and sends
// Auth-Salt only for apop and cram-md5 (auth/request.go).
const saltDiffer = "Auth-Salt is not sent for external (newer nginx, auth/request.go)"

// oversizeDiffer: nginx 1.22.1 stops reading a full 1024-byte header
// block and waits for auth_http_timeout ("auth http server ... timed out");
// the auth client gives up at once (package auth, ErrTooLarge).
const oversizeDiffer = "auth_http header block over 1024 bytes: nginx stalls until auth_http_timeout, the auth client fails at once"

// startOddUpstream is an upstream that greets with greeting and then
// reads forever; "" never greets, "close" closes at once.
func startOddUpstream(t *testing.T, greeting string) string {
	return harness.FakeServer(t, func(c net.Conn) {
		defer c.Close()
		if greeting == "close" {
			return
		}
		io.WriteString(c, greeting) //nolint:errcheck
		io.Copy(io.Discard, c)      //nolint:errcheck
	})
}

// proxyV2 is a PROXY v2 TCP4 header (192.0.2.9:1234 -> 127.0.0.1:110)
// with tlv appended as a raw TLV area.
func proxyV2(n int, tlv string) string {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11")
	body := []byte{192, 0, 2, 9, 127, 0, 0, 1, 0x04, 0xd2, 0x00, 0x6e}
	body = append(body[:n], tlv...)
	b = append(b, byte(len(body)>>8), byte(len(body)))
	return string(append(b, body...))
}

// startRefuser is a POP3 upstream that refuses every password at once.
func startRefuser(t *testing.T) string {
	return harness.FakeServer(t, func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "+OK refuser ready\r\n") //nolint:errcheck
		r := bufio.NewReader(c)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(l, "PASS ") {
				io.WriteString(c, "-ERR [AUTH] Authentication failed.\r\n") //nolint:errcheck
			} else {
				io.WriteString(c, "+OK\r\n") //nolint:errcheck
			}
		}
	})
}

func TestPOP3Compat(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	up, rec := harness.Record(t, dc.POP3Addr)
	// Dovecot delays failed logins more and more per client address, so
	// refusals come from a small upstream that refuses at once.
	refAddr, refRec := harness.Record(t, startRefuser(t))
	hangAddr := startOddUpstream(t, "")
	badGreetAddr := startOddUpstream(t, "-ERR busy\r\n")
	closeAddr := startOddUpstream(t, "close")
	var again1, again0 atomic.Int64
	ok := func(u string) authserver.User { return authserver.User{Password: "secret", Upstream: up} }
	beh := func(b *authserver.Behavior) authserver.User {
		return authserver.User{Password: "secret", Upstream: up, Behavior: b}
	}
	auth := harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{
			"alice":     ok("alice"),
			"bob":       {Password: "pw", Upstream: refAddr},
			"updown":    {Password: "secret", Upstream: "127.0.0.1:1"},
			"uphang":    {Password: "secret", Upstream: hangAddr},
			"upbad":     {Password: "secret", Upstream: badGreetAddr},
			"upclose":   {Password: "secret", Upstream: closeAddr},
			"slow":      beh(&authserver.Behavior{Delay: 2 * time.Second}),
			"garbage":   beh(&authserver.Behavior{Garbage: true}),
			"oversize":  beh(&authserver.Behavior{Oversize: true}),
			"noserver":  beh(&authserver.Behavior{NoServer: true}),
			"hostname":  beh(&authserver.Behavior{Server: "localhost"}),
			"badport":   beh(&authserver.Behavior{Port: "70000"}),
			"early":     beh(&authserver.Behavior{Close: true}),
			"override":  beh(&authserver.Behavior{Status: "OK", User: "alice", Pass: "secret"}),
			"waiter":    beh(&authserver.Behavior{Status: "Try again later", Wait: "1"}),
			"nowait":    beh(&authserver.Behavior{Status: "Go away"}),
			"tabstatus": beh(&authserver.Behavior{Status: "\tOK"}),
			"nopass":    beh(&authserver.Behavior{NoPass: true}),
		},
		Handler: func(r *authserver.Request) *authserver.Behavior {
			switch r.User() {
			case "again1":
				// WAIT for a second, then OK as alice.
				if again1.Add(1)%2 == 1 {
					return &authserver.Behavior{Status: "WAIT", Wait: "1"}
				}
				return &authserver.Behavior{Status: "OK", User: "alice", Pass: "secret",
					Server: "127.0.0.1", Port: up[strings.LastIndexByte(up, ':')+1:]}
			case "again0":
				// WAIT without a wait, then a failure: nginx asks again at
				// once and takes the failure.
				if again0.Add(1)%2 == 1 {
					return &authserver.Behavior{Status: "WAIT"}
				}
				return &authserver.Behavior{Status: "Go away"}
			}
			return nil
		},
	})
	cert, key := harness.SelfSigned("mx.test")
	suite := &harness.Suite{
		Name:       "pop3",
		Config:     harness.Config{Mail: mailBody, Files: map[string]string{"cert.pem": cert, "key.pem": key}},
		Auth:       auth,
		Upstreams:  map[string]*harness.Recorder{"dovecot": rec, "refuser": refRec},
		Reset:      func(t testing.TB) { dc.SetMailbox("alice", "Subject: hi\n\nhello\n") },
		CompareLog: true,
	}
	L := harness.Lines
	S := harness.Send
	login := []harness.Step{L(1), S("USER alice\r\n"), L(1), S("PASS secret\r\n"), L(1)}
	with := func(a []harness.Step, b ...harness.Step) []harness.Step {
		return append(append([]harness.Step(nil), a...), b...)
	}
	sc := []harness.Scenario{
		{Name: "greeting quit", Listen: "plain", Steps: []harness.Step{L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "greeting with salt", Listen: "pop3", Steps: []harness.Step{L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "capa default", Listen: "plain", Steps: []harness.Step{L(1), S("CAPA\r\n"), harness.Until(`(?m)^\.\r\n`)}},
		{Name: "capa all methods", Listen: "pop3", Steps: []harness.Step{L(1), S("capa\r\n"), harness.Until(`(?m)^\.\r\n`)}},
		{Name: "auth list", Listen: "pop3", Steps: []harness.Step{L(1), S("AUTH\r\n"), harness.Until(`(?m)^\.\r\n`)}},
		{Name: "capa starttls on", Listen: "stls", Steps: []harness.Step{L(1), S("CAPA\r\n"), harness.Until(`(?m)^\.\r\n`),
			S("USER x\r\n"), L(1), S("CAPA\r\n"), harness.Until(`(?m)^\.\r\n`)}},
		{Name: "starttls only refusals", Listen: "only", Steps: []harness.Step{L(1), S("CAPA\r\n"), harness.Until(`(?m)^\.\r\n`),
			S("USER alice\r\n"), L(1), S("AUTH\r\n"), L(1), S("APOP a b\r\n"), L(1), S("AUTH PLAIN " + b64("\x00alice\x00secret") + "\r\n"), L(1),
			S("STLS\r\n"), L(1), harness.Close()}},
		{Name: "stls without starttls", Listen: "plain", Steps: []harness.Step{L(1), S("STLS\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "user pass retr quit", Listen: "plain", Steps: with(login, S("STAT\r\n"), L(1), S("RETR 1\r\n"),
			harness.Until(`(?m)^\.\r\n`), S("QUIT\r\n"), harness.Closed())},
		{Name: "pipelined after pass", Listen: "plain", Steps: []harness.Step{L(1), S("USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n"), harness.Closed()}},
		{Name: "pipelined pre-auth", Listen: "plain", Steps: []harness.Step{L(1), S("CAPA\r\nNOOP\r\nUSER a\r\nCAPA\r\nQUIT\r\n"), harness.Closed()}},
		{Name: "bad password", Listen: "plain", Steps: []harness.Step{L(1), S("USER alice\r\n"), L(1), S("PASS wrong\r\n"), harness.Closed()}},
		{Name: "unknown user", Listen: "plain", Steps: []harness.Step{L(1), S("USER nobody\r\n"), L(1), S("PASS x\r\n"), harness.Closed()}},
		{Name: "user keeps spaces", Listen: "plain", Steps: []harness.Step{L(1), S("USER   a b  \r\n"), L(1), S("PASS p w \r\n"), harness.Closed()}},
		{Name: "bare lf and lowercase", Listen: "plain", Steps: []harness.Step{L(1), S("user alice\n"), L(1), S("pass secret\n"), L(1), S("QUIT\n"), harness.Closed()}},
		{Name: "auth plain initial response", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH PLAIN " + b64("\x00alice\x00secret") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "auth plain authzid", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH PLAIN " + b64("admin\x00alice\x00secret") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "auth plain continuation", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH PLAIN\r\n"), L(1), S(b64("\x00alice\x00secret") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "auth plain bad base64", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH PLAIN\r\n"), L(1), S("%%%\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "auth plain no nul", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH PLAIN " + b64("alice") + "\r\n"), L(1), S("AUTH PLAIN " + b64("\x00alice") + "\r\n"), L(1)}},
		{Name: "auth plain cancel", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH PLAIN\r\n"), L(1), S("*\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "auth login", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH LOGIN\r\n"), L(1), S(b64("alice") + "\r\n"), L(1), S(b64("secret") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "auth login initial response", Listen: "plain", Steps: []harness.Step{L(1), S("auth login " + b64("alice") + "\r\n"), L(1), S(b64("secret") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "auth login empty lines", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH LOGIN\r\n"), L(1), S("\r\n"), L(1), S("\r\n"), harness.Closed()}},
		{Name: "auth login too many args", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH LOGIN a b\r\n"), L(1), S("AUTH LOGIN a b c d\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "auth unknown mechanism", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH GSSAPI\r\n"), L(1), S("AUTH CRAM-MD5\r\n"), L(1), S("AUTH EXTERNAL\r\n"), L(1), S("APOP a b\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "cram-md5 bad hash", Listen: "pop3", Steps: []harness.Step{L(1), S("AUTH CRAM-MD5\r\n"), L(1), S(b64("alice short") + "\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "cram-md5 wrong digest", Listen: "pop3", Steps: []harness.Step{L(1), S("AUTH CRAM-MD5\r\n"), L(1), S(b64("alice 0123456789abcdef0123456789abcdef") + "\r\n"), harness.Closed()}},
		{Name: "apop wrong digest", Listen: "pop3", Steps: []harness.Step{L(1), S("APOP alice 0123456789abcdef0123456789abcdef\r\n"), harness.Closed()}},
		{Name: "apop wrong arity", Listen: "pop3", Steps: []harness.Step{L(1), S("APOP alice\r\n"), L(1), S("APOP a b c\r\n"), L(1)}},
		{Name: "external", Listen: "pop3", Differ: saltDiffer, Steps: []harness.Step{L(1), S("AUTH EXTERNAL\r\n"), L(1), S(b64("alice") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "external initial response", Listen: "pop3", Differ: saltDiffer, Steps: []harness.Step{L(1), S("AUTH EXTERNAL " + b64("alice") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "external initial response unadvertised", Listen: "plain", Steps: []harness.Step{L(1), S("AUTH EXTERNAL " + b64("alice") + "\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "external without auth pass", Listen: "pop3", Differ: saltDiffer, Steps: []harness.Step{L(1), S("AUTH EXTERNAL " + b64("nopass") + "\r\n"), harness.Closed()}},
		{Name: "auth wait then login", Listen: "plain", Steps: []harness.Step{L(1), S("USER waiter\r\n"), L(1), S("PASS x\r\nNOOP\r\n"), L(2),
			S("PASS secret\r\n"), L(1), S("USER alice\r\nPASS secret\r\n"), L(2), S("QUIT\r\n"), harness.Closed()}},
		{Name: "client gone during auth wait", Listen: "plain", Steps: []harness.Step{L(1), S("USER waiter\r\n"), L(1), S("PASS x\r\nCAPA\r\n"), harness.Sleep(300 * time.Millisecond), harness.Close()}},
		{Name: "auth fail without wait", Listen: "plain", Steps: []harness.Step{L(1), S("USER nowait\r\n"), L(1), S("PASS x\r\nNOOP\r\n"), harness.Closed()}},
		{Name: "auth status tab", Listen: "plain", Steps: []harness.Step{L(1), S("USER tabstatus\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth WAIT requery", Listen: "plain", Steps: []harness.Step{L(1), S("USER again1\r\n"), L(1), S("PASS x\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "auth WAIT without wait", Listen: "plain", Steps: []harness.Step{L(1), S("USER again0\r\n"), L(1), S("PASS x\r\n"), harness.Closed()}},
		{Name: "auth override user and pass", Listen: "plain", Steps: []harness.Step{L(1), S("USER override\r\n"), L(1), S("PASS whatever\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "auth server garbage", Listen: "plain", Steps: []harness.Step{L(1), S("USER garbage\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server oversize", Differ: oversizeDiffer, Listen: "plain", Steps: []harness.Step{L(1), S("USER oversize\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server no server", Listen: "plain", Steps: []harness.Step{L(1), S("USER noserver\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server hostname", Listen: "plain", Steps: []harness.Step{L(1), S("USER hostname\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server bad port", Listen: "plain", Steps: []harness.Step{L(1), S("USER badport\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server early close", Listen: "plain", Steps: []harness.Step{L(1), S("USER early\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server oversize short timeout", Differ: oversizeDiffer, Config: single("auth_http_timeout 1s;"), Steps: []harness.Step{L(1), S("USER oversize\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server slow", Config: single("auth_http_timeout 1s;"), Steps: []harness.Step{L(1), S("USER slow\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "auth server down", Config: &harness.Config{Mail: `
    auth_http 127.0.0.1:1/auth;
    server { listen 127.0.0.1:{{port pop3}}; protocol pop3; }`},
			Steps: []harness.Step{L(1), S("USER alice\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "upstream down", Listen: "plain", Steps: []harness.Step{L(1), S("USER updown\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "upstream silent", Config: single("timeout 1s;"), Steps: []harness.Step{L(1), S("USER uphang\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "upstream bad greeting", Listen: "plain", Steps: []harness.Step{L(1), S("USER upbad\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "upstream bad greeting pass error", Config: single("proxy_pass_error_message on;"), Steps: []harness.Step{L(1), S("USER upbad\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "upstream closes at once", Listen: "plain", Steps: []harness.Step{L(1), S("USER upclose\r\n"), L(1), S("PASS secret\r\n"), harness.Closed()}},
		{Name: "upstream refuses login", Listen: "plain", Steps: []harness.Step{L(1), S("USER bob\r\n"), L(1), S("PASS pw\r\n"), harness.Closed()}},
		{Name: "upstream refuses login pass error", Config: single("proxy_pass_error_message on;"),
			Steps: []harness.Step{L(1), S("USER bob\r\n"), L(1), S("PASS pw\r\n"), harness.Closed()}},
		{Name: "max errors", Listen: "plain", Steps: []harness.Step{L(1), S("STAT\r\n"), L(1), S("PASS x\r\n"), L(1), S("LIST\r\n"), L(1), S("\r\n"), harness.Closed()}},
		{Name: "handler refusals not counted", Listen: "plain", Steps: []harness.Step{L(1), S("PASS a\r\n"), L(1), S("PASS a\r\n"), L(1), S("PASS a\r\n"), L(1),
			S("USER\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "too many arguments", Listen: "plain", Steps: []harness.Step{L(1), S("NOOP a b c\r\n"), L(1), S("NOOP a b c d\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "cr without lf", Listen: "plain", Steps: []harness.Step{L(1), S("NOOP\rX\r\n"), L(1), S("NOOP\r\n"), L(1)}},
		{Name: "line of 128 bytes", Listen: "plain", Steps: []harness.Step{L(1), S("NOOP " + strings.Repeat("x", 121) + "\r\n"), L(1)}},
		{Name: "line of 129 bytes", Listen: "plain", Steps: []harness.Step{L(1), S("NOOP " + strings.Repeat("x", 122) + "\r\n"), harness.Closed()}},
		{Name: "long user line", Listen: "plain", Steps: []harness.Step{L(1), S("USER " + strings.Repeat("u", 200) + "\r\n"), harness.Closed()}},
		// Found by TestPOP3RandomDifferential.
		{Name: "lone SASL response in a too long buffer", Listen: "plain",
			Differ: "mailgate keeps credentials out of the 'client sent too long command' log line, also a SASL response without its AUTH; nginx logs the buffer as it is",
			Steps:  []harness.Step{L(1), S(b64("\x00alice\x00secret") + "\r\nNOOP " + strings.Repeat("x", 120)), harness.Closed()},
			Check: func(t testing.TB, tr *harness.Transcript) {
				if tr.Impl == harness.Mailgate && strings.Contains(tr.Proxy.ErrorLog(), b64("\x00alice\x00secret")) {
					t.Errorf("mailgate logged the credentials:\n%s", tr.Proxy.ErrorLog())
				}
			}},
		{Name: "no compaction", Listen: "plain", Steps: []harness.Step{L(1), S(strings.Repeat("NOOP\r\n", 21) + "NO"), harness.Closed()}},
		{Name: "invalid line split", Listen: "plain", Steps: []harness.Step{L(1), S("XYZW abc"), harness.Sleep(200 * time.Millisecond), S(" def\r\nNOOP\r\n"), L(2)}},
		{Name: "user state", Listen: "plain", Steps: []harness.Step{L(1), S("USER a\r\n"), L(1), S("CAPA\r\n"), harness.Until(`(?m)^\.\r\n`),
			S("USER b\r\n"), L(1), S("PASS x\r\n"), L(1), S("AUTH\r\n"), harness.Until(`(?m)^\.\r\n`)}},
		{Name: "timeout", Config: single("timeout 1s;"), Steps: []harness.Step{L(1), S("NOOP\r\n"), L(1), harness.Closed()}},
		{Name: "timeout not rearmed", Config: single("timeout 1s;"), Steps: []harness.Step{L(1), harness.Sleep(600 * time.Millisecond),
			S("NOOP\r\n"), L(1), harness.Closed()}},
		{Name: "proxy timeout", Config: single("proxy_timeout 1s;"), Steps: with(login, harness.Closed())},
		{Name: "client closes after login", Listen: "plain", Differ: "after a client EOF the relay still delivers the upstream's answer, until 1s of upstream silence (docs/relay.md); nginx closes both at once", Steps: with(login, harness.Close())},
		{Name: "client closes pre-auth", Listen: "plain", Steps: []harness.Step{L(1), S("NOOP\r\n"), L(1), harness.Close()}},
		{Name: "wildcard and exact address share a port", Config: &harness.Config{Mail: `
    server_name mx.test;
    auth_http {{auth}};
    server { listen {{port pop3}}; protocol pop3; }
    server { listen 127.0.0.1:{{port pop3}}; protocol pop3; pop3_auth apop; }
    server { listen {{port other}}; protocol pop3; pop3_auth cram-md5; }`},
			Listen: "pop3", Steps: []harness.Step{L(1), S("CAPA\r\n"), harness.Until(`(?m)^\.\r\n`), S("QUIT\r\n"), harness.Closed()}},
		{Name: "proxy protocol in", Config: &harness.Config{Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port pop3}} proxy_protocol; protocol pop3; }`},
			Steps: []harness.Step{S("PROXY TCP4 192.0.2.7 127.0.0.9 4567 110\r\n"), L(1), S("USER alice\r\n"), L(1), S("PASS secret\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "proxy protocol realip", Differ: "nginx does not answer commands that came in the PROXY header's segment until more bytes arrive (edge-triggered epoll); mailgate answers them (a timing artefact of nginx not worth copying)", Config: &harness.Config{Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port pop3}} proxy_protocol; protocol pop3; set_real_ip_from 127.0.0.0/8; }`},
			Steps: []harness.Step{S("PROXY TCP4 192.0.2.7 127.0.0.9 4567 110\r\nUSER alice\r\n"), L(2), S("PASS secret\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "proxy protocol broken", Config: &harness.Config{Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port pop3}} proxy_protocol; protocol pop3; }`},
			Steps: []harness.Step{S("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"), harness.Closed()}},
		{Name: "proxy protocol v2", Config: &harness.Config{Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port pop3}} proxy_protocol; protocol pop3; }`},
			Steps: []harness.Step{S(proxyV2(12, "")), L(1), S("USER alice\r\n"), L(1), S("PASS secret\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
		{Name: "proxy protocol v2 too large", Config: &harness.Config{Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port pop3}} proxy_protocol; protocol pop3; }`},
			Steps: []harness.Step{S(proxyV2(12, strings.Repeat("x", 100))), harness.Closed()}},
		{Name: "proxy protocol eof", Config: &harness.Config{Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port pop3}} proxy_protocol; protocol pop3; }`},
			Steps: []harness.Step{harness.CloseWrite(), harness.Closed()}},
		{Name: "proxy protocol unknown", Config: &harness.Config{Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port pop3}} proxy_protocol; protocol pop3; }`},
			Steps: []harness.Step{S("PROXY UNKNOWN\r\n"), L(1), S("QUIT\r\n"), harness.Closed()}},
	}
	suite.Run(t, sc)
}
