package smtp

import (
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"

	"mailgate/auth"
	"mailgate/confparse"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	greeting = "220 mx.example.test ESMTP ready\r\n"
	ok250    = "250 2.0.0 OK\r\n"
	invalid  = "500 5.5.1 Invalid command\r\n"
	badArg   = "501 5.5.4 Invalid argument\r\n"
	badSeq   = "503 5.5.1 Bad sequence of commands\r\n"
	ehloDef  = "250-mx.example.test\r\n250 AUTH PLAIN LOGIN\r\n"
)

// step: the client sends c (one read), the server answers exactly s.
type step struct{ c, s string }

type transcript struct {
	name   string
	conf   func(*confparse.Server)
	tls    bool // the server has a certificate (STARTTLS possible)
	auth   []authOutcome
	steps  []step
	closed bool     // the session ends closed
	authed bool     // the session ends handed off
	logs   []string // log lines that must appear (exact, without the context suffix)
	check  func(t *testing.T, e *engine)
}

func TestTranscripts(t *testing.T) {
	plainGood := b64("\x00good\x00pw")
	cases := []transcript{
		{name: "ehlo default", steps: []step{{"EHLO client.example\r\n", ehloDef}}},
		{name: "helo", steps: []step{{"HELO client.example\r\n", "250 mx.example.test\r\n"}}},
		{name: "helo arity", steps: []step{{"HELO\r\n", badArg}, {"HELO a b\r\n", badArg}, {"EHLO\r\n", badArg}}},
		{name: "lower case and bare LF", steps: []step{{"ehlo x\n", ehloDef}, {"nOoP\n", ok250}}},
		{
			name: "ehlo capabilities and every method",
			conf: func(c *confparse.Server) {
				c.SMTP.Capabilities = []string{"PIPELINING", "SIZE 10485760"}
				c.SMTP.Auth = confparse.AuthPlain | confparse.AuthLogin | confparse.AuthCRAMMD5 | confparse.AuthExternal | confparse.AuthNone
			},
			steps: []step{{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250 AUTH PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n"}},
		},
		{
			name:  "ehlo none only",
			conf:  func(c *confparse.Server) { c.SMTP.Auth = confparse.AuthNone },
			steps: []step{{"EHLO x\r\n", "250 mx.example.test\r\n"}},
		},
		{
			name: "starttls on",
			tls:  true,
			conf: func(c *confparse.Server) {
				c.SSL.StartTLS = confparse.StartTLSOn
				c.SMTP.Capabilities = []string{"PIPELINING"}
			},
			steps: []step{
				{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"},
				{"STARTTLS extra args\r\n", "220 2.0.0 Start TLS\r\n"},
				{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"},
				{"STARTTLS\r\n", invalid},
			},
		},
		{
			name: "starttls only",
			tls:  true,
			conf: func(c *confparse.Server) {
				c.SSL.StartTLS = confparse.StartTLSOnly
				c.SMTP.Capabilities = []string{"PIPELINING"}
				c.SMTP.Auth |= confparse.AuthNone
			},
			steps: []step{
				{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"},
				{"AUTH PLAIN " + plainGood + "\r\n", invalid},
				{"MAIL FROM:<a@b>\r\n", ok250},
			},
		},
		{name: "starttls off", steps: []step{{"STARTTLS\r\n", invalid}, {"NOOP\r\n", ok250}}},
		{
			name:  "starttls without certificate",
			conf:  func(c *confparse.Server) { c.SSL.StartTLS = confparse.StartTLSOn },
			steps: []step{{"STARTTLS\r\n", invalid}},
		},
		{
			name: "auth arguments",
			steps: []step{
				{"AUTH\r\n", badArg},
				{"AUTH FOO\r\n", invalid},
				{"AUTH PLAIN a b\r\n", invalid},
				{"AUTH LOGIN a b\r\n", invalid},
				{"AUTH CRAM-MD5\r\n", invalid},
				{"AUTH EXTERNAL\r\n", invalid},
				{"NOOP\r\n", ok250},
			},
			check: func(t *testing.T, e *engine) {
				if e.errors != 0 {
					t.Errorf("handler-level refusals counted: %d", e.errors)
				}
			},
		},
		{
			name:   "auth plain initial response",
			steps:  []step{{"AUTH PLAIN " + plainGood + "\r\n", "<login>"}},
			authed: true,
			check: func(t *testing.T, e *engine) {
				r := e.reqs[0]
				if r.Method != auth.MethodPlain || string(r.User) != "good" || string(r.Pass) != "pw" {
					t.Errorf("request %+v", r)
				}
				if !r.HasClientHost || r.ClientHost != "[UNAVAILABLE]" {
					t.Errorf("client host %v %q", r.HasClientHost, r.ClientHost)
				}
				if r.SMTPHelo != nil || r.SMTPFrom != nil {
					t.Errorf("Auth-SMTP-* set for plain")
				}
			},
		},
		{
			name:   "auth plain continuation",
			steps:  []step{{"auth plain\r\n", "334 \r\n"}, {plainGood + "\r\n", "<login>"}},
			authed: true,
		},
		{
			name: "auth plain bad responses",
			steps: []step{
				{"AUTH PLAIN\r\n", "334 \r\n"}, {"\r\n", invalid},
				{"AUTH PLAIN\r\n", "334 \r\n"}, {"*\r\n", invalid},
				{"AUTH PLAIN\r\n", "334 \r\n"}, {b64("nonul") + "\r\n", invalid},
				{"AUTH PLAIN\r\n", "334 \r\n"}, {b64("\x00onlyone") + "\r\n", invalid},
				{"NOOP\r\n", ok250},
			},
			logs: []string{
				"info: *7 client sent invalid login in AUTH PLAIN command",
				"info: *7 client sent invalid base64 encoding in AUTH PLAIN command",
				"info: *7 client sent invalid login in AUTH PLAIN command",
				"info: *7 client sent invalid password in AUTH PLAIN command",
			},
		},
		{
			name: "auth login",
			steps: []step{
				{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"},
				{b64("good") + "\r\n", "334 UGFzc3dvcmQ6\r\n"},
				{b64("pw") + " trailing args\r\n", "<login>"},
			},
			authed: true,
			check: func(t *testing.T, e *engine) {
				r := e.reqs[0]
				if r.Method != auth.MethodPlain || string(r.User) != "good" || string(r.Pass) != "pw" {
					t.Errorf("request %+v", r)
				}
			},
		},
		{
			name:   "auth login with user name",
			steps:  []step{{"AUTH LOGIN " + b64("good") + "\r\n", "334 UGFzc3dvcmQ6\r\n"}, {b64("pw") + "\r\n", "<login>"}},
			authed: true,
		},
		{
			// nginx 1.22.1: an empty user name line is valid base64.
			name:   "auth login empty user name",
			steps:  []step{{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"}, {"\r\n", "334 UGFzc3dvcmQ6\r\n"}, {"AUTH LOGIN\r\n", "<login>"}},
			authed: true,
			check: func(t *testing.T, e *engine) {
				pass, _ := base64.StdEncoding.DecodeString("AUTH")
				if r := e.reqs[0]; len(r.User) != 0 || string(r.Pass) != string(pass) {
					t.Errorf("user %q pass %q", r.User, r.Pass)
				}
			},
		},
		{
			name:  "auth login bad base64",
			steps: []step{{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"}, {"a\r\n", invalid}, {"NOOP\r\n", ok250}},
			logs:  []string{"info: *7 client sent invalid base64 encoding in AUTH LOGIN command"},
		},
		{
			name:  "malformed continuation line is parse-level",
			steps: []step{{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"}, {"abc\rX\r\n", invalid}, {"NOOP\r\n", ok250}},
			check: func(t *testing.T, e *engine) {
				if e.errors != 1 {
					t.Errorf("errors = %d, want 1", e.errors)
				}
			},
		},
		{
			name:   "cram-md5",
			conf:   func(c *confparse.Server) { c.SMTP.Auth |= confparse.AuthCRAMMD5 },
			authed: true,
			check: func(t *testing.T, e *engine) {
				r := e.reqs[0]
				if r.Method != auth.MethodCRAMMD5 || string(r.User) != "good" || len(r.Pass) != 32 {
					t.Errorf("request %+v", r)
				}
				if !strings.HasPrefix(string(r.Salt), "<") || !strings.HasSuffix(string(r.Salt), "@mx.example.test>") {
					t.Errorf("salt %q", r.Salt)
				}
			},
		},
		{
			// nginx checks smtp_auth for EXTERNAL only without an
			// initial response.
			name:   "external quirk",
			steps:  []step{{"AUTH EXTERNAL\r\n", invalid}, {"AUTH EXTERNAL " + b64("good") + "\r\n", "<login>"}},
			authed: true,
			check: func(t *testing.T, e *engine) {
				if r := e.reqs[0]; r.Method != auth.MethodExternal || string(r.User) != "good" || r.Pass != nil {
					t.Errorf("request %+v", r)
				}
			},
		},
		{
			name:   "external enabled",
			conf:   func(c *confparse.Server) { c.SMTP.Auth |= confparse.AuthExternal },
			steps:  []step{{"AUTH EXTERNAL\r\n", "334 VXNlcm5hbWU6\r\n"}, {"\r\n", "<login>"}},
			authed: true,
			check: func(t *testing.T, e *engine) {
				if r := e.reqs[0]; r.Method != auth.MethodExternal || len(r.User) != 0 {
					t.Errorf("request %+v", r)
				}
			},
		},
		{
			name:  "mail without none",
			steps: []step{{"MAIL FROM:<a@b>\r\n", "530 5.7.1 Authentication required\r\n"}, {"RCPT TO:<c@d>\r\n", badSeq}},
			logs:  []string{`info: *7 client was rejected: "MAIL FROM:<a@b>__"`},
		},
		{
			name:  "rejected mail logs the whole buffer",
			steps: []step{{"EHLO x\r\nMAIL FROM:<a@b>\r\nNOOP\r\n", ehloDef + "530 5.7.1 Authentication required\r\n" + ok250}},
			logs:  []string{`info: *7 client was rejected: "EHLO x__MAIL FROM:<a@b>__NOOP__"`},
		},
		{
			// Found by the random differential test: nginx logs the
			// buffer as it is, credentials included.
			name: "rejected mail hides credentials in the buffer",
			steps: []step{{"AUTH LOGIN  " + b64("secretpw") + "\rX\r\n" + b64("\x00u\x00secretpw") + "\r\nMAIL FROM:<a@b>\r\n",
				invalid + invalid + "530 5.7.1 Authentication required\r\n"}},
			logs: []string{`info: *7 client was rejected: "AUTH LOGIN  ***__***__MAIL FROM:<a@b>__"`},
		},
		{
			name: "none path",
			conf: func(c *confparse.Server) { c.SMTP.Auth = confparse.AuthNone },
			steps: []step{
				{"EHLO client.example\r\n", "250 mx.example.test\r\n"},
				{"RCPT TO:<c@d>\r\n", badSeq},
				{"MAIL\r\n", badArg},
				{"MAIL FROM:<a@b>  SIZE=100  \r\n", ok250},
				{"MAIL FROM:<x@y>\r\n", badSeq},
				{"RCPT\r\n", badArg},
				{"RCPT TO:<c@d> NOTIFY=NEVER\r\n", "<login>"},
			},
			authed: true,
			check: func(t *testing.T, e *engine) {
				r := e.reqs[0]
				if r.Method != auth.MethodNone || string(r.SMTPHelo) != "client.example" ||
					string(r.SMTPFrom) != "MAIL FROM:<a@b>  SIZE=100" || string(r.SMTPTo) != "RCPT TO:<c@d> NOTIFY=NEVER" {
					t.Errorf("request %q %q %q %q", r.Method, r.SMTPHelo, r.SMTPFrom, r.SMTPTo)
				}
				p := e.logins[0]
				if !p.AuthNone || string(p.MailFrom) != "MAIL FROM:<a@b>  SIZE=100" || string(p.RcptTo) != "RCPT TO:<c@d> NOTIFY=NEVER" {
					t.Errorf("login %+v", p)
				}
				if !p.ESMTP || string(p.Helo) != "client.example" || p.ClientHost != "[UNAVAILABLE]" {
					t.Errorf("login %+v", p)
				}
			},
		},
		{
			name: "none path without helo sends empty Auth-SMTP-Helo",
			conf: func(c *confparse.Server) { c.SMTP.Auth = confparse.AuthNone },
			steps: []step{
				{"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", ok250 + "<login>"},
			},
			authed: true,
			check: func(t *testing.T, e *engine) {
				r := e.reqs[0]
				if r.SMTPHelo == nil || len(r.SMTPHelo) != 0 {
					t.Errorf("helo %q", r.SMTPHelo)
				}
				if p := e.logins[0]; p.Helo != nil || p.ESMTP {
					t.Errorf("login %+v", p)
				}
			},
		},
		{
			name: "none rejected with wait keeps MAIL",
			conf: func(c *confparse.Server) { c.SMTP.Auth = confparse.AuthNone },
			auth: []authOutcome{{fail: true, msg: "Relay denied", wait: true}},
			steps: []step{
				{"HELO h\r\n", "250 mx.example.test\r\n"},
				{"MAIL FROM:<a@b>\r\n", ok250},
				{"RCPT TO:<c@d>\r\n", "535 5.7.0 Relay denied\r\n"},
				{"RCPT TO:<e@f>\r\n", "<login>"},
			},
			authed: true,
			check: func(t *testing.T, e *engine) {
				if len(e.reqs) != 2 || string(e.reqs[1].SMTPFrom) != "MAIL FROM:<a@b>" || string(e.reqs[1].SMTPTo) != "RCPT TO:<e@f>" {
					t.Errorf("requests %+v", e.reqs)
				}
			},
		},
		{
			name:   "auth failure without wait closes",
			auth:   []authOutcome{{fail: true, msg: "Invalid login or password", code: "550 5.7.1"}},
			steps:  []step{{"AUTH PLAIN " + plainGood + "\r\n", "550 5.7.1 Invalid login or password\r\n"}},
			closed: true,
		},
		{
			// Newer nginx (1.29.1): MAIL under none clears the
			// credentials of a failed AUTH; 1.22.1 sent them.
			name: "none after failed auth drops credentials",
			conf: func(c *confparse.Server) { c.SMTP.Auth |= confparse.AuthNone },
			auth: []authOutcome{{fail: true, msg: "Invalid login or password", wait: true}},
			steps: []step{
				{"AUTH PLAIN " + b64("\x00good\x00bad") + "\r\n", "535 5.7.0 Invalid login or password\r\n"},
				{"MAIL FROM:<a@b>\r\n", ok250},
				{"RCPT TO:<c@d>\r\n", "<login>"},
			},
			authed: true,
			check: func(t *testing.T, e *engine) {
				if r := e.reqs[1]; r.Method != auth.MethodNone || len(r.User) != 0 || len(r.Pass) != 0 {
					t.Errorf("request %q user %q pass %q", r.Method, r.User, r.Pass)
				}
			},
		},
		{
			name: "rset and helo clear MAIL",
			conf: func(c *confparse.Server) { c.SMTP.Auth = confparse.AuthNone },
			steps: []step{
				{"MAIL FROM:<a@b>\r\n", ok250}, {"RSET\r\n", ok250}, {"RCPT TO:<c@d>\r\n", badSeq},
				{"MAIL FROM:<a@b>\r\n", ok250}, {"HELO x\r\n", "250 mx.example.test\r\n"}, {"RCPT TO:<c@d>\r\n", badSeq},
				{"MAIL FROM:<a@b>\r\n", ok250},
			},
		},
		{
			name: "vrfy expn help are handler-level",
			conf: func(c *confparse.Server) { c.Core.MaxErrors = 2 },
			steps: []step{
				{"VRFY a\r\n", invalid}, {"EXPN a\r\n", invalid}, {"HELP\r\n", invalid},
				{"DATA\r\n", invalid}, {"NOOP\r\n", ok250}, {"FOO bar\r\n", invalid},
			},
			closed: true,
		},
		{
			name:   "unknown words count",
			steps:  []step{{"DATA\r\n", invalid}, {"\r\n", invalid}, {"NOOP1\r\n", invalid}, {"NOOPS\r\n", invalid}, {"STARTTLX\r\n", invalid}},
			closed: true,
		},
		{
			name:  "CR without LF",
			steps: []step{{"NOOP\rX\r\n", invalid}, {"NOOP \r \r\n", invalid}, {"NOOP\r\n", ok250}},
		},
		{
			name: "argument limit",
			conf: func(c *confparse.Server) { c.SMTP.Auth = confparse.AuthNone },
			steps: []step{
				{"MAIL 1 2 3 4 5 6 7 8 9 10 11   \r\n", ok250},
				{"RSET\r\n", ok250},
				{"MAIL 1 2 3 4 5 6 7 8 9 10 11 12\r\n", invalid},
			},
		},
		{
			name:   "command split over reads",
			steps:  []step{{"NO", ""}, {"OP\r", ""}, {"\nEH", ok250}, {"LO x\r\nQU", ehloDef}, {"IT\r\n", "221 2.0.0 Bye\r\n"}},
			closed: true,
		},
		{
			name:  "invalid command split over reads",
			steps: []step{{"DA", ""}, {"TA x", ""}, {"\r\nNOOP\r\n", invalid + ok250}},
		},
		{
			name:   "too long command",
			conf:   func(c *confparse.Server) { c.SMTP.ClientBuffer = 64 },
			steps:  []step{{"MAIL FROM:<" + strings.Repeat("a", 60) + ">\r\n", invalid}},
			closed: true,
		},
		{
			name:   "pipelining longer than the buffer",
			conf:   func(c *confparse.Server) { c.SMTP.ClientBuffer = 64 },
			steps:  []step{{strings.Repeat("NOOP\r\n", 10) + "NOOP", strings.Repeat(ok250, 10) + invalid}},
			closed: true,
		},
		{
			name:   "line of exactly the buffer size",
			conf:   func(c *confparse.Server) { c.SMTP.ClientBuffer = 16; c.SMTP.Auth = confparse.AuthNone },
			steps:  []step{{"MAIL FROM:<a@b>\n", ok250}, {"HELO 0123456789\r\n", invalid}},
			closed: true,
		},
		{
			name: "pipelined auth leaves the rest in the buffer",
			steps: []step{
				{"EHLO x\r\nAUTH PLAIN " + plainGood + "\r\nMAIL FROM:<a@b>\r\n", ehloDef + "<login>"},
			},
			authed: true,
		},
		{
			name:   "quit",
			steps:  []step{{"QUIT\r\nNOOP\r\n", "221 2.0.0 Bye\r\n"}},
			closed: true,
		},
		{
			name: "esmtp is sticky and STARTTLS forgets HELO",
			tls:  true,
			conf: func(c *confparse.Server) {
				c.SSL.StartTLS = confparse.StartTLSOn
				c.Proxy.XClient = false
				c.Proxy.SMTPAuth = true
			},
			steps: []step{
				{"EHLO a\r\n", "250-mx.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"},
				{"STARTTLS\r\n", "220 2.0.0 Start TLS\r\n"},
				{"AUTH PLAIN " + plainGood + "\r\n", "<login>"},
			},
			authed: true,
			check: func(t *testing.T, e *engine) {
				p := e.logins[0]
				if !p.ESMTP || p.Helo != nil || p.XClient || !p.SMTPAuth || p.AuthNone || !p.XTextLogin {
					t.Errorf("login %+v", p)
				}
				if string(p.Login) != "good" || string(p.Pass) != "pw" || p.ServerName != "mx.example.test" {
					t.Errorf("login %+v", p)
				}
			},
		},
		{
			name: "helo after ehlo",
			steps: []step{
				{"EHLO a\r\n", ehloDef}, {"HELO b\r\n", "250 mx.example.test\r\n"},
				{"AUTH PLAIN " + plainGood + "\r\n", "<login>"},
			},
			authed: true,
			check: func(t *testing.T, e *engine) {
				if p := e.logins[0]; !p.ESMTP || string(p.Helo) != "b" || !p.XClient {
					t.Errorf("login %+v", p)
				}
			},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConf()
			if tc.conf != nil {
				tc.conf(c)
			}
			f := newFixture(c)
			if tc.tls {
				f.s.TLSConfig = &tls.Config{}
			}
			if err := f.h.Greet(); err != nil {
				t.Fatal(err)
			}
			if got := f.out.String(); got != greeting {
				t.Fatalf("greeting %q", got)
			}
			f.out.Reset()
			e := newEngine(f)
			e.auth = tc.auth
			steps := tc.steps
			if tc.name == "cram-md5" {
				steps = nil
				e.feed("AUTH CRAM-MD5\r\n")
				line := f.out.String()
				f.out.Reset()
				if !strings.HasPrefix(line, "334 ") || !strings.HasSuffix(line, "\r\n") {
					t.Fatalf("challenge %q", line)
				}
				salt, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line[4:]))
				if err != nil || string(salt) != string(f.s.Salt) {
					t.Fatalf("challenge %q salt %q", line, f.s.Salt)
				}
				e.feed(b64("good 0123456789abcdef0123456789abcdef") + "\r\n")
				if got := f.out.String(); got != "<login>" {
					t.Fatalf("reply %q", got)
				}
			}
			for i, st := range steps {
				e.feed(st.c)
				if got := f.out.String(); got != st.s {
					t.Fatalf("step %d: sent %q\n got %q\nwant %q", i, st.c, got, st.s)
				}
				f.out.Reset()
			}
			if e.closed != tc.closed {
				t.Errorf("closed = %v, want %v", e.closed, tc.closed)
			}
			if e.authed != tc.authed {
				t.Errorf("authenticated = %v, want %v", e.authed, tc.authed)
			}
			logs := f.logs.all()
			for _, want := range tc.logs {
				found := false
				for i, l := range logs {
					if strings.HasPrefix(l, want+" while in auth state, client: 127.0.0.1, server: 127.0.0.1:25") {
						found = true
						logs = logs[i+1:]
						break
					}
				}
				if !found {
					t.Errorf("log %q not found in order in %q", want, f.logs.all())
				}
			}
			for _, l := range f.logs.all() {
				if strings.Contains(l, "pw") {
					t.Errorf("password in log: %q", l)
				}
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}
