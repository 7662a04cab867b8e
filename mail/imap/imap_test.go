package imap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/mailtest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// The mail{} body of every transcript; %s is the case's extra directives
// for its server block, which override the mail{} level ones.
const mailBody = `
auth_http "{{auth}}";
max_errors 5;
timeout 5s;
imap_auth plain;
proxy_timeout 5s;
server {
	listen 127.0.0.1:143;
	protocol imap;
	%s
}`

// Server block settings of the transcripts.
const (
	allMethods   = "imap_auth plain login cram-md5 external; imap_capabilities IMAP4rev1 SASL-IR ID; max_errors 3;"
	smallBuffer  = "imap_client_buffer 64;"
	starttlsOn   = "starttls on;"
	starttlsOnly = "starttls only;"
)

// tlsStep in a transcript's input: the client reads the STARTTLS answer
// and runs its TLS handshake.
const tlsStep = "<TLS>"

// Auth_http answers, by the name a transcript gives them.
var authAnswers = map[string]string{
	"":         "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 1\r\n\r\n",
	"close":    "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n\r\n",
	"internal": "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n\r\n", // no server: an auth_http error
	"ok":       "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n",
}

// authCall is what an auth_http request asked.
type authCall struct {
	Login, Pass, Method string
	Salt                bool
}

// authCalls reads the auth_http request heads.
func authCalls(heads [][]byte) []authCall {
	var calls []authCall
	for _, h := range heads {
		var c authCall
		c.Method, _ = mailtest.Header(h, "Auth-Method")
		c.Login, _ = mailtest.Header(h, "Auth-User")
		c.Pass, _ = mailtest.Header(h, "Auth-Pass")
		_, c.Salt = mailtest.Header(h, "Auth-Salt")
		calls = append(calls, c)
	}
	return calls
}

// env is one server with its scripted auth_http server and upstream.
type env struct {
	*mailtest.Env
	auth *mailtest.AuthServer
	up   *mailtest.Upstream
}

// start builds the server with extra directives in its server block (and
// a certificate with tls); every auth_http request gets the answer named
// auth; the upstream expects the IMAP login upLines and accepts it.
func start(t testing.TB, extra string, tls bool, auth, upLines string) *env {
	t.Helper()
	e := &env{auth: mailtest.StartAuthServer(t), up: upstreamFor(upLines)}
	if tls {
		cert, key := mailtest.Certificate(t)
		extra += " ssl_certificate " + cert + "; ssl_certificate_key " + key + ";"
	}
	body := strings.ReplaceAll(strings.Replace(mailBody, "%s", extra, 1), "{{auth}}", e.auth.URL())
	e.Env = mailtest.Start(t, mailtest.Config(t, body), mailtest.Options{
		Protocols:    map[string]mail.Protocol{"imap": Protocol{}},
		DialUpstream: e.up.Dial,
	})
	answer, ok := authAnswers[auth]
	if !ok {
		t.Fatalf("bad auth answer %q", auth)
	}
	e.auth.Script([]byte(answer))
	return e
}

// upstreamFor scripts an upstream that expects the lines of an IMAP login
// ("TAG LOGIN {n}", "user {n}", "pass") and accepts it with "TAG OK done";
// it closes after that.
func upstreamFor(lines string) *mailtest.Upstream {
	u := &mailtest.Upstream{Replies: []string{"* OK upstream ready\r\n"}}
	tag, _, _ := strings.Cut(lines, "LOGIN ")
	for _, l := range strings.SplitAfter(lines, "\r\n") {
		switch {
		case l == "":
		case strings.HasSuffix(l, "}\r\n"):
			u.Replies = append(u.Replies, "+ go ahead\r\n")
		default:
			u.Replies = append(u.Replies, tag+"OK done\r\n")
		}
	}
	return u
}

// Transcripts below were checked against nginx 1.22.1 (Debian) unless the
// case says it follows newer nginx.
var transcripts = []struct {
	name    string
	conf    string // extra directives for the server block
	tlsConf bool   // the server has a certificate (STARTTLS possible)
	// auth is the auth_http answer: "" fails with "Invalid login or
	// password" and Auth-Wait (the session goes on), "close" fails
	// without Auth-Wait, "internal" is a broken answer, "ok" lets the
	// client log in upstream.
	auth string
	// in: the client's bytes, written at once; the server reads each
	// piece on its own (tlsStep: the client reads the STARTTLS answer
	// and runs its TLS handshake).
	in     []string
	want   string // all the client receives (salts as <SALT>)
	closed bool
	auths  []authCall
	up     string // what the upstream receives (auth "ok")
}{
	{name: "capability default", in: []string{"a1 CAPABILITY\r\n"},
		want: "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na1 OK completed\r\n"},
	{name: "capability every method", conf: allMethods, in: []string{"a CAPABILITY\r\n"},
		want: "* CAPABILITY IMAP4rev1 SASL-IR ID AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=EXTERNAL\r\na OK completed\r\n"},
	{name: "capability starttls on", conf: starttlsOn, tlsConf: true, in: []string{"a CAPABILITY\r\n"},
		want: "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN STARTTLS\r\na OK completed\r\n"},
	{name: "capability starttls only", conf: starttlsOnly, tlsConf: true, in: []string{"a CAPABILITY\r\n"},
		want: "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS STARTTLS LOGINDISABLED\r\na OK completed\r\n"},
	{name: "capability after starttls", conf: starttlsOn, tlsConf: true,
		in:   []string{"a STARTTLS\r\n", tlsStep, "b CAPABILITY\r\n"},
		want: "a OK completed\r\n* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\nb OK completed\r\n"},
	{name: "case-insensitive verbs", in: []string{"a nOoP\r\n", "b capability\r\n"},
		want: "a OK completed\r\n* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\nb OK completed\r\n"},
	{name: "noop with three arguments, not four", in: []string{"b NOOP x y z\r\n", "b NOOP x y z w\r\n"},
		want: "b OK completed\r\nb BAD invalid command\r\n"},
	{name: "bare LF ends a line", in: []string{"a NOOP\n"}, want: "a OK completed\r\n"},
	{name: "CR not followed by LF", in: []string{"a NOOP\rb\r\n"}, want: "a BAD invalid command\r\n"},
	{name: "empty tag quirk", in: []string{" NOOP\r\n"}, want: " OK completed\r\n"},
	{name: "tagless lines and bad tags", in: []string{"a5\r\n", "\r\n", "a+ NOOP\r\n", "a ID\r\n", "a SELECT INBOX\r\n"},
		want: "* BAD invalid command\r\n* BAD invalid command\r\n* BAD invalid command\r\na BAD invalid command\r\na BAD invalid command\r\n", closed: true},
	{name: "32-character tag", in: []string{strings.Repeat("a", 32) + " NOOP\r\n", strings.Repeat("a", 33) + " NOOP\r\n"},
		want: strings.Repeat("a", 32) + " OK completed\r\n* BAD invalid command\r\n"},
	{name: "spaces before the verb", in: []string{"a    NOOP\r\n"}, want: "a OK completed\r\n"},
	{name: "verb with a digit", in: []string{"a NOOP1\r\n"}, want: "a BAD invalid command\r\n"},
	{name: "max_errors 3", conf: allMethods, in: []string{"a X\r\n", "b X\r\n", "c X\r\n", "d X\r\n"},
		want: "a BAD invalid command\r\nb BAD invalid command\r\nc BAD invalid command\r\n", closed: true},
	{name: "handler errors are not counted", conf: allMethods,
		in:   []string{"a LOGIN\r\n", "b LOGIN\r\n", "c LOGIN\r\n", "d AUTHENTICATE\r\n", "e NOOP\r\n"},
		want: "a BAD invalid command\r\nb BAD invalid command\r\nc BAD invalid command\r\nd BAD invalid command\r\ne OK completed\r\n"},
	{name: "logout", in: []string{"a LOGOUT\r\n", "b NOOP\r\n"}, want: "* BYE\r\na OK completed\r\n", closed: true},
	{name: "pipelined noop logout noop", in: []string{"a NOOP\r\nb LOGOUT\r\nc NOOP\r\n"},
		want: "a OK completed\r\n* BYE\r\nb OK completed\r\n", closed: true},
	{name: "pipelined invalid then noop", in: []string{"a FOO\r\nb NOOP\r\n"},
		want: "a BAD invalid command\r\nb OK completed\r\n"},
	{name: "pipelined login then logout", in: []string{"a LOGIN test secret\r\nb LOGOUT\r\n"},
		want: "a NO Invalid login or password\r\n* BYE\r\nb OK completed\r\n", closed: true,
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain"}}},
	{name: "non-synchronizing literal in an invalid command closes", in: []string{"a FOO {3+}\r\nabc\r\n"},
		want: "a BAD invalid command\r\n", closed: true},
	{name: "non-synchronizing literal without CR", in: []string{"a FOO {3+}\nabc\r\n"},
		want: "a BAD invalid command\r\n", closed: true},
	{name: "pipelined +} line closes", in: []string{"a NOOP\r\n+}\r\nb NOOP\r\n"},
		want: "a OK completed\r\n* BAD invalid command\r\n", closed: true},
	{name: "+} line at the buffer start does not close", in: []string{"a NOOP\r\n", "+}\r\n", "x+}\r\n", "b NOOP\r\n"},
		want: "a OK completed\r\n* BAD invalid command\r\n* BAD invalid command\r\nb OK completed\r\n"},
	{name: "+} line 5 bytes into the buffer closes", in: []string{"xx+}\r\n", "b NOOP\r\n"},
		want: "* BAD invalid command\r\n", closed: true},
	{name: "synchronizing literal in an invalid command", in: []string{"a FOO {3}\r\n", "abc\r\n"},
		want: "a BAD invalid command\r\n* BAD invalid command\r\n"},
	{name: "starttls off", in: []string{"h STARTTLS\r\n"}, want: "h BAD invalid command\r\n"},
	{name: "starttls twice", conf: starttlsOn, tlsConf: true, in: []string{"a STARTTLS\r\n", tlsStep, "b STARTTLS\r\n"},
		want: "a OK completed\r\nb BAD invalid command\r\n"},
	{name: "starttls drops pipelined plain text", conf: starttlsOn, tlsConf: true, in: []string{"a STARTTLS\r\nb NOOP\r\n", tlsStep, "c NOOP\r\n"},
		want: "a OK completed\r\nc OK completed\r\n"},
	{name: "starttls only refuses login and authenticate", conf: starttlsOnly, tlsConf: true,
		in:   []string{"a LOGIN test secret\r\n", "b AUTHENTICATE PLAIN\r\n", "c NOOP\r\n"},
		want: "a BAD invalid command\r\nb BAD invalid command\r\nc OK completed\r\n"},
	{name: "starttls only, login after TLS", conf: starttlsOnly, tlsConf: true,
		in:    []string{"a STARTTLS\r\n", tlsStep, "b LOGIN test secret\r\n"},
		want:  "a OK completed\r\nb NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain"}}},

	// LOGIN and argument syntax.
	{name: "login", in: []string{"a1 LOGIN test bad\r\n"}, want: "a1 NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain"}}},
	{name: "login without wait closes", auth: "close", in: []string{"a1 LOGIN test bad\r\n", "a2 NOOP\r\n"},
		want: "a1 NO Invalid login or password\r\n", closed: true,
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain"}}},
	{name: "login internal error", auth: "internal", in: []string{"a1 LOGIN test bad\r\n"},
		want: "* BAD internal server error\r\n", closed: true,
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain"}}},
	{name: "login argument counts", in: []string{"a LOGIN x\r\n", "b LOGIN x y z\r\n", "c LOGIN \"\" x\r\n"},
		want: "a BAD invalid command\r\nb BAD invalid command\r\nc BAD invalid command\r\n"},
	{name: "login empty password", in: []string{"a LOGIN x \"\"\r\n"}, want: "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "", Method: "plain"}}},
	{name: "quoted strings with escapes", in: []string{`a LOGIN "us\"er" "p a\\ss"` + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: `us"er`, Pass: `p a\ss`, Method: "plain"}}},
	{name: "quote ends an argument without a space", in: []string{`a LOGIN "x"y` + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "y", Method: "plain"}}},
	{name: "quote and backslash inside an atom are plain", in: []string{`a LOGIN u\s"er p` + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: `u\s"er`, Pass: "p", Method: "plain"}}},
	{name: "backslash before CR is invalid", in: []string{"a LOGIN \"x\\\r\n", "b NOOP\r\n"},
		want: "a BAD invalid command\r\nb OK completed\r\n"},
	{name: "unterminated quote quirk", in: []string{"a LOGIN \"x y\r\n", "b LOGIN x y\r\n", "c NOOP\r\n", "d LOGIN x\"y\r\n"},
		want:  "a BAD invalid command\r\nb BAD invalid command\r\nc OK completed\r\nd NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "y", Method: "plain"}}},
	{name: "invalid command clears the quoted flag", in: []string{"a LOGIN \"x y\r\n", "b FOO\r\n", "c LOGIN x y\r\n"},
		want:  "a BAD invalid command\r\nb BAD invalid command\r\nc NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "y", Method: "plain"}}},
	{name: "synchronizing literals", in: []string{"a LOGIN {4}\r\n", "test {6}\r\n", "se\\c\"t\r\n"},
		want:  "+ OK\r\n+ OK\r\na NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: `se\c"t`, Method: "plain"}}},
	{name: "literal byte by byte gets one + OK", in: strings.Split("a LOGIN {4}\r\nte\r\n {2}\r\n\r\n\r\n", ""),
		want:  "+ OK\r\n+ OK\r\na NO Invalid login or password\r\n",
		auths: []authCall{{Login: "te\r\n", Pass: "\r\n", Method: "plain"}}},
	{name: "non-synchronizing literals", in: []string{"a LOGIN {4+}\r\ntest {6+}\nsecret\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain"}}},
	{name: "literal {0} quirk", in: []string{"a LOGIN {0}\r\n", "x pass\r\n"},
		want:  "+ OK\r\na NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "pass", Method: "plain"}}},
	{name: "newer nginx: byte after a literal must be SP CR LF", in: []string{"a LOGIN {4}\r\n", "userX pass\r\n", "b NOOP\r\n"},
		want: "+ OK\r\na BAD invalid command\r\nb OK completed\r\n"},
	{name: "newer nginx: literal right after a literal", in: []string{"a LOGIN {4}\r\n", "user{4}\r\n", "pass\r\n"},
		want: "+ OK\r\na BAD invalid command\r\n* BAD invalid command\r\n"},
	{name: "literal length overflow", in: []string{"a LOGIN {99999999999999999999}\r\n"},
		want: "a BAD invalid command\r\n"},
	{name: "bad literal syntax", in: []string{"a LOGIN {4x}\r\n", "b LOGIN {4+x}\r\n", "c LOGIN {4}x\r\n"},
		want: "a BAD invalid command\r\nb BAD invalid command\r\nc BAD invalid command\r\n"},
	{name: "fourth argument as a literal", in: []string{"a NOOP x y z {1}\r\n"}, want: "a BAD invalid command\r\n"},

	// Buffer limits.
	{name: "64-byte line fits a 64-byte buffer", conf: smallBuffer, in: []string{"a LOGIN " + strings.Repeat("x", 54) + "\r\n"},
		want: "a BAD invalid command\r\n"},
	{name: "65-byte line is too long", conf: smallBuffer, in: []string{"a LOGIN " + strings.Repeat("x", 55) + "\r\n"},
		want: "a BAD invalid command\r\n", closed: true},
	{name: "too long without a tag", conf: smallBuffer, in: []string{strings.Repeat("x", 77) + "\r\n"},
		want: "* BAD invalid command\r\n", closed: true},
	{name: "literal larger than the buffer", conf: smallBuffer, in: []string{"a LOGIN {100}\r\n", strings.Repeat("x", 98) + "\r\n"},
		want: "+ OK\r\na BAD invalid command\r\n", closed: true},
	// A length of 2^64-1 once wrapped the literal's end around to before
	// its start and panicked the process (issue 9).
	{name: "literal length 2^64-1", conf: smallBuffer, in: []string{"a1 LOGIN {18446744073709551615}\r\n", strings.Repeat("x", 40)},
		want: "+ OK\r\na1 BAD invalid command\r\n", closed: true},
	{name: "literal length 2^64-2 then bytes", conf: smallBuffer, in: []string{"a1 LOGIN {18446744073709551614}\r\n", strings.Repeat("x", 10), strings.Repeat("y", 30)},
		want: "+ OK\r\na1 BAD invalid command\r\n", closed: true},
	{name: "invalid line longer than the buffer", conf: smallBuffer, in: []string{"a FOO " + strings.Repeat("x", 70) + "\r\n"},
		want: "a BAD invalid command\r\n", closed: true},

	// AUTHENTICATE.
	{name: "authenticate plain initial response", in: []string{"a AUTHENTICATE PLAIN " + b64("\x00test\x00bad") + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain"}}},
	{name: "authenticate plain", in: []string{"a AUTHENTICATE plain\r\n", b64("authz\x00test\x00secret") + "\r\n", "b NOOP\r\n"},
		want:  "+ \r\na NO Invalid login or password\r\nb OK completed\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain"}}},
	{name: "authenticate plain errors", in: []string{"a AUTHENTICATE PLAIN\r\n", "\r\n", "b AUTHENTICATE PLAIN\r\n", "*\r\n", "c AUTHENTICATE PLAIN " + b64("x") + "\r\n", "d AUTHENTICATE PLAIN a b\r\n"},
		want: "+ \r\na BAD invalid command\r\n+ \r\nb BAD invalid command\r\nc BAD invalid command\r\nd BAD invalid command\r\n"},
	{name: "authenticate plain continuation with four arguments is a parse error", conf: allMethods,
		in:   []string{"c AUTHENTICATE PLAIN\r\n", "AHRlc3QAYmFk a b c\r\n", "d NOOP\r\n"},
		want: "+ \r\nc BAD invalid command\r\nd OK completed\r\n"},
	{name: "authenticate login", in: []string{"a1 AUTHENTICATE LOGIN\r\n", b64("test") + "\r\n", b64("secret") + "\r\n"},
		want:  "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na1 NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain"}}},
	{name: "authenticate login with username", in: []string{"i AUTHENTICATE login " + b64("test") + "\r\n", b64("secret") + "\r\n"},
		want:  "+ UGFzc3dvcmQ6\r\ni NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain"}}},
	{name: "authenticate login empty username", in: []string{"a1 AUTHENTICATE LOGIN\r\n", "\r\n", "a2 AUTHENTICATE LOGIN\r\n"},
		want: "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na1 NO Invalid login or password\r\n",
		// The password line is "a2 AUTHENTICATE LOGIN": only its first
		// argument counts, and "a2" is base64 for "k".
		auths: []authCall{{Login: "", Pass: "k", Method: "plain"}}},
	{name: "authenticate login username bad base64 quirk", in: []string{"a2 AUTHENTICATE LOGIN\r\n", "!!!\r\n", "b NOOP\r\n"},
		want: "+ VXNlcm5hbWU6\r\nBAD invalid command\r\nb OK completed\r\n"},
	{name: "authenticate login password bad base64", in: []string{"a2 AUTHENTICATE LOGIN\r\n", b64("u") + "\r\n", "!!!\r\n"},
		want: "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na2 BAD invalid command\r\n"},
	{name: "authenticate login bad initial response", in: []string{"b AUTHENTICATE LOGIN !!\r\n", "f AUTHENTICATE LOGIN a b\r\n"},
		want: "b BAD invalid command\r\nf BAD invalid command\r\n"},
	{name: "authenticate unknown or disabled", in: []string{"b AUTHENTICATE EXTERNAL\r\n", "c AUTHENTICATE CRAM-MD5\r\n", "d AUTHENTICATE FOO\r\n", "e AUTHENTICATE\r\n", "g AUTHENTICATE PLAIN a b\r\n"},
		want: "b BAD invalid command\r\nc BAD invalid command\r\nd BAD invalid command\r\ne BAD invalid command\r\ng BAD invalid command\r\n"},
	{name: "authenticate external initial response skips the method check", in: []string{"a AUTHENTICATE EXTERNAL " + b64("test") + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "", Method: "external"}}},
	{name: "authenticate external", conf: allMethods, in: []string{"c AUTHENTICATE EXTERNAL\r\n", "=\r\n"},
		want:  "+ VXNlcm5hbWU6\r\nc NO Invalid login or password\r\n",
		auths: []authCall{{Login: "", Pass: "", Method: "external"}}},
	{name: "authenticate cram-md5 with an initial response", conf: allMethods, in: []string{"c AUTHENTICATE CRAM-MD5 x\r\n"},
		want: "c BAD invalid command\r\n"},
	{name: "authenticate cram-md5 cancelled", conf: allMethods, in: []string{"c AUTHENTICATE CRAM-MD5\r\n", "*\r\n"},
		want: "+ <SALT>\r\nc BAD invalid command\r\n"},
	{name: "authenticate cram-md5", conf: allMethods,
		in:    []string{"c AUTHENTICATE CRAM-MD5\r\n", b64("test "+strings.Repeat("0", 32)) + "\r\n"},
		want:  "+ <SALT>\r\nc NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: strings.Repeat("0", 32), Method: "cram-md5", Salt: true}}},
	{name: "authenticate pipelined with its response", in: []string{"a AUTHENTICATE PLAIN\r\n" + b64("\x00u\x00p") + "\r\nb NOOP\r\n"},
		want:  "+ \r\na NO Invalid login or password\r\nb OK completed\r\n",
		auths: []authCall{{Login: "u", Pass: "p", Method: "plain"}}},
	{name: "an authenticate exchange shares one buffer", conf: smallBuffer,
		in:   []string{"a AUTHENTICATE LOGIN\r\n", "YWxpY2VhbGljZWFsaWNlYWxpY2U=\r\n", "c2VjcmV0c2VjcmV0\r\n"},
		want: "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na BAD invalid command\r\n", closed: true},
	{name: "the buffer is rewound after an authenticate exchange", conf: smallBuffer,
		in:    []string{"a AUTHENTICATE PLAIN\r\n", b64("\x00u\x00p") + "\r\n", "b NOOP " + strings.Repeat("x", 54) + "\r\n"},
		want:  "+ \r\na NO Invalid login or password\r\nb OK completed\r\n",
		auths: []authCall{{Login: "u", Pass: "p", Method: "plain"}}},
	{name: "too long continuation keeps the authenticate tag", conf: smallBuffer,
		in:   []string{"a AUTHENTICATE PLAIN\r\n", strings.Repeat("A", 70)},
		want: "+ \r\na BAD invalid command\r\n", closed: true},
	{name: "tag after a failed auth with wait", in: []string{"a1 LOGIN test bad\r\n", "\r\n"},
		// nginx 1.22.1 sends the bytes now at its buffer's start as the
		// stale tag here; mailgate answers as for any tagless line.
		want:  "a1 NO Invalid login or password\r\n* BAD invalid command\r\n",
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain"}}},

	// Logins: the upstream LOGIN carries the client's tag.
	{name: "login relays", auth: "ok", in: []string{"a1 LOGIN test secret\r\n"},
		want: "a1 OK done\r\n", up: "a1 LOGIN {4}\r\ntest {6}\r\nsecret\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain"}}},
	{name: "authenticate plain relays", auth: "ok", in: []string{"x.2 AUTHENTICATE PLAIN\r\n", b64("\x00u\x00p a") + "\r\n"},
		want: "+ \r\nx.2 OK done\r\n", up: "x.2 LOGIN {1}\r\nu {3}\r\np a\r\n",
		auths: []authCall{{Login: "u", Pass: "p a", Method: "plain"}}},
}

func TestTranscripts(t *testing.T) {
	for _, tc := range transcripts {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each case has its own server; most of the time is End waiting
			e := start(t, tc.conf, tc.tlsConf, tc.auth, tc.up)
			var cuts []int
			plain, rest := tc.in, []string(nil)
			for i, p := range tc.in {
				if p == tlsStep {
					plain, rest = tc.in[:i], tc.in[i+1:]
					break
				}
				cuts = append(cuts, len(p))
			}
			c := e.DialCut(t, 0, cuts...)
			if g := c.ReadN(len(greeting), 5*time.Second); g != greeting {
				t.Fatalf("greeting %q", g)
			}
			c.Send(strings.Join(plain, "")) //nolint:errcheck
			var got string
			if rest != nil {
				// Every reply up to the STARTTLS answer.
				for !strings.HasSuffix(got, " OK completed\r\n") {
					l := c.ReadLine(5 * time.Second)
					if l == "" {
						t.Fatalf("no STARTTLS answer in %q", got)
					}
					got += l
				}
				if err := c.StartTLS(); err != nil {
					t.Fatalf("handshake: %v", err)
				}
				c.Send(strings.Join(rest, "")) //nolint:errcheck
			}
			// Whole lines, as many as the answer has (a salt's length varies).
			for len(mailtest.NormalizeSalts(got)) < len(tc.want) {
				l := c.ReadLine(5 * time.Second)
				if l == "" {
					break
				}
				got += l
			}
			if got = mailtest.NormalizeSalts(got); got != tc.want {
				t.Errorf("replies\n got %q\nwant %q", got, tc.want)
			}
			// A logged-in session ends when the upstream closes.
			if msg := c.End(tc.closed || tc.up != ""); msg != "" {
				t.Error(msg)
			}
			if calls := authCalls(e.auth.Requests()); len(calls) != len(tc.auths) || (len(tc.auths) > 0 && !reflect.DeepEqual(calls, tc.auths)) {
				t.Errorf("auth calls\n got %+v\nwant %+v", calls, tc.auths)
			}
			e.up.Wait()
			if got := e.up.Received(0); got != tc.up {
				t.Errorf("upstream got %q, want %q", got, tc.up)
			}
		})
	}
}

// The CRAM-MD5 challenge of a session is the same each time.
func TestCRAMMD5SaltIsKept(t *testing.T) {
	e := start(t, allMethods, false, "", "")
	c := e.Dial(t, mailtest.Unix, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a AUTHENTICATE CRAM-MD5\r\n") //nolint:errcheck
	first := c.ReadLine(5 * time.Second)
	if !strings.HasPrefix(first, "+ ") || !strings.HasSuffix(first, "\r\n") {
		t.Fatalf("challenge %q", first)
	}
	salt, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(first[2:], "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(salt), "<") || !strings.HasSuffix(string(salt), "@mx.example.test>") {
		t.Fatalf("salt %q", salt)
	}
	c.Send("*\r\n") //nolint:errcheck
	if l := c.ReadLine(5 * time.Second); l != "a BAD invalid command\r\n" {
		t.Fatalf("cancel: %q", l)
	}
	c.Send("b AUTHENTICATE CRAM-MD5\r\n") //nolint:errcheck
	if got := c.ReadLine(5 * time.Second); got != first {
		t.Errorf("second challenge %q, want the first %q", got, first)
	}
}

// The upstream LOGIN carries the client's tag.
func TestFillLoginTag(t *testing.T) {
	e := start(t, "", false, "ok", "tag.1 LOGIN {1}\r\nu {1}\r\np\r\n")
	c := e.Dial(t, mailtest.Unix, 0)
	c.ReadLine(5 * time.Second)
	c.Send("tag.1 LOGIN u p\r\n") //nolint:errcheck
	if got := c.ReadAll(5 * time.Second); got != "tag.1 OK done\r\n" {
		t.Errorf("client got %q", got)
	}
	e.up.Wait()
	if got := e.up.Received(0); got != "tag.1 LOGIN {1}\r\nu {1}\r\np\r\n" {
		t.Errorf("upstream got %q", got)
	}
}

// defaultConf is a server block for handler unit tests.
func defaultConf() *confparse.Server {
	return &confparse.Server{
		Protocol: confparse.ProtoIMAP,
		Core:     confparse.CoreConf{MaxErrors: 5, ServerName: "mx.example.test"},
		// What confparse's defaults give a server without imap_* lines.
		IMAP: confparse.IMAPConf{Auth: confparse.AuthPlain, ClientBuffer: 4096, Capabilities: []string{"IMAP4", "IMAP4rev1", "UIDPLUS"}},
	}
}

// newHandler is a handler alone, for unit tests; its replies go to out.
func newHandler(t testing.TB, conf *confparse.Server, out io.Writer) (*handler, *mail.Session) {
	t.Helper()
	if conf == nil {
		conf = defaultConf()
	}
	s := mail.NewTestSession(conf, out)
	h := Protocol{}.NewHandler(s).(*handler)
	if err := h.Greet(); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	return h, s
}

func TestProtocol(t *testing.T) {
	p := Protocol{}
	if p.Name() != "imap" {
		t.Errorf("Name %q", p.Name())
	}
	small := defaultConf()
	small.IMAP.ClientBuffer = 64
	if got := p.ClientBuffer(small); got != 64 {
		t.Errorf("ClientBuffer %d", got)
	}
	if got := p.ClientBuffer(&confparse.Server{}); got != DefaultClientBuffer {
		t.Errorf("default ClientBuffer %d", got)
	}
	h, _ := newHandler(t, nil, io.Discard)
	if got := string(h.InternalError()); got != "* BAD internal server error\r\n" {
		t.Errorf("InternalError %q", got)
	}
	if got := string(h.AuthFailed("Temporary failure", "451 4.3.0")); got != "* NO Temporary failure\r\n" {
		t.Errorf("AuthFailed without a tag %q", got)
	}
}

// TestCapabilitiesPreparedPerServer: the CAPABILITY lines are rendered
// once per server block (mail.Preparer) and every session of that server
// uses that rendering.
func TestCapabilitiesPreparedPerServer(t *testing.T) {
	a, b := defaultConf(), defaultConf()
	b.IMAP.Capabilities = []string{"X"}
	pa := Protocol{}.Prepare(a).(*capabilities)
	for i := 0; i < 2; i++ {
		s := mail.NewTestSession(a, io.Discard)
		s.Prepared = pa
		h := Protocol{}.NewHandler(s).(*handler)
		if h.caps != pa {
			t.Fatal("a session does not use its server's prepared capabilities")
		}
	}
	c := defaultConf()
	c.IMAP.Capabilities = []string{"X", ""}
	if bytes.Equal(capabilitiesFor(b).plain, capabilitiesFor(c).plain) {
		t.Error("different lists render alike")
	}
	if got := string(capabilitiesFor(b).plain); got != "* CAPABILITY X AUTH=PLAIN\r\n" {
		t.Errorf("b: %q", got)
	}
	if got := string(capabilitiesFor(a).plain); got != "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n" {
		t.Errorf("a: %q", got)
	}
}

// TestParseIsRepeatable runs a pipeline through the engine in one read
// and a byte per read, and checks that the replies (the "+ OK" lines
// included) and the auth_http requests come out the same.
func TestParseIsRepeatable(t *testing.T) {
	in := "a LOGIN {3}\r\nabc \"d e\"\r\nb NOOP\r\nc FOO {2+}\r\nxy\r\n"
	run := func(cuts ...int) (string, []authCall) {
		e := start(t, "", false, "", "")
		c := e.DialCut(t, 0, cuts...)
		c.Send(in) //nolint:errcheck
		out := c.ReadAll(5 * time.Second)
		// The {2+} literal of an invalid command closes the session.
		if msg := c.End(true); msg != "" {
			t.Error(msg)
		}
		return out, authCalls(e.auth.Requests())
	}
	wholeOut, wholeAuths := run(len(in))
	ones := make([]int, len(in))
	for i := range ones {
		ones[i] = 1
	}
	splitOut, splitAuths := run(ones...)
	if want := greeting + "+ OK\r\na NO Invalid login or password\r\nb OK completed\r\nc BAD invalid command\r\n"; wholeOut != want {
		t.Errorf("whole %q, want %q", wholeOut, want)
	}
	if wholeOut != splitOut {
		t.Errorf("whole %q\nsplit %q", wholeOut, splitOut)
	}
	if want := []authCall{{Login: "abc", Pass: "d e", Method: "plain"}}; !reflect.DeepEqual(wholeAuths, want) || !reflect.DeepEqual(splitAuths, want) {
		t.Errorf("auths %+v vs %+v", wholeAuths, splitAuths)
	}
}

// TestParseResumes offers the parser a long command a byte more at a
// time, as the engine does while a slow client sends it, and checks the
// parser resumes where it stopped instead of starting over (linear work,
// not quadratic), with the same result as a single pass.
func TestParseResumes(t *testing.T) {
	conf := defaultConf()
	conf.IMAP.ClientBuffer = 1 << 16
	out := &bytes.Buffer{}
	h, s := newHandler(t, conf, out)
	out.Reset()
	line := "a LOGIN \"" + strings.Repeat("x y", 10000) + "\" {3}\r\nabc\r\n"
	var scanned int
	var cmd mail.Command
	for i := 1; i <= len(line); i++ {
		c, n, err := h.Parse([]byte(line[:i]))
		if h.pass != nil {
			scanned = h.pass.scanned
		}
		if errors.Is(err, mail.ErrNeedMore) {
			continue
		}
		if err != nil || n != len(line) || i != len(line) {
			t.Fatalf("Parse of %d bytes: n %d, err %v", i, n, err)
		}
		cmd = c
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "+ OK\r\n" {
		t.Fatalf("replies %q, want one + OK", out.String())
	}
	next, err := h.Exec(cmd)
	if err != nil || next != mail.Authenticate {
		t.Fatalf("Exec: %v %v", next, err)
	}
	if string(s.Login) != strings.Repeat("x y", 10000) || string(s.Passwd) != "abc" {
		t.Fatalf("login %.20q pass %q", s.Login, s.Passwd)
	}
	if scanned > len(line) {
		t.Errorf("scanned %d bytes for a %d-byte command", scanned, len(line))
	}
}

var _ mail.Handler = (*handler)(nil)

// STARTTLS on a server without a certificate is refused. nginx refuses such
// a configuration ("no ssl_certificate is defined for the starttls
// directive"), so only the handler alone can be asked.
func TestStartTLSWithoutCertificate(t *testing.T) {
	conf := defaultConf()
	conf.SSL.StartTLS = confparse.StartTLSOn
	h, _ := newHandler(t, conf, io.Discard)
	cmd, n, err := h.Parse([]byte("h STARTTLS\r\n"))
	if err != nil || n != 12 {
		t.Fatalf("Parse: %d %v", n, err)
	}
	next, err := h.Exec(cmd)
	if !errors.Is(err, mail.ErrRejected) {
		t.Fatalf("Exec: %v %v, want a refusal", next, err)
	}
	if got := string(h.ErrorReply(err)); got != "h BAD invalid command\r\n" {
		t.Errorf("reply %q", got)
	}
}
