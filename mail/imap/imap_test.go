package imap

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"reflect"
	"strings"
	"testing"

	"mailgate/confparse"
	"mailgate/mail"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func withConf(f func(c *confparse.Server)) *confparse.Server {
	c := defaultConf()
	f(c)
	return c
}

var allMethods = withConf(func(c *confparse.Server) {
	c.IMAP.Auth = confparse.AuthPlain | confparse.AuthLogin | confparse.AuthCRAMMD5 | confparse.AuthExternal
	c.IMAP.Capabilities = []string{"IMAP4rev1", "SASL-IR", "ID"}
	c.Core.MaxErrors = 3
})

var smallBuffer = withConf(func(c *confparse.Server) { c.IMAP.ClientBuffer = 64 })

var starttlsOn = withConf(func(c *confparse.Server) { c.SSL.StartTLS = confparse.StartTLSOn })

var starttlsOnly = withConf(func(c *confparse.Server) { c.SSL.StartTLS = confparse.StartTLSOnly })

// Transcripts below were checked against nginx 1.22.1 (Debian) unless the
// case says it follows newer nginx.
var transcripts = []struct {
	name    string
	conf    *confparse.Server
	tlsConf bool   // the server has a certificate (STARTTLS possible)
	auth    string // driver.auth
	in      []string
	want    string
	closed  bool
	auths   []authCall
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
		in:   []string{"a STARTTLS\r\n", "b CAPABILITY\r\n"},
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
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain", Tag: "a "}}},
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
	{name: "starttls on without a certificate", conf: starttlsOn, in: []string{"h STARTTLS\r\n"}, want: "h BAD invalid command\r\n"},
	{name: "starttls twice", conf: starttlsOn, tlsConf: true, in: []string{"a STARTTLS\r\n", "b STARTTLS\r\n"},
		want: "a OK completed\r\nb BAD invalid command\r\n"},
	{name: "starttls drops pipelined plain text", conf: starttlsOn, tlsConf: true, in: []string{"a STARTTLS\r\nb NOOP\r\n", "c NOOP\r\n"},
		want: "a OK completed\r\nc OK completed\r\n"},
	{name: "starttls only refuses login and authenticate", conf: starttlsOnly, tlsConf: true,
		in:   []string{"a LOGIN test secret\r\n", "b AUTHENTICATE PLAIN\r\n", "c NOOP\r\n"},
		want: "a BAD invalid command\r\nb BAD invalid command\r\nc OK completed\r\n"},
	{name: "starttls only, login after TLS", conf: starttlsOnly, tlsConf: true,
		in:    []string{"a STARTTLS\r\n", "b LOGIN test secret\r\n"},
		want:  "a OK completed\r\nb NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain", Tag: "b "}}},

	// LOGIN and argument syntax.
	{name: "login", in: []string{"a1 LOGIN test bad\r\n"}, want: "a1 NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain", Tag: "a1 "}}},
	{name: "login without wait closes", auth: "close", in: []string{"a1 LOGIN test bad\r\n", "a2 NOOP\r\n"},
		want: "a1 NO Invalid login or password\r\n", closed: true,
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain", Tag: "a1 "}}},
	{name: "login internal error", auth: "internal", in: []string{"a1 LOGIN test bad\r\n"},
		want: "* BAD internal server error\r\n", closed: true,
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain", Tag: "a1 "}}},
	{name: "login argument counts", in: []string{"a LOGIN x\r\n", "b LOGIN x y z\r\n", "c LOGIN \"\" x\r\n"},
		want: "a BAD invalid command\r\nb BAD invalid command\r\nc BAD invalid command\r\n"},
	{name: "login empty password", in: []string{"a LOGIN x \"\"\r\n"}, want: "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "", Method: "plain", Tag: "a "}}},
	{name: "quoted strings with escapes", in: []string{`a LOGIN "us\"er" "p a\\ss"` + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: `us"er`, Pass: `p a\ss`, Method: "plain", Tag: "a "}}},
	{name: "quote ends an argument without a space", in: []string{`a LOGIN "x"y` + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "y", Method: "plain", Tag: "a "}}},
	{name: "quote and backslash inside an atom are plain", in: []string{`a LOGIN u\s"er p` + "\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: `u\s"er`, Pass: "p", Method: "plain", Tag: "a "}}},
	{name: "backslash before CR is invalid", in: []string{"a LOGIN \"x\\\r\n", "b NOOP\r\n"},
		want: "a BAD invalid command\r\nb OK completed\r\n"},
	{name: "unterminated quote quirk", in: []string{"a LOGIN \"x y\r\n", "b LOGIN x y\r\n", "c NOOP\r\n", "d LOGIN x\"y\r\n"},
		want:  "a BAD invalid command\r\nb BAD invalid command\r\nc OK completed\r\nd NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "y", Method: "plain", Tag: "d "}}},
	{name: "invalid command clears the quoted flag", in: []string{"a LOGIN \"x y\r\n", "b FOO\r\n", "c LOGIN x y\r\n"},
		want:  "a BAD invalid command\r\nb BAD invalid command\r\nc NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "y", Method: "plain", Tag: "c "}}},
	{name: "synchronizing literals", in: []string{"a LOGIN {4}\r\n", "test {6}\r\n", "se\\c\"t\r\n"},
		want:  "+ OK\r\n+ OK\r\na NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: `se\c"t`, Method: "plain", Tag: "a "}}},
	{name: "literal byte by byte gets one + OK", in: strings.Split("a LOGIN {4}\r\nte\r\n {2}\r\n\r\n\r\n", ""),
		want:  "+ OK\r\n+ OK\r\na NO Invalid login or password\r\n",
		auths: []authCall{{Login: "te\r\n", Pass: "\r\n", Method: "plain", Tag: "a "}}},
	{name: "non-synchronizing literals", in: []string{"a LOGIN {4+}\r\ntest {6+}\nsecret\r\n"},
		want:  "a NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain", Tag: "a "}}},
	{name: "literal {0} quirk", in: []string{"a LOGIN {0}\r\n", "x pass\r\n"},
		want:  "+ OK\r\na NO Invalid login or password\r\n",
		auths: []authCall{{Login: "x", Pass: "pass", Method: "plain", Tag: "a "}}},
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
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain", Tag: "a "}}},
	{name: "authenticate plain", in: []string{"a AUTHENTICATE plain\r\n", b64("authz\x00test\x00secret") + "\r\n", "b NOOP\r\n"},
		want:  "+ \r\na NO Invalid login or password\r\nb OK completed\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain", Tag: "a "}}},
	{name: "authenticate plain errors", in: []string{"a AUTHENTICATE PLAIN\r\n", "\r\n", "b AUTHENTICATE PLAIN\r\n", "*\r\n", "c AUTHENTICATE PLAIN " + b64("x") + "\r\n", "d AUTHENTICATE PLAIN a b\r\n"},
		want: "+ \r\na BAD invalid command\r\n+ \r\nb BAD invalid command\r\nc BAD invalid command\r\nd BAD invalid command\r\n"},
	{name: "authenticate plain continuation with four arguments is a parse error", conf: allMethods,
		in:   []string{"c AUTHENTICATE PLAIN\r\n", "AHRlc3QAYmFk a b c\r\n", "d NOOP\r\n"},
		want: "+ \r\nc BAD invalid command\r\nd OK completed\r\n"},
	{name: "authenticate login", in: []string{"a1 AUTHENTICATE LOGIN\r\n", b64("test") + "\r\n", b64("secret") + "\r\n"},
		want:  "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na1 NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain", Tag: "a1 "}}},
	{name: "authenticate login with username", in: []string{"i AUTHENTICATE login " + b64("test") + "\r\n", b64("secret") + "\r\n"},
		want:  "+ UGFzc3dvcmQ6\r\ni NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: "secret", Method: "plain", Tag: "i "}}},
	{name: "authenticate login empty username", in: []string{"a1 AUTHENTICATE LOGIN\r\n", "\r\n", "a2 AUTHENTICATE LOGIN\r\n"},
		want: "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na1 NO Invalid login or password\r\n",
		// The password line is "a2 AUTHENTICATE LOGIN": only its first
		// argument counts, and "a2" is base64 for "k".
		auths: []authCall{{Login: "", Pass: "k", Method: "plain", Tag: "a1 "}}},
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
		auths: []authCall{{Login: "test", Pass: "", Method: "external", Tag: "a "}}},
	{name: "authenticate external", conf: allMethods, in: []string{"c AUTHENTICATE EXTERNAL\r\n", "=\r\n"},
		want:  "+ VXNlcm5hbWU6\r\nc NO Invalid login or password\r\n",
		auths: []authCall{{Login: "", Pass: "", Method: "external", Tag: "c "}}},
	{name: "authenticate cram-md5 with an initial response", conf: allMethods, in: []string{"c AUTHENTICATE CRAM-MD5 x\r\n"},
		want: "c BAD invalid command\r\n"},
	{name: "authenticate cram-md5 cancelled", conf: allMethods, in: []string{"c AUTHENTICATE CRAM-MD5\r\n", "*\r\n"},
		want: "+ <salt>\r\nc BAD invalid command\r\n"},
	{name: "authenticate cram-md5", conf: allMethods,
		in:    []string{"c AUTHENTICATE CRAM-MD5\r\n", b64("test "+strings.Repeat("0", 32)) + "\r\n"},
		want:  "+ <salt>\r\nc NO Invalid login or password\r\n",
		auths: []authCall{{Login: "test", Pass: strings.Repeat("0", 32), Method: "cram-md5", Tag: "c ", Salt: true}}},
	{name: "authenticate pipelined with its response", in: []string{"a AUTHENTICATE PLAIN\r\n" + b64("\x00u\x00p") + "\r\nb NOOP\r\n"},
		want:  "+ \r\na NO Invalid login or password\r\nb OK completed\r\n",
		auths: []authCall{{Login: "u", Pass: "p", Method: "plain", Tag: "a "}}},
	{name: "an authenticate exchange shares one buffer", conf: smallBuffer,
		in:   []string{"a AUTHENTICATE LOGIN\r\n", "YWxpY2VhbGljZWFsaWNlYWxpY2U=\r\n", "c2VjcmV0c2VjcmV0\r\n"},
		want: "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na BAD invalid command\r\n", closed: true},
	{name: "the buffer is rewound after an authenticate exchange", conf: smallBuffer,
		in:    []string{"a AUTHENTICATE PLAIN\r\n", b64("\x00u\x00p") + "\r\n", "b NOOP " + strings.Repeat("x", 54) + "\r\n"},
		want:  "+ \r\na NO Invalid login or password\r\nb OK completed\r\n",
		auths: []authCall{{Login: "u", Pass: "p", Method: "plain", Tag: "a "}}},
	{name: "too long continuation keeps the authenticate tag", conf: smallBuffer,
		in:   []string{"a AUTHENTICATE PLAIN\r\n", strings.Repeat("A", 70)},
		want: "+ \r\na BAD invalid command\r\n", closed: true},
	{name: "tag after a failed auth with wait", in: []string{"a1 LOGIN test bad\r\n", "\r\n"},
		// nginx 1.22.1 sends the bytes now at its buffer's start as the
		// stale tag here; mailgate answers as for any tagless line.
		want:  "a1 NO Invalid login or password\r\n* BAD invalid command\r\n",
		auths: []authCall{{Login: "test", Pass: "bad", Method: "plain", Tag: "a1 "}}},
}

func TestTranscripts(t *testing.T) {
	for _, tc := range transcripts {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, tc.conf)
			if tc.tlsConf {
				d.s.TLSConfig = &tls.Config{}
			}
			d.auth = tc.auth
			for _, p := range tc.in {
				d.feed(p)
			}
			got := d.out.String()
			want := tc.want
			if strings.Contains(want, "<salt>") {
				want = strings.Replace(want, "<salt>", b64(string(d.s.Salt)), 1)
			}
			if got != want {
				t.Errorf("replies\n got %q\nwant %q", got, want)
			}
			if d.closed != tc.closed {
				t.Errorf("closed = %v, want %v", d.closed, tc.closed)
			}
			if len(d.auths) != len(tc.auths) || (len(tc.auths) > 0 && !reflect.DeepEqual(d.auths, tc.auths)) {
				t.Errorf("auth calls\n got %+v\nwant %+v", d.auths, tc.auths)
			}
		})
	}
}

func TestCRAMMD5SaltIsKept(t *testing.T) {
	d := newDriver(t, allMethods)
	d.feed("a AUTHENTICATE CRAM-MD5\r\n")
	first := d.out.String()
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
	d.feed("*\r\n")
	d.out.Reset()
	d.feed("b AUTHENTICATE CRAM-MD5\r\n")
	if got := d.out.String(); got != first {
		t.Errorf("second challenge %q, want the first %q", got, first)
	}
}

func TestFillLoginTag(t *testing.T) {
	d := newDriver(t, nil)
	d.feed("tag.1 LOGIN u p\r\n")
	if len(d.auths) != 1 || d.auths[0].Tag != "tag.1 " {
		t.Fatalf("auths %+v", d.auths)
	}
}

func TestProtocol(t *testing.T) {
	p := Protocol{}
	if p.Name() != "imap" {
		t.Errorf("Name %q", p.Name())
	}
	if got := p.ClientBuffer(smallBuffer); got != 64 {
		t.Errorf("ClientBuffer %d", got)
	}
	if got := p.ClientBuffer(&confparse.Server{}); got != DefaultClientBuffer {
		t.Errorf("default ClientBuffer %d", got)
	}
	d := newDriver(t, nil)
	if got := string(d.h.InternalError()); got != "* BAD internal server error\r\n" {
		t.Errorf("InternalError %q", got)
	}
	if got := string(d.h.AuthFailed("Temporary failure", "451 4.3.0")); got != "* NO Temporary failure\r\n" {
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
		h := Protocol{}.NewHandler(s).(*Handler)
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

// TestParseIsRepeatable hands the parser every prefix of a pipeline, as an
// engine does while bytes trickle in, and checks that the commands and the
// "+ OK" lines come out exactly as with the whole input at once.
func TestParseIsRepeatable(t *testing.T) {
	in := "a LOGIN {3}\r\nabc \"d e\"\r\nb NOOP\r\nc FOO {2+}\r\nxy\r\n"
	whole := newDriver(t, nil)
	whole.feed(in)
	split := newDriver(t, nil)
	for i := 0; i < len(in); i++ {
		split.feed(in[i : i+1])
	}
	if whole.out.String() != split.out.String() {
		t.Errorf("whole %q\nsplit %q", whole.out.String(), split.out.String())
	}
	if !reflect.DeepEqual(whole.auths, split.auths) {
		t.Errorf("auths %+v vs %+v", whole.auths, split.auths)
	}
	if !whole.closed || !split.closed {
		t.Error("the +} line should close")
	}
}

// TestParseResumes feeds a long command a byte at a time, as a slow client
// would, and checks the parser resumes where it stopped instead of
// starting over (linear work, not quadratic), with the same result as a
// single pass.
func TestParseResumes(t *testing.T) {
	conf := withConf(func(c *confparse.Server) { c.IMAP.ClientBuffer = 1 << 16 })
	line := "a LOGIN \"" + strings.Repeat("x y", 10000) + "\" {3}\r\nabc\r\n"
	d := newDriver(t, conf)
	var scanned int
	for i := 0; i < len(line); i++ {
		d.feed(line[i : i+1])
		if d.h.pass != nil {
			scanned = d.h.pass.scanned
		}
	}
	if want := "+ OK\r\na NO Invalid login or password\r\n"; d.out.String() != want {
		t.Fatalf("replies %q, want %q", d.out.String(), want)
	}
	if len(d.auths) != 1 || d.auths[0].Login != strings.Repeat("x y", 10000) || d.auths[0].Pass != "abc" {
		t.Fatalf("auths %+v", d.auths)
	}
	if scanned > len(line) {
		t.Errorf("scanned %d bytes for a %d-byte command", scanned, len(line))
	}
}

var _ mail.Handler = (*Handler)(nil)
