// Package imap_test runs IMAP scenarios against real nginx 1.22.1 and
// mailgate with the same auth_http server and a real Dovecot upstream, and
// compares what the client, the auth server and the upstream saw, byte for
// byte (after the harness's normalisers: salts, Dovecot timings,
// UIDVALIDITY). Where newer nginx differs from 1.22.1 mailgate follows the
// newer one; those scenarios carry a Differ note.
package imap_test

import (
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

var (
	greet = harness.Lines(1)
	send  = harness.Send
	lines = harness.Lines
	until = harness.Until
)

func closed() harness.Step { return harness.Closed() }

// tagged reads until the tagged completion of tag.
func tagged(tag string) harness.Step { return until(`(?m)^` + tag + ` .*\r\n`) }

const (
	msg1 = "From: a@example.test\nSubject: one\n\nfirst message\n"
	msg2 = "From: b@example.test\nSubject: two\n\nsecond message\n"
)

func TestIMAPCompat(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret", "bob": "p w\"x"},
		"auth_failure_delay = 0", "login_trusted_networks = 127.0.0.0/8")
	up, rec := harness.Record(t, dc.IMAPAddr)

	preauth := startFake(t, &fakeUpstream{greeting: "* PREAUTH ready\r\n"})
	untagged := startFake(t, &fakeUpstream{greeting: "* OK fake ready\r\n",
		final: func(tag string) string { return "* CAPABILITY IMAP4rev1 FAKE\r\n" + tag + "OK login ok\r\n" }})
	upNo := startFake(t, &fakeUpstream{greeting: "* OK fake ready\r\n",
		final: func(tag string) string { return tag + "NO [AUTHENTICATIONFAILED] upstream says no\r\n" }})
	upClose := startFake(t, &fakeUpstream{greeting: "* OK fake ready\r\n", closeNow: true})
	noCont := startFake(t, &fakeUpstream{greeting: "* OK fake ready\r\n", noCont: "* BAD no literals here\r\n"})
	fakeUp, fakeRec := harness.Record(t, upNo)
	_ = fakeUp

	fakeUsers := map[string]string{"preauth": preauth, "untagged": untagged, "upno": upNo, "upclose": upClose, "nocont": noCont}
	users := map[string]authserver.User{
		"alice":      {Password: "secret", Upstream: up},
		"bob":        {Password: "p w\"x", Upstream: up},
		"waiter":     {Upstream: up, Behavior: &authserver.Behavior{Status: "Invalid login or password", Wait: "1"}},
		"authclose":  {Behavior: &authserver.Behavior{Close: true}},
		"garbage":    {Behavior: &authserver.Behavior{Garbage: true}},
		"noserver":   {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", NoServer: true}},
		"noport":     {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", NoPort: true}},
		"hostname":   {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", Server: "localhost"}},
		"temp":       {Behavior: &authserver.Behavior{Status: "Temporary failure, try later"}},
		"override":   {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", User: "alice", Pass: "secret"}},
		"wrongpass":  {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", User: "alice", Pass: "wrong"}},
		"deadup":     {Password: "x", Upstream: "127.0.0.1:1"},
		"cram":       {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", User: "alice", Pass: "secret"}},
		"extnopass":  {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", NoPass: true}},
		"slow":       {Behavior: &authserver.Behavior{Hang: true}},
		"emptypass":  {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", User: "alice"}},
		"cramnopass": {Upstream: up, Behavior: &authserver.Behavior{Status: "OK", User: "alice", NoPass: true}},
		"recfake":    {Password: "x", Upstream: fakeUp},
	}
	for u, addr := range fakeUsers {
		users[u] = authserver.User{Password: "x", Upstream: addr}
	}
	auth := harness.StartAuth(t, authserver.Script{Users: users})

	suite := &harness.Suite{
		Name:       "imap",
		Config:     *serverConf(""),
		Auth:       auth,
		Upstreams:  map[string]*harness.Recorder{"dovecot": rec, "fake": fakeRec},
		Reset:      func(t testing.TB) { dc.SetMailbox("alice", msg1, msg2) },
		CompareLog: true,
		// Dovecot delays repeated failed logins from one address (its auth
		// penalty grows up to 15s); give reads room for that.
		ReadTimeout: 20 * time.Second,
	}
	suite.Run(t, scenarios())
}

func login(tag, user, pass string) []harness.Step {
	return []harness.Step{send(tag + " LOGIN " + user + " " + pass + "\r\n"), tagged(tag)}
}

// loginFail is a LOGIN answered with one line and a close.
func loginFail(tag, user, pass string) []harness.Step {
	return []harness.Step{send(tag + " LOGIN " + user + " " + pass + "\r\n"), lines(1), closed()}
}

func seq(parts ...any) []harness.Step {
	var out []harness.Step
	for _, p := range parts {
		switch v := p.(type) {
		case harness.Step:
			out = append(out, v)
		case []harness.Step:
			out = append(out, v...)
		}
	}
	return out
}

// logout ends a relayed session through Dovecot.
var logout = seq(send("z LOGOUT\r\n"), tagged("z"), closed())

const (
	newerLiteral = "newer nginx (1.29.6) accepts only SP, CR or LF after a literal; 1.22.1 skipped the byte"
	newerUntag   = "newer nginx (1.27.3) skips one untagged line before the upstream's tagged LOGIN reply; 1.22.1 treats it as invalid"
	exactFill    = "nginx stops answering when a read fills its buffer exactly with whole commands (edge-triggered epoll) until more bytes arrive; mailgate goes on"
	newerSalt    = "newer nginx (1.29.7) sends Auth-Salt only for APOP and CRAM-MD5; 1.22.1 also sent it for EXTERNAL once a salt existed"
	redacted     = "mailgate keeps credentials out of the 'client sent too long command' log line (LOGIN arguments, SASL responses); nginx logs the buffer as it is"
	staleTag     = "after an Auth-Wait failure nginx sends the bytes now at its buffer's start as a stale tag; mailgate answers '* BAD'"
)

func scenarios() []harness.Scenario {
	small := serverConf("        imap_client_buffer 64;")
	allAuth := serverConf(`        imap_auth plain login cram-md5 external;
        imap_capabilities IMAP4rev1 "SASL-IR" ID;`)
	maxErr2 := serverConf("        max_errors 2;")
	passErr := serverConf("        proxy_pass_error_message on;")
	stOn := tlsConf("        starttls on;")
	stOnly := tlsConf("        starttls only;")
	authDown := &harness.Config{Mail: `
    server_name mx.example.test;
    auth_http 127.0.0.1:1/auth;
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
    }`}
	authTimeout := serverConf("        auth_http_timeout 1s;")
	shortTimeout := serverConf("        timeout 1s;")

	return []harness.Scenario{
		// Commands of the auth state.
		{Name: "capability noop logout", Steps: seq(greet, send("a1 CAPABILITY\r\n"), tagged("a1"),
			send("a2 NOOP\r\n"), tagged("a2"), send("a3 LOGOUT\r\n"), closed())},
		{Name: "capability every method", Config: allAuth, Steps: seq(greet, send("a CAPABILITY\r\n"), tagged("a"))},
		{Name: "capability imap_auth cram-md5 only", Config: serverConf("        imap_auth cram-md5;"),
			Steps: seq(greet, send("a CAPABILITY\r\n"), tagged("a"), send("b AUTHENTICATE PLAIN "+b64("\x00alice\x00secret")+"\r\n"), tagged("b"), logout)},
		{Name: "verbs in any case", Steps: seq(greet, send("a nOoP\r\n"), tagged("a"), send("b capability\r\n"), tagged("b"), send("c LogOut\r\n"), closed())},
		{Name: "noop arguments", Steps: seq(greet, send("b NOOP x y z\r\n"), tagged("b"), send("c NOOP x y z w\r\n"), tagged("c"),
			send("d NOOP \"a b\" {1+}\r\nx {2}\r\n"), lines(1), send("yz\r\n"), tagged("d"))},
		{Name: "empty tag and spaces before the verb", Steps: seq(greet, send(" NOOP\r\n"), lines(1), send("a    NOOP\r\n"), tagged("a"))},
		{Name: "bad tags", Steps: seq(greet, send("a5\r\n"), lines(1), send("\r\n"), lines(1), send("a+ NOOP\r\n"), lines(1),
			send(strings.Repeat("t", 32)+" NOOP\r\n"), lines(1), send(strings.Repeat("t", 33)+" NOOP\r\n"), lines(1), closed())},
		{Name: "unknown commands are counted", Steps: seq(greet, send("a ID (\"name\" \"x\")\r\n"), lines(1), send("b ENABLE X\r\n"), lines(1),
			send("c SELECT INBOX\r\n"), lines(1), send("d STARTTLS1\r\n"), lines(1), send("e AUTH PLAIN\r\n"), lines(1), closed())},
		{Name: "max_errors 2", Config: maxErr2, Steps: seq(greet, send("a X\r\n"), lines(1), send("b Y\r\n"), lines(1), closed())},
		{Name: "handler errors are not counted", Config: maxErr2, Steps: seq(greet, send("a LOGIN\r\n"), lines(1), send("b LOGIN x\r\n"), lines(1),
			send("c AUTHENTICATE\r\n"), lines(1), send("d STARTTLS\r\n"), lines(1), send("e LOGIN \"\" x\r\n"), lines(1), send("f NOOP\r\n"), tagged("f"))},
		{Name: "line endings", Steps: seq(greet, send("a NOOP\n"), lines(1), send("b NOOP\rc\r\n"), lines(1), send("d NOOP\r\r\n"), lines(1))},
		{Name: "pipelined commands", Steps: seq(greet, send("a NOOP\r\nb FOO\r\nc CAPABILITY\r\nd LOGOUT\r\ne NOOP\r\n"), closed())},
		{Name: "pipelined login then logout", Steps: seq(greet, send("a LOGIN alice secret\r\nb LOGOUT\r\n"), tagged("b"), closed())},
		{Name: "pipelined login then commands", Steps: seq(greet, send("a LOGIN alice secret\r\nb SELECT INBOX\r\nc FETCH 1 BODY[]\r\n"), tagged("c"), logout)},
		{Name: "non-synchronizing literal in an invalid command", Steps: seq(greet, send("a FOO {3+}\r\nb NOOP\r\n"), closed())},
		{Name: "pipelined +} line closes", Steps: seq(greet, send("a NOOP\r\n+}\r\nb NOOP\r\n"), closed())},
		{Name: "+} line at the buffer start", Steps: seq(greet, send("a NOOP\r\n"), lines(1), send("+}\r\n"), lines(1),
			send("x+}\r\n"), lines(1), send("xx+}\r\n"), lines(1), closed())},
		{Name: "synchronizing literal in an invalid command", Steps: seq(greet, send("a FOO {3}\r\n"), lines(1), send("b NOOP\r\n"), lines(1))},

		// Arguments: quoting and literals.
		{Name: "quoted login with escapes", Steps: seq(greet, login("a", "\"bob\"", `"p w\"x"`), logout)},
		{Name: "quoted strings keep spaces and join", Steps: seq(greet, send(`a LOGIN "ali"ce secret`+"\r\n"), tagged("a"))},
		{Name: "unterminated quote quirk", Steps: seq(greet, send("a LOGIN \"x y\r\n"), lines(1), send("b LOGIN alice secret\r\n"), lines(1),
			send("c NOOP\r\n"), lines(1), send("d LOGIN alice\"secret\r\n"), tagged("d"), logout)},
		{Name: "invalid command clears the quoted flag", Steps: seq(greet, send("a LOGIN \"x y\r\n"), lines(1), send("b FOO\r\n"), lines(1),
			login("c", "alice", "secret"), logout)},
		{Name: "backslash at the end of a line", Steps: seq(greet, send("a LOGIN \"x\\\r\n"), lines(1), send("b NOOP\r\n"), lines(1))},
		{Name: "synchronizing literals", Steps: seq(greet, send("a LOGIN {5}\r\n"), lines(1), send("alice {6}\r\n"), lines(1), send("secret\r\n"), tagged("a"), logout)},
		{Name: "literals sent without waiting", Steps: seq(greet, send("a LOGIN {5}\r\nalice {6}\r\nsecret\r\n"), tagged("a"), logout)},
		{Name: "non-synchronizing literals", Steps: seq(greet, send("a LOGIN {5+}\r\nalice {6+}\nsecret\r\n"), tagged("a"), logout)},
		{Name: "literal {0} quirk", Steps: seq(greet, send("a LOGIN {0}\r\n"), lines(1), send("alice secret\r\n"), tagged("a"))},
		{Name: "byte after a literal", Differ: newerLiteral, Steps: seq(greet, send("a LOGIN {5}\r\n"), lines(1), send("aliceX secret\r\n"), tagged("a"),
			send("b NOOP\r\n"), lines(1), harness.Quiet(300*time.Millisecond))},
		{Name: "literal right after a literal", Differ: newerLiteral, Steps: seq(greet, send("a LOGIN {5}\r\n"), lines(1), send("alice{6}\r\n"), lines(1),
			send("secret\r\n"), lines(1), harness.Quiet(300*time.Millisecond))},
		{Name: "bad literal syntax", Steps: seq(greet, send("a LOGIN {4x}\r\n"), lines(1), send("b LOGIN {4+x}\r\n"), lines(1),
			send("c NOOP x y z {1}\r\n"), lines(1))},

		{Name: "literal login with CRLF and 8-bit bytes", Steps: seq(greet, send("a LOGIN {8}\r\n"), lines(1), send("al\r\nic\xc3\xa9 {3}\r\n"), lines(1),
			send("p%w\r\n"), lines(1), closed())},
		{Name: "literal password with a quote", Steps: seq(greet, send("a LOGIN bob {5}\r\n"), lines(1), send("p w\"x\r\n"), tagged("a"), logout)},
		{Name: "pipelined literal login and select", Steps: seq(greet, send("a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\nb SELECT INBOX\r\n"), tagged("b"), logout)},
		{Name: "literal as the initial response", Steps: seq(greet, send("a AUTHENTICATE PLAIN {16}\r\n"), lines(1),
			send(b64("\x00alice\x00secret")+"\r\n"), tagged("a"), logout)},
		{Name: "quoted mechanism", Steps: seq(greet, send(`a AUTHENTICATE "plain" "`+b64("\x00alice\x00secret")+"\"\r\n"), tagged("a"), logout)},
		{Name: "noop with a literal", Steps: seq(greet, send("a NOOP {3}\r\n"), lines(1), send("abc\r\n"), lines(1))},
		{Name: "tab after the verb", Steps: seq(greet, send("a LOGIN\talice secret\r\n"), lines(1), send("b NOOP\r\n"), lines(1))},
		{Name: "errors before a good login", Steps: seq(greet, send("a X\r\nb X\r\nc X\r\nd X\r\n"), lines(4), login("e", "alice", "secret"), logout)},
		{Name: "authenticate failure with Auth-Wait then login", Steps: seq(greet, send("a AUTHENTICATE PLAIN "+b64("\x00waiter\x00x")+"\r\n"), tagged("a"),
			send("b CAPABILITY\r\n"), tagged("b"), login("c", "alice", "secret"), logout)},
		{Name: "external after a cram-md5 challenge", Config: allAuth, Differ: newerSalt, Steps: seq(greet, send("a AUTHENTICATE CRAM-MD5\r\n"), lines(1),
			send("*\r\n"), lines(1), send("b AUTHENTICATE EXTERNAL "+b64("alice")+"\r\n"), tagged("b"), logout)},
		{Name: "4096-byte line", Steps: seq(greet, send("a LOGIN alice "+strings.Repeat("x", 4096-16)+"\r\n"), lines(1), closed())},
		// The too-long log line quotes the buffer; with 4096 bytes nginx cuts
		// it at 2048 bytes counting its pid, which differs between runs.
		{Name: "line longer than a 1024-byte buffer", Config: serverConf("        imap_client_buffer 1024;"),
			Steps: seq(greet, send("a NOOP alice "+strings.Repeat("x", 1024-13)), closed())},

		// Buffer limits. The client sends exactly what fits: bytes nginx
		// never reads make its close a reset, which can eat the replies.
		{Name: "64-byte line in a 64-byte buffer", Config: small, Steps: seq(greet, send("a LOGIN "+strings.Repeat("x", 54)+"\r\n"), lines(1))},
		{Name: "too long line", Config: small, Steps: seq(greet, send("a NOOP "+strings.Repeat("x", 57)), closed())},
		{Name: "too long LOGIN line", Config: small, Differ: redacted, Steps: seq(greet, send("a LOGIN alice "+strings.Repeat("x", 50)), closed())},
		{Name: "too long line without a tag", Config: small, Steps: seq(greet, send(strings.Repeat("x", 64)), closed())},
		{Name: "literal larger than the buffer", Config: small, Steps: seq(greet, send("a NOOP {100}\r\n"), lines(1), send(strings.Repeat("x", 64-14)), closed())},
		{Name: "pipelined commands past the buffer end", Config: small, Steps: seq(greet, send(strings.Repeat("a NOOP\r\n", 7)+"bb NOOP\r"), closed())},
		{Name: "authenticate exchange longer than the buffer", Config: small,
			Steps: seq(greet, send("a AUTHENTICATE LOGIN\r\n"), lines(1), send(b64("alice")+strings.Repeat(" ", 20)+"\r\n"), lines(1),
				send(b64("secret")+"\r\n"), lines(1), harness.Quiet(300*time.Millisecond))},
		{Name: "buffer rewound after an authenticate exchange", Config: small,
			Steps: seq(greet, send("a AUTHENTICATE PLAIN\r\n"), lines(1), send(b64("\x00alice\x00bad")+"\r\n"), lines(1), closed())},
		{Name: "pipelined commands filling the buffer exactly", Config: small, Differ: exactFill,
			Steps: seq(greet, send(strings.Repeat("a NOOP\r\n", 8)+"b NOOP\r\n"), harness.Quiet(500*time.Millisecond))},

		// LOGIN and auth_http answers.
		{Name: "login and fetch", Steps: seq(greet, login("a1", "alice", "secret"), send("a2 SELECT INBOX\r\n"), tagged("a2"),
			send("a3 FETCH 1:2 (FLAGS BODY[])\r\n"), tagged("a3"), logout)},
		{Name: "login wrong password closes", Steps: seq(greet, loginFail("a1", "alice", "bad"))},
		{Name: "login unknown user", Steps: seq(greet, loginFail("a1", "nobody", "x"))},
		{Name: "login failure with Auth-Wait then success", Steps: seq(greet, login("a1", "waiter", "x"), send("a2 NOOP\r\n"), tagged("a2"),
			login("a3", "alice", "secret"), logout)},
		{Name: "pipelined after an Auth-Wait failure", Steps: seq(greet, send("a1 LOGIN waiter x\r\na2 NOOP\r\n"), tagged("a2"))},
		{Name: "tagless line after an Auth-Wait failure", Differ: staleTag, Steps: seq(greet, send("a1 LOGIN waiter x\r\n"), tagged("a1"),
			send("\r\n"), lines(1))},
		{Name: "Auth-Status text", Steps: seq(greet, loginFail("t", "temp", "x"))},
		{Name: "Auth-User and Auth-Pass override", Steps: seq(greet, login("o", "override", "anything"), logout)},
		{Name: "auth server closes", Steps: seq(greet, loginFail("a", "authclose", "x"))},
		{Name: "auth server garbage", Steps: seq(greet, loginFail("a", "garbage", "x"))},
		{Name: "auth answer without Auth-Server", Steps: seq(greet, loginFail("a", "noserver", "x"))},
		{Name: "auth answer without Auth-Port", Steps: seq(greet, loginFail("a", "noport", "x"))},
		{Name: "auth answer with a host name", Steps: seq(greet, loginFail("a", "hostname", "x"))},
		{Name: "auth server down", Config: authDown, Steps: seq(greet, loginFail("a", "alice", "secret"))},
		{Name: "auth server timeout", Config: authTimeout, Steps: seq(greet, loginFail("a", "slow", "x"))},
		{Name: "client timeout", Config: shortTimeout, Steps: seq(greet, send("a NOOP\r\n"), lines(1), closed())},

		// AUTHENTICATE.
		{Name: "authenticate plain initial response", Steps: seq(greet, send("a AUTHENTICATE PLAIN "+b64("\x00alice\x00secret")+"\r\n"), tagged("a"), logout)},
		{Name: "authenticate plain", Steps: seq(greet, send("a AUTHENTICATE plain\r\n"), lines(1), send(b64("authz\x00alice\x00secret")+"\r\n"), tagged("a"), logout)},
		{Name: "authenticate plain pipelined", Steps: seq(greet, send("a AUTHENTICATE PLAIN\r\n"+b64("\x00alice\x00secret")+"\r\nb NOOP\r\n"), tagged("b"), logout)},
		{Name: "authenticate plain errors", Steps: seq(greet, send("a AUTHENTICATE PLAIN\r\n"), lines(1), send("\r\n"), lines(1),
			send("b AUTHENTICATE PLAIN\r\n"), lines(1), send("*\r\n"), lines(1), send("c AUTHENTICATE PLAIN "+b64("x")+"\r\n"), lines(1),
			send("d AUTHENTICATE PLAIN a b\r\n"), lines(1), send("e AUTHENTICATE PLAIN\r\n"), lines(1), send(b64("\x00a\x00b")+" a b c\r\n"), lines(1),
			send("f NOOP\r\n"), tagged("f"))},
		{Name: "authenticate plain wrong password", Steps: seq(greet, send("a AUTHENTICATE PLAIN "+b64("\x00alice\x00bad")+"\r\n"), closed())},
		{Name: "authenticate login", Steps: seq(greet, send("a1 AUTHENTICATE LOGIN\r\n"), lines(1), send(b64("alice")+"\r\n"), lines(1),
			send(b64("secret")+"\r\n"), tagged("a1"), logout)},
		{Name: "authenticate login with user name", Steps: seq(greet, send("a AUTHENTICATE login "+b64("alice")+"\r\n"), lines(1),
			send(b64("secret")+"\r\n"), tagged("a"), logout)},
		{Name: "authenticate login bad user name quirk", Steps: seq(greet, send("a AUTHENTICATE LOGIN\r\n"), lines(1), send("!!!\r\n"), lines(1),
			send("b AUTHENTICATE LOGIN\r\n"), lines(1), send(b64("u")+"\r\n"), lines(1), send("!!!\r\n"), lines(1),
			send("c AUTHENTICATE LOGIN !!\r\n"), lines(1), send("d AUTHENTICATE LOGIN a b\r\n"), lines(1))},
		{Name: "authenticate mechanisms not enabled", Steps: seq(greet, send("b AUTHENTICATE EXTERNAL\r\n"), lines(1),
			send("c AUTHENTICATE CRAM-MD5\r\n"), lines(1), send("d AUTHENTICATE FOO\r\n"), lines(1), send("e AUTHENTICATE\r\n"), lines(1))},
		{Name: "authenticate external initial response unchecked", Steps: seq(greet, send("a AUTHENTICATE EXTERNAL "+b64("alice")+"\r\n"), tagged("a"), logout)},
		{Name: "authenticate external", Config: allAuth, Steps: seq(greet, send("a AUTHENTICATE EXTERNAL\r\n"), lines(1), send(b64("alice")+"\r\n"), tagged("a"), logout)},
		{Name: "authenticate external empty", Config: allAuth, Steps: seq(greet, send("a AUTHENTICATE EXTERNAL\r\n"), lines(1), send("=\r\n"), tagged("a"), closed())},
		{Name: "authenticate external without Auth-Pass", Config: allAuth, Steps: seq(greet, send("a AUTHENTICATE EXTERNAL "+b64("extnopass")+"\r\n"), closed())},
		{Name: "authenticate cram-md5", Config: allAuth, Steps: seq(greet, send("a AUTHENTICATE CRAM-MD5\r\n"), lines(1),
			send(b64("cram "+strings.Repeat("0", 32))+"\r\n"), tagged("a"), logout)},
		{Name: "authenticate cram-md5 wrong digest", Config: allAuth, Steps: seq(greet, send("a AUTHENTICATE CRAM-MD5\r\n"), lines(1),
			send(b64("alice "+strings.Repeat("0", 32))+"\r\n"), closed())},
		{Name: "authenticate cram-md5 errors", Config: allAuth, Steps: seq(greet, send("a AUTHENTICATE CRAM-MD5 x\r\n"), lines(1),
			send("b AUTHENTICATE CRAM-MD5\r\n"), lines(1), send("*\r\n"), lines(1), send("c AUTHENTICATE CRAM-MD5\r\n"), lines(1),
			send(b64("alice 0123")+"\r\n"), lines(1))},

		// STARTTLS.
		{Name: "starttls off", Steps: seq(greet, send("a STARTTLS\r\n"), lines(1))},
		{Name: "starttls on", Config: stOn, Steps: seq(greet, send("a CAPABILITY\r\n"), tagged("a"), send("b STARTTLS\r\n"), lines(1), harness.Close())},
		{Name: "starttls only", Config: stOnly, Steps: seq(greet, send("a CAPABILITY\r\n"), tagged("a"), send("b LOGIN alice secret\r\n"), lines(1),
			send("c AUTHENTICATE PLAIN "+b64("\x00alice\x00secret")+"\r\n"), lines(1), send("d NOOP\r\n"), lines(1), send("e STARTTLS\r\n"), lines(1), harness.Close())},

		{Name: "empty password reaches the upstream", Steps: seq(greet, send("a LOGIN emptypass \"\"\r\n"), lines(1), closed())},
		{Name: "cram-md5 without Auth-Pass", Config: allAuth, Steps: seq(greet, send("a AUTHENTICATE CRAM-MD5\r\n"), lines(1),
			send(b64("cramnopass "+strings.Repeat("0", 32))+"\r\n"), lines(1), closed())},

		// Upstream failures.
		{Name: "upstream refused", Steps: seq(greet, loginFail("a", "deadup", "x"))},
		{Name: "upstream rejects the password", Steps: seq(greet, loginFail("a", "wrongpass", "x"))},
		{Name: "upstream rejects the password, pass_error_message", Config: passErr, Steps: seq(greet, loginFail("a", "wrongpass", "x"))},
		{Name: "upstream PREAUTH greeting", Steps: seq(greet, loginFail("a", "preauth", "x"))},
		{Name: "upstream untagged line before OK", Differ: newerUntag, Steps: seq(greet, send("cap LOGIN untagged x\r\n"), harness.Quiet(500*time.Millisecond))},
		{Name: "upstream untagged line before OK, pass_error_message", Config: passErr, Differ: newerUntag,
			Steps: seq(greet, send("cap LOGIN untagged x\r\n"), harness.Quiet(500*time.Millisecond))},
		{Name: "upstream NO", Steps: seq(greet, loginFail("a", "recfake", "x"))},
		{Name: "upstream NO, pass_error_message", Config: passErr, Steps: seq(greet, loginFail("a", "upno", "x"))},
		{Name: "upstream closes after the LOGIN line", Steps: seq(greet, loginFail("a", "upclose", "x"))},
		{Name: "upstream refuses the literal", Steps: seq(greet, loginFail("a", "nocont", "x"))},
	}
}
