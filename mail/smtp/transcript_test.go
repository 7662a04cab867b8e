package smtp

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/mailtest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	greeting = "220 mx.example.test ESMTP ready\r\n"
	ok250    = "250 2.0.0 OK\r\n"
	invalid  = "500 5.5.1 Invalid command\r\n"
	badArg   = "501 5.5.4 Invalid argument\r\n"
	badSeq   = "503 5.5.1 Bad sequence of commands\r\n"
	ehloDef  = "250-mx.example.test\r\n250 AUTH PLAIN LOGIN\r\n"

	// What the client gets once the upstream login is done: nginx's own
	// answer to AUTH, or on the smtp_auth none path the upstream's answer
	// to RCPT (see upstreamFor).
	loginOK = "235 2.0.0 OK\r\n"
	rcptOK  = "250 2.1.5 ok\r\n"

	// The upstream login's first lines with xclient on, for a unix
	// client (no address) without a resolver.
	upEHLO    = "EHLO mx.example.test\r\n"
	upXClient = "XCLIENT ADDR=unix: NAME=[UNAVAILABLE]\r\n"
	upLogin   = upEHLO + "XCLIENT ADDR=unix: LOGIN=good NAME=[UNAVAILABLE]\r\n"

	// tlsStep as a step's client bytes: the client runs its TLS handshake.
	tlsStep = "<TLS>"
)

// The mail{} body of every test; %s is the case's extra directives for its
// server block, which override the mail{} level ones.
const mailBody = `
auth_http "{{auth}}";
max_errors 5;
timeout 5s;
smtp_auth plain login;
xclient on;
proxy_timeout 5s;
server {
	listen 127.0.0.1:25;
	protocol smtp;
	%s
}`

// Auth_http answers.
const (
	authPass = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 25\r\n\r\n"
)

func authFail(msg, wait, code string) string {
	h := "HTTP/1.0 200 OK\r\nAuth-Status: " + msg + "\r\n"
	if wait != "" {
		h += "Auth-Wait: " + wait + "\r\n"
	}
	if code != "" {
		h += "Auth-Error-Code: " + code + "\r\n"
	}
	return h + "\r\n"
}

// upstreamFor scripts an upstream that expects the lines of lines and
// accepts each; it closes after the last answer.
func upstreamFor(lines string) *mailtest.Upstream {
	u := &mailtest.Upstream{Replies: []string{"220 upstream ESMTP\r\n"}}
	for _, l := range strings.SplitAfter(lines, "\r\n") {
		var reply string
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "XCLIENT "):
			reply = "220 upstream\r\n"
		case strings.HasPrefix(l, "AUTH PLAIN "):
			reply = "235 2.0.0 upstream ok\r\n"
		case strings.HasPrefix(l, "MAIL "):
			reply = "250 2.1.0 ok\r\n"
		case strings.HasPrefix(l, "RCPT "):
			reply = rcptOK
		default: // EHLO, HELO
			reply = "250 upstream\r\n"
		}
		u.Replies = append(u.Replies, reply)
	}
	return u
}

// step: the client sends c (read on its own by the server), then the
// server answers exactly s.
type clientStep struct{ c, s string }

type transcript struct {
	name   string
	conf   string   // extra directives for the server block
	tls    bool     // the server has a certificate (STARTTLS possible)
	auth   []string // auth_http answers; then a refusal without Auth-Wait
	steps  []clientStep
	closed bool // the session ends closed (before any login)
	// up: the session logs in upstream, which must receive exactly these
	// lines (and closes after answering them).
	up string
	// reqs: for each auth_http request, "Header: value" lines it must
	// have (value decoded) and "!Header" ones it must not.
	reqs [][]string
	logs []string // info lines that must appear in order (without the context suffix)
}

func TestTranscripts(t *testing.T) {
	plainGood := b64("\x00good\x00pw")
	cases := []transcript{
		{name: "ehlo default", steps: []clientStep{{"EHLO client.example\r\n", ehloDef}}},
		{name: "helo", steps: []clientStep{{"HELO client.example\r\n", "250 mx.example.test\r\n"}}},
		{name: "helo arity", steps: []clientStep{{"HELO\r\n", badArg}, {"HELO a b\r\n", badArg}, {"EHLO\r\n", badArg}}},
		{name: "lower case and bare LF", steps: []clientStep{{"ehlo x\n", ehloDef}, {"nOoP\n", ok250}}},
		{
			name:  "ehlo capabilities and every method",
			conf:  `smtp_capabilities PIPELINING "SIZE 10485760"; smtp_auth plain login cram-md5 external none;`,
			steps: []clientStep{{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250 AUTH PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n"}},
		},
		{
			name:  "ehlo none only",
			conf:  "smtp_auth none;",
			steps: []clientStep{{"EHLO x\r\n", "250 mx.example.test\r\n"}},
		},
		{
			name: "starttls on",
			tls:  true,
			conf: "starttls on; smtp_capabilities PIPELINING;",
			steps: []clientStep{
				{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"},
				{"STARTTLS extra args\r\n", "220 2.0.0 Start TLS\r\n"},
				{tlsStep, ""},
				{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"},
				{"STARTTLS\r\n", invalid},
			},
		},
		{
			name: "starttls only",
			tls:  true,
			conf: "starttls only; smtp_capabilities PIPELINING; smtp_auth plain login none;",
			steps: []clientStep{
				{"EHLO x\r\n", "250-mx.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"},
				{"AUTH PLAIN " + plainGood + "\r\n", invalid},
				{"MAIL FROM:<a@b>\r\n", ok250},
			},
		},
		{name: "starttls off", steps: []clientStep{{"STARTTLS\r\n", invalid}, {"NOOP\r\n", ok250}}},
		{
			// Refused at max_errors 5 if they counted.
			name: "auth arguments",
			steps: []clientStep{
				{"AUTH\r\n", badArg},
				{"AUTH FOO\r\n", invalid},
				{"AUTH PLAIN a b\r\n", invalid},
				{"AUTH LOGIN a b\r\n", invalid},
				{"AUTH CRAM-MD5\r\n", invalid},
				{"AUTH EXTERNAL\r\n", invalid},
				{"NOOP\r\n", ok250},
			},
		},
		{
			name:  "auth plain initial response",
			auth:  []string{authPass},
			steps: []clientStep{{"AUTH PLAIN " + plainGood + "\r\n", loginOK}},
			up:    upLogin,
			reqs: [][]string{{"Auth-Method: plain", "Auth-User: good", "Auth-Pass: pw", "Client-Host: [UNAVAILABLE]",
				"!Auth-SMTP-Helo", "!Auth-SMTP-From", "!Auth-SMTP-To"}},
		},
		{
			name:  "auth plain continuation",
			auth:  []string{authPass},
			steps: []clientStep{{"auth plain\r\n", "334 \r\n"}, {plainGood + "\r\n", loginOK}},
			up:    upLogin,
			reqs:  [][]string{{"Auth-Method: plain", "Auth-User: good", "Auth-Pass: pw"}},
		},
		{
			name: "auth plain bad responses",
			steps: []clientStep{
				{"AUTH PLAIN\r\n", "334 \r\n"}, {"\r\n", invalid},
				{"AUTH PLAIN\r\n", "334 \r\n"}, {"*\r\n", invalid},
				{"AUTH PLAIN\r\n", "334 \r\n"}, {b64("nonul") + "\r\n", invalid},
				{"AUTH PLAIN\r\n", "334 \r\n"}, {b64("\x00onlyone") + "\r\n", invalid},
				{"NOOP\r\n", ok250},
			},
			logs: []string{
				"client sent invalid login in AUTH PLAIN command",
				"client sent invalid base64 encoding in AUTH PLAIN command",
				"client sent invalid login in AUTH PLAIN command",
				"client sent invalid password in AUTH PLAIN command",
			},
		},
		{
			name: "auth login",
			auth: []string{authPass},
			steps: []clientStep{
				{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"},
				{b64("good") + "\r\n", "334 UGFzc3dvcmQ6\r\n"},
				{b64("pw") + " trailing args\r\n", loginOK},
			},
			up:   upLogin,
			reqs: [][]string{{"Auth-Method: plain", "Auth-User: good", "Auth-Pass: pw"}},
		},
		{
			name:  "auth login with user name",
			auth:  []string{authPass},
			steps: []clientStep{{"AUTH LOGIN " + b64("good") + "\r\n", "334 UGFzc3dvcmQ6\r\n"}, {b64("pw") + "\r\n", loginOK}},
			up:    upLogin,
			reqs:  [][]string{{"Auth-Method: plain", "Auth-User: good", "Auth-Pass: pw"}},
		},
		{
			// nginx 1.22.1: an empty user name line is valid base64.
			name:  "auth login empty user name",
			auth:  []string{authPass},
			steps: []clientStep{{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"}, {"\r\n", "334 UGFzc3dvcmQ6\r\n"}, {"AUTH LOGIN\r\n", loginOK}},
			up:    upEHLO + upXClient,
			reqs:  [][]string{{"Auth-Method: plain", "Auth-User: ", "Auth-Pass: " + b64dec("AUTH")}},
		},
		{
			name:  "auth login bad base64",
			steps: []clientStep{{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"}, {"a\r\n", invalid}, {"NOOP\r\n", ok250}},
			logs:  []string{"client sent invalid base64 encoding in AUTH LOGIN command"},
		},
		{
			// Counted once: max_errors 2 closes at the next invalid command.
			name:   "malformed continuation line is parse-level",
			conf:   "max_errors 2;",
			steps:  []clientStep{{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"}, {"abc\rX\r\n", invalid}, {"NOOP\r\n", ok250}, {"FOO\r\n", invalid}},
			closed: true,
		},
		{
			// nginx checks smtp_auth for EXTERNAL only without an
			// initial response.
			name:  "external quirk",
			auth:  []string{authPass},
			steps: []clientStep{{"AUTH EXTERNAL\r\n", invalid}, {"AUTH EXTERNAL " + b64("good") + "\r\n", loginOK}},
			up:    upLogin,
			reqs:  [][]string{{"Auth-Method: external", "Auth-User: good", "Auth-Pass: "}},
		},
		{
			name:  "external enabled",
			conf:  "smtp_auth plain login external;",
			auth:  []string{authPass},
			steps: []clientStep{{"AUTH EXTERNAL\r\n", "334 VXNlcm5hbWU6\r\n"}, {"\r\n", loginOK}},
			up:    upEHLO + upXClient,
			reqs:  [][]string{{"Auth-Method: external", "Auth-User: "}},
		},
		{
			name:  "mail without none",
			steps: []clientStep{{"MAIL FROM:<a@b>\r\n", "530 5.7.1 Authentication required\r\n"}, {"RCPT TO:<c@d>\r\n", badSeq}},
			logs:  []string{`client was rejected: "MAIL FROM:<a@b>__"`},
		},
		{
			name:  "rejected mail logs the whole buffer",
			steps: []clientStep{{"EHLO x\r\nMAIL FROM:<a@b>\r\nNOOP\r\n", ehloDef + "530 5.7.1 Authentication required\r\n" + ok250}},
			logs:  []string{`client was rejected: "EHLO x__MAIL FROM:<a@b>__NOOP__"`},
		},
		{
			// Found by the random differential test: nginx logs the
			// buffer as it is, credentials included.
			name: "rejected mail hides credentials in the buffer",
			steps: []clientStep{{"AUTH LOGIN  " + b64("secretpw") + "\rX\r\n" + b64("\x00u\x00secretpw") + "\r\nMAIL FROM:<a@b>\r\n",
				invalid + invalid + "530 5.7.1 Authentication required\r\n"}},
			logs: []string{`client was rejected: "AUTH LOGIN  ***__***__MAIL FROM:<a@b>__"`},
		},
		{
			name: "none path",
			conf: "smtp_auth none;",
			auth: []string{authPass},
			steps: []clientStep{
				{"EHLO client.example\r\n", "250 mx.example.test\r\n"},
				{"RCPT TO:<c@d>\r\n", badSeq},
				{"MAIL\r\n", badArg},
				{"MAIL FROM:<a@b>  SIZE=100  \r\n", ok250},
				{"MAIL FROM:<x@y>\r\n", badSeq},
				{"RCPT\r\n", badArg},
				{"RCPT TO:<c@d> NOTIFY=NEVER\r\n", rcptOK},
			},
			up: upEHLO + upXClient + "EHLO client.example\r\nMAIL FROM:<a@b>  SIZE=100\r\nRCPT TO:<c@d> NOTIFY=NEVER\r\n",
			reqs: [][]string{{"Auth-Method: none", "Auth-User: ", "Auth-Pass: ", "Client-Host: [UNAVAILABLE]",
				"Auth-SMTP-Helo: client.example", "Auth-SMTP-From: MAIL FROM:<a@b>  SIZE=100", "Auth-SMTP-To: RCPT TO:<c@d> NOTIFY=NEVER"}},
		},
		{
			name:  "none path without helo sends empty Auth-SMTP-Helo",
			conf:  "smtp_auth none;",
			auth:  []string{authPass},
			steps: []clientStep{{"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", ok250 + rcptOK}},
			// No client HELO to replay after XCLIENT.
			up:   upEHLO + upXClient + "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
			reqs: [][]string{{"Auth-Method: none", "Auth-SMTP-Helo: ", "Auth-SMTP-From: MAIL FROM:<a@b>", "Auth-SMTP-To: RCPT TO:<c@d>"}},
		},
		{
			name: "none rejected with wait keeps MAIL",
			conf: "smtp_auth none;",
			auth: []string{authFail("Relay denied", "1", ""), authPass},
			steps: []clientStep{
				{"HELO h\r\n", "250 mx.example.test\r\n"},
				{"MAIL FROM:<a@b>\r\n", ok250},
				{"RCPT TO:<c@d>\r\n", "535 5.7.0 Relay denied\r\n"},
				{"RCPT TO:<e@f>\r\n", rcptOK},
			},
			up: upEHLO + upXClient + "HELO h\r\nMAIL FROM:<a@b>\r\nRCPT TO:<e@f>\r\n",
			reqs: [][]string{
				{"Auth-Method: none", "Auth-SMTP-Helo: h", "Auth-SMTP-From: MAIL FROM:<a@b>", "Auth-SMTP-To: RCPT TO:<c@d>", "Auth-Login-Attempt: 1"},
				{"Auth-Method: none", "Auth-SMTP-Helo: h", "Auth-SMTP-From: MAIL FROM:<a@b>", "Auth-SMTP-To: RCPT TO:<e@f>", "Auth-Login-Attempt: 2"},
			},
		},
		{
			name:   "auth failure without wait closes",
			auth:   []string{authFail("Invalid login or password", "", "550 5.7.1")},
			steps:  []clientStep{{"AUTH PLAIN " + plainGood + "\r\n", "550 5.7.1 Invalid login or password\r\n"}},
			closed: true,
			reqs:   [][]string{{"Auth-Method: plain", "Auth-User: good", "Auth-Pass: pw"}},
		},
		{
			// Newer nginx (1.29.1): MAIL under none clears the
			// credentials of a failed AUTH; 1.22.1 sent them.
			name: "none after failed auth drops credentials",
			conf: "smtp_auth plain login none;",
			auth: []string{authFail("Invalid login or password", "1", ""), authPass},
			steps: []clientStep{
				{"AUTH PLAIN " + b64("\x00good\x00bad") + "\r\n", "535 5.7.0 Invalid login or password\r\n"},
				{"MAIL FROM:<a@b>\r\n", ok250},
				{"RCPT TO:<c@d>\r\n", rcptOK},
			},
			up: upEHLO + upXClient + "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
			reqs: [][]string{
				{"Auth-Method: plain", "Auth-User: good", "Auth-Pass: bad"},
				{"Auth-Method: none", "Auth-User: ", "Auth-Pass: "},
			},
		},
		{
			name: "rset and helo clear MAIL",
			conf: "smtp_auth none;",
			steps: []clientStep{
				{"MAIL FROM:<a@b>\r\n", ok250}, {"RSET\r\n", ok250}, {"RCPT TO:<c@d>\r\n", badSeq},
				{"MAIL FROM:<a@b>\r\n", ok250}, {"HELO x\r\n", "250 mx.example.test\r\n"}, {"RCPT TO:<c@d>\r\n", badSeq},
				{"MAIL FROM:<a@b>\r\n", ok250},
			},
		},
		{
			name: "vrfy expn help are handler-level",
			conf: "max_errors 2;",
			steps: []clientStep{
				{"VRFY a\r\n", invalid}, {"EXPN a\r\n", invalid}, {"HELP\r\n", invalid},
				{"DATA\r\n", invalid}, {"NOOP\r\n", ok250}, {"FOO bar\r\n", invalid},
			},
			closed: true,
		},
		{
			name:   "unknown words count",
			steps:  []clientStep{{"DATA\r\n", invalid}, {"\r\n", invalid}, {"NOOP1\r\n", invalid}, {"NOOPS\r\n", invalid}, {"STARTTLX\r\n", invalid}},
			closed: true,
			logs:   []string{"client sent too many invalid commands"},
		},
		{
			name:  "CR without LF",
			steps: []clientStep{{"NOOP\rX\r\n", invalid}, {"NOOP \r \r\n", invalid}, {"NOOP\r\n", ok250}},
		},
		{
			name: "argument limit",
			conf: "smtp_auth none;",
			steps: []clientStep{
				{"MAIL 1 2 3 4 5 6 7 8 9 10 11   \r\n", ok250},
				{"RSET\r\n", ok250},
				{"MAIL 1 2 3 4 5 6 7 8 9 10 11 12\r\n", invalid},
			},
		},
		{
			name:   "command split over reads",
			steps:  []clientStep{{"NO", ""}, {"OP\r", ""}, {"\nEH", ok250}, {"LO x\r\nQU", ehloDef}, {"IT\r\n", "221 2.0.0 Bye\r\n"}},
			closed: true,
		},
		{
			name:  "invalid command split over reads",
			steps: []clientStep{{"DA", ""}, {"TA x", ""}, {"\r\nNOOP\r\n", invalid + ok250}},
		},
		{
			name:   "too long command",
			conf:   "smtp_client_buffer 64;",
			steps:  []clientStep{{"MAIL FROM:<" + strings.Repeat("a", 60) + ">\r\n", invalid}},
			closed: true,
			logs:   []string{`client sent too long command "MAIL FROM:<` + strings.Repeat("a", 53) + `"`},
		},
		{
			name:   "pipelining longer than the buffer",
			conf:   "smtp_client_buffer 64;",
			steps:  []clientStep{{strings.Repeat("NOOP\r\n", 10) + "NOOP", strings.Repeat(ok250, 10) + invalid}},
			closed: true,
		},
		{
			name:   "line of exactly the buffer size",
			conf:   "smtp_client_buffer 16; smtp_auth none;",
			steps:  []clientStep{{"MAIL FROM:<a@b>\n", ok250}, {"HELO 0123456789\r\n", invalid}},
			closed: true,
		},
		{
			// What followed AUTH in the buffer goes upstream after the
			// login, and the upstream's answer to it comes back.
			name: "pipelined auth leaves the rest in the buffer",
			auth: []string{authPass},
			steps: []clientStep{
				{"EHLO x\r\nAUTH PLAIN " + plainGood + "\r\nMAIL FROM:<a@b>\r\n", ehloDef + loginOK + "250 2.1.0 ok\r\n"},
			},
			up: upLogin + "EHLO x\r\nMAIL FROM:<a@b>\r\n",
		},
		{
			name:   "quit",
			steps:  []clientStep{{"QUIT\r\nNOOP\r\n", "221 2.0.0 Bye\r\n"}},
			closed: true,
		},
		{
			// ESMTP: the upstream gets EHLO; no XCLIENT, so the client's
			// HELO is not replayed; proxy_smtp_auth logs in with AUTH.
			name: "esmtp is sticky and STARTTLS forgets HELO",
			tls:  true,
			conf: "starttls on; xclient off; proxy_smtp_auth on;",
			auth: []string{authPass},
			steps: []clientStep{
				{"EHLO a\r\n", "250-mx.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"},
				{"STARTTLS\r\n", "220 2.0.0 Start TLS\r\n"},
				{tlsStep, ""},
				{"AUTH PLAIN " + plainGood + "\r\n", loginOK},
			},
			up: upEHLO + "AUTH PLAIN " + plainGood + "\r\n",
		},
		{
			name: "esmtp is sticky and STARTTLS forgets HELO, with xclient",
			tls:  true,
			conf: "starttls on;",
			auth: []string{authPass},
			steps: []clientStep{
				{"EHLO a\r\n", "250-mx.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"},
				{"STARTTLS\r\n", "220 2.0.0 Start TLS\r\n"},
				{tlsStep, ""},
				{"AUTH PLAIN " + plainGood + "\r\n", loginOK},
			},
			up: upLogin,
		},
		{
			name: "helo after ehlo",
			auth: []string{authPass},
			steps: []clientStep{
				{"EHLO a\r\n", ehloDef}, {"HELO b\r\n", "250 mx.example.test\r\n"},
				{"AUTH PLAIN " + plainGood + "\r\n", loginOK},
			},
			up: upLogin + "EHLO b\r\n",
		},
		{
			name: "helo only",
			conf: "xclient off;",
			auth: []string{authPass},
			steps: []clientStep{
				{"HELO b\r\n", "250 mx.example.test\r\n"},
				{"AUTH PLAIN " + plainGood + "\r\n", loginOK},
			},
			up: "HELO mx.example.test\r\n",
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each case has its own server; most of the time is End waiting
			e := startSMTP(t, tc.conf, tc.tls, tc.auth, tc.up)
			var cuts []int
			for _, st := range tc.steps {
				if st.c == tlsStep {
					break
				}
				cuts = append(cuts, len(st.c))
			}
			c := e.DialCut(t, 0, cuts...)
			if got := c.ReadN(len(greeting), 5*time.Second); got != greeting {
				t.Fatalf("greeting %q", got)
			}
			for i, st := range tc.steps {
				if st.c == tlsStep {
					if err := c.StartTLS(); err != nil {
						t.Fatalf("step %d: handshake: %v", i, err)
					}
					continue
				}
				if err := c.Send(st.c); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := c.ReadN(len(st.s), 5*time.Second); got != st.s {
					t.Fatalf("step %d: sent %q\n got %q\nwant %q", i, st.c, got, st.s)
				}
			}
			// A logged-in session ends when the upstream closes.
			if msg := c.End(tc.closed || tc.up != ""); msg != "" {
				t.Error(msg)
			}
			e.up.Wait()
			if got := e.up.Received(0); got != tc.up {
				t.Errorf("upstream got %q\n want %q", got, tc.up)
			}
			if tc.up != "" {
				if miss := e.Log.Wait(3*time.Second, "client logged in"); miss != "" {
					t.Errorf("log lacks %q:\n%s", miss, e.Log)
				}
			}
			checkRequests(t, e.auth.Requests(), tc.reqs)
			checkLogs(t, e.Log.String(), tc.logs)
		})
	}
}

// cram-md5: the challenge is the salt, which goes to auth_http.
func TestCRAMMD5(t *testing.T) {
	e := startSMTP(t, "smtp_auth plain login cram-md5;", false, []string{authPass}, upLogin)
	c := e.Dial(t, mailtest.Unix, 0)
	if got := c.ReadLine(5 * time.Second); got != greeting {
		t.Fatalf("greeting %q", got)
	}
	c.Send("AUTH CRAM-MD5\r\n") //nolint:errcheck
	line := c.ReadLine(5 * time.Second)
	if !strings.HasPrefix(line, "334 ") || !strings.HasSuffix(line, "\r\n") {
		t.Fatalf("challenge %q", line)
	}
	salt, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line[4:]))
	if err != nil || !regexp.MustCompile(`^<\d+\.\d+@mx\.example\.test>$`).Match(salt) {
		t.Fatalf("challenge %q salt %q", line, salt)
	}
	c.Send(b64("good 0123456789abcdef0123456789abcdef") + "\r\n") //nolint:errcheck
	if got := c.ReadLine(5 * time.Second); got != loginOK {
		t.Fatalf("reply %q", got)
	}
	if msg := c.End(true); msg != "" {
		t.Error(msg)
	}
	e.up.Wait()
	if got := e.up.Received(0); got != upLogin {
		t.Errorf("upstream got %q", got)
	}
	checkRequests(t, e.auth.Requests(), [][]string{{"Auth-Method: cram-md5", "Auth-User: good",
		"Auth-Pass: 0123456789abcdef0123456789abcdef", "Auth-Salt: " + string(salt)}})
}

// Over TCP the client has an address: XCLIENT names it.
func TestXClientAddress(t *testing.T) {
	e := startSMTP(t, "", false, []string{authPass}, upEHLO+"XCLIENT ADDR=127.0.0.1 LOGIN=good NAME=[UNAVAILABLE]\r\n")
	c := e.Dial(t, mailtest.TCP, 0)
	if got := c.ReadLine(5 * time.Second); got != greeting {
		t.Fatalf("greeting %q", got)
	}
	c.Send("AUTH PLAIN " + b64("\x00good\x00pw") + "\r\n") //nolint:errcheck
	if got := c.ReadAll(5 * time.Second); got != loginOK {
		t.Fatalf("reply %q", got)
	}
	e.up.Wait()
	if got := e.up.Received(0); got != upEHLO+"XCLIENT ADDR=127.0.0.1 LOGIN=good NAME=[UNAVAILABLE]\r\n" {
		t.Errorf("upstream got %q", got)
	}
	checkRequests(t, e.auth.Requests(), [][]string{{"Client-IP: 127.0.0.1", "Client-Host: [UNAVAILABLE]"}})
}

// env is one server with its scripted auth_http server and upstream.
type env struct {
	*mailtest.Env
	auth *mailtest.AuthServer
	up   *mailtest.Upstream
}

// startSMTP builds the server with extra directives in its server block
// (and a certificate with tls); auth_http answers with auth, then refuses
// without Auth-Wait; the upstream expects and accepts upLines.
func startSMTP(t *testing.T, extra string, tls bool, auth []string, upLines string) *env {
	t.Helper()
	e := &env{auth: mailtest.StartAuthServer(t), up: upstreamFor(upLines)}
	if tls {
		cert, key := mailtest.Certificate(t)
		extra += " ssl_certificate " + cert + "; ssl_certificate_key " + key + ";"
	}
	body := strings.ReplaceAll(strings.Replace(mailBody, "%s", extra, 1), "{{auth}}", e.auth.URL())
	e.Env = mailtest.Start(t, mailtest.Config(t, body), mailtest.Options{
		Protocols:    map[string]mail.Protocol{"smtp": Protocol{}},
		DialUpstream: e.up.Dial,
	})
	var script [][]byte
	for _, a := range auth {
		script = append(script, []byte(a))
	}
	e.auth.Script([]byte(authFail("Invalid login or password", "", "")), script...)
	return e
}

// checkRequests compares the auth_http request heads with want: for each
// request, "Header: value" lines it must have (value decoded) and
// "!Header" ones it must not.
func checkRequests(t *testing.T, got [][]byte, want [][]string) {
	t.Helper()
	if want == nil {
		return
	}
	if len(got) != len(want) {
		t.Errorf("%d auth requests, want %d: %q", len(got), len(want), got)
		return
	}
	for i, hs := range want {
		for _, h := range hs {
			if name, ok := strings.CutPrefix(h, "!"); ok {
				if _, has := mailtest.Header(got[i], name); has {
					t.Errorf("request %d has %s:\n%s", i, name, got[i])
				}
				continue
			}
			name, value, _ := strings.Cut(h, ": ")
			if v, has := mailtest.Header(got[i], name); !has || v != value {
				t.Errorf("request %d: %s %q (%v), want %q:\n%s", i, name, v, has, value, got[i])
			}
		}
	}
}

// checkLogs looks for each of want, in order, on info lines of log that
// end with the auth state's context; no line may show the password "pw".
func checkLogs(t *testing.T, log string, want []string) {
	t.Helper()
	lines := strings.Split(log, "\n")
	rest := lines
	for _, w := range want {
		found := false
		for i, l := range rest {
			if strings.Contains(l, "[info] ") && strings.Contains(l, w+" while in auth state, client: unix:, server: 127.0.0.1:25") {
				found, rest = true, rest[i+1:]
				break
			}
		}
		if !found {
			t.Errorf("log %q not found in order in:\n%s", w, log)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "pw") {
			t.Errorf("password in log: %q", l)
		}
	}
}

func b64dec(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}

// STARTTLS on a server without a certificate is refused. nginx refuses such
// a configuration ("no ssl_certificate is defined for the starttls
// directive"), so only the handler alone can be asked.
func TestStartTLSWithoutCertificate(t *testing.T) {
	c := testConf()
	c.SSL.StartTLS = confparse.StartTLSOn
	f := newFixture(c)
	if err := f.h.Greet(); err != nil {
		t.Fatal(err)
	}
	cmd, n, err := f.h.Parse([]byte("STARTTLS\r\n"))
	if err != nil || n != 10 {
		t.Fatalf("Parse: %d %v", n, err)
	}
	next, err := f.h.Exec(cmd)
	if !errors.Is(err, mail.ErrRejected) {
		t.Fatalf("Exec: %v %v, want a refusal", next, err)
	}
	if got := string(f.h.ErrorReply(err)); got != invalid {
		t.Errorf("reply %q", got)
	}
}
