package pop3_test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/mail"
	"mailgate/mail/mailtest"
	"mailgate/mail/pop3"
)

// server is the mail{} body of every test; %s is the case's extra
// directives for its server block, which override the mail{} level ones.
const server = `
server_name mx.test;
auth_http "{{auth}}";
max_errors 3;
timeout 5s;
pop3_capabilities TOP USER UIDL;
proxy_timeout 5s;
server {
	listen 127.0.0.1:110;
	protocol pop3;
	%s
}`

// Auth_http answers.
const (
	authPass      = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 110\r\n\r\n"
	authPassWith  = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 110\r\nAuth-Pass: secret\r\n\r\n"
	authWaitFail  = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 1\r\n\r\n"
	authFailClose = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n\r\n"
)

// env is one server with its scripted auth_http server and upstream.
type env struct {
	*mailtest.Env
	auth *mailtest.AuthServer
	up   *mailtest.Upstream
}

// start builds the server with extra directives in its server block. The
// auth server answers with auth, then refuses without Auth-Wait; the
// upstream answers the lines in upLines as a POP3 server accepting
// USER u / PASS secret would.
func start(t *testing.T, extra string, auth []string, upLines string) *env {
	t.Helper()
	e := &env{auth: mailtest.StartAuthServer(t), up: upstreamFor(upLines)}
	body := strings.ReplaceAll(strings.Replace(server, "%s", extra, 1), "{{auth}}", e.auth.URL())
	e.Env = mailtest.Start(t, mailtest.Config(t, body), mailtest.Options{
		Protocols:    map[string]mail.Protocol{"pop3": pop3.Protocol{}},
		DialUpstream: e.up.Dial,
	})
	var script [][]byte
	for _, a := range auth {
		script = append(script, []byte(a))
	}
	e.auth.Script([]byte(authFailClose), script...)
	return e
}

// upstreamFor scripts an upstream that expects the lines of lines and
// answers each as a POP3 server accepting USER u / PASS secret; it closes
// after the last answer.
func upstreamFor(lines string) *mailtest.Upstream {
	u := &mailtest.Upstream{Replies: []string{"+OK fake ready\r\n"}}
	for _, l := range strings.SplitAfter(lines, "\r\n") {
		if l == "" {
			continue
		}
		var reply string
		switch {
		case strings.HasPrefix(l, "USER "):
			reply = "+OK\r\n"
		case l == "PASS secret\r\n":
			reply = "+OK maildrop ready\r\n"
		case strings.HasPrefix(l, "PASS "):
			reply = "-ERR [AUTH] upstream says no\r\n"
		case l == "STAT\r\n":
			reply = "+OK 0 0\r\n"
		case l == "QUIT\r\n":
			reply = "+OK bye\r\n"
		default:
			reply = "-ERR unknown\r\n"
		}
		u.Replies = append(u.Replies, reply)
	}
	return u
}

// run plays a transcript over a Unix pair whose reads are cut at each
// client step (up to a STARTTLS): "C: bytes" is sent, "S: bytes" must be
// received exactly, "S~ regexp" must match the next line, "STARTTLS"
// switches the client to TLS, and a final "CLOSED" expects the server to
// close; without it the session must still be open at the end.
func (e *env) run(t *testing.T, steps []string) {
	t.Helper()
	var cuts []int
	for _, st := range steps {
		if st == "STARTTLS" {
			break
		}
		if strings.HasPrefix(st, "C: ") {
			cuts = append(cuts, len(st)-3)
		}
	}
	c := e.DialCut(t, 0, cuts...)
	closed := false
	for i, st := range steps {
		switch {
		case strings.HasPrefix(st, "C: "):
			if err := c.Send(st[3:]); err != nil {
				t.Fatalf("step %d: write: %v", i, err)
			}
		case strings.HasPrefix(st, "S: "):
			if got := c.ReadN(len(st)-3, 5*time.Second); got != st[3:] {
				t.Fatalf("step %d: got %q, want %q", i, got, st[3:])
			}
		case strings.HasPrefix(st, "S~ "):
			if line := c.ReadLine(5 * time.Second); !regexp.MustCompile(st[3:]).MatchString(line) {
				t.Fatalf("step %d: got %q, want /%s/", i, line, st[3:])
			}
		case st == "STARTTLS":
			if err := c.StartTLS(); err != nil {
				t.Fatalf("step %d: handshake: %v", i, err)
			}
		case st == "CLOSED" && i == len(steps)-1:
			closed = true
		default:
			t.Fatalf("bad step %q", st)
		}
	}
	if msg := c.End(closed); msg != "" {
		t.Fatal(msg)
	}
}

// request renders an auth_http request head as "method user pass".
func request(head []byte) string {
	m, _ := mailtest.Header(head, "Auth-Method")
	u, _ := mailtest.Header(head, "Auth-User")
	p, _ := mailtest.Header(head, "Auth-Pass")
	return m + " " + u + " " + p
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	capaDefault = "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n"
	greet       = "+OK POP3 ready\r\n"
	invalid     = "-ERR invalid command\r\n"
	refused     = "-ERR Invalid login or password\r\n"
	ctx         = "client: unix:, server: 127.0.0.1:110"
)

func TestTranscripts(t *testing.T) {
	tests := []struct {
		name   string
		conf   string   // extra directives
		auth   []string // auth_http answers, then a refusal without Auth-Wait
		steps  []string
		up     string   // what the upstream must have received (and answers)
		reqs   []string // the auth_http requests as "method user pass"
		logs   []string
		nologs []string
	}{
		{name: "capa quit", steps: []string{"S: " + greet, "C: CAPA\r\n", "S: " + capaDefault, "C: QUIT\r\n", "S: +OK\r\n", "CLOSED"}},
		{name: "noop with arguments", steps: []string{"S: " + greet, "C: noop a b c\r\n", "S: +OK\r\n", "C: QUIT extra\r\n", "S: +OK\r\n", "CLOSED"}},
		{name: "auth list", steps: []string{"S: " + greet, "C: AUTH\r\n", "S: +OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n"}},
		{name: "apop only", conf: "pop3_auth apop;",
			steps: []string{`S~ ^\+OK POP3 ready <\d+\.\d+@mx\.test>\r\n$`, "C: AUTH\r\n", "S: +OK methods supported:\r\n.\r\n",
				"C: CAPA\r\n", "S: +OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL\r\n.\r\n"}},
		{name: "all methods capa", conf: "pop3_auth plain apop cram-md5 external; pop3_capabilities X-ONE user;",
			steps: []string{`S~ <`, "C: CAPA\r\n", "S: +OK Capability list follows\r\nX-ONE\r\nuser\r\nSASL PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n.\r\n"}},
		{name: "user pass relays", auth: []string{authPass}, steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: PASS secret\r\n",
			"S: +OK maildrop ready\r\n", "C: STAT\r\n", "S: +OK 0 0\r\n", "C: QUIT\r\n", "S: +OK bye\r\n", "CLOSED"},
			up:     "USER u\r\nPASS secret\r\nSTAT\r\nQUIT\r\n",
			reqs:   []string{"plain u secret"},
			logs:   []string{`client logged in, ` + ctx + `, login: "u", upstream: 127.0.0.1:110`, `proxied session done, ` + ctx + `, login: "u", upstream: 127.0.0.1:110`},
			nologs: []string{"secret"}},
		{name: "pipelined after pass goes upstream", auth: []string{authPass}, steps: []string{"S: " + greet, "C: USER u\r\nPASS secret\r\nSTAT\r\n",
			"S: +OK\r\n+OK maildrop ready\r\n+OK 0 0\r\n", "CLOSED"}, up: "USER u\r\nPASS secret\r\nSTAT\r\n"},
		{name: "bad password closes", steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: PASS bad\r\n", "S: " + refused, "CLOSED"},
			reqs: []string{"plain u bad"},
			logs: []string{`client login failed: "Invalid login or password" while in http auth state, ` + ctx + `, login: "u"`}},
		{name: "auth wait then retry", auth: []string{authWaitFail, authPass},
			steps: []string{"S: " + greet, "C: USER wait\r\n", "S: +OK\r\n", "C: PASS secret\r\nNOOP\r\n",
				"S: " + refused + "+OK\r\n", "C: PASS secret\r\n", "S: " + invalid, "C: USER wait\r\nPASS secret\r\n", "S: +OK\r\n+OK maildrop ready\r\n", "CLOSED"},
			up: "USER wait\r\nPASS secret\r\n", reqs: []string{"plain wait secret", "plain wait secret"}},
		{name: "pass first is handler-level", steps: []string{"S: " + greet, "C: PASS x\r\n", "S: " + invalid, "C: PASS x\r\n", "S: " + invalid,
			"C: PASS x\r\n", "S: " + invalid, "C: PASS x\r\n", "S: " + invalid, "C: QUIT\r\n", "S: +OK\r\n", "CLOSED"}},
		{name: "max errors", steps: []string{"S: " + greet, "C: STAT\r\n", "S: " + invalid, "C: PASS x\r\n", "S: " + invalid, "C: LIST\r\n", "S: " + invalid,
			"C: RETR 1\r\n", "S: " + invalid, "CLOSED"}, logs: []string{"client sent too many invalid commands while in auth state"}},
		{name: "user state refusals go back to start", steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: USER v\r\n", "S: " + invalid,
			"C: PASS secret\r\n", "S: " + invalid, "C: USER u\r\n", "S: +OK\r\n", "C: CAPA\r\n", "S: " + capaDefault}},
		{name: "user keeps spaces", steps: []string{"S: " + greet, "C: USER   a b  \r\n", "S: +OK\r\n", "C: PASS p w \r\n", "S: " + refused, "CLOSED"},
			reqs: []string{"plain a b   p w "}},
		{name: "line of 128 bytes", steps: []string{"S: " + greet, "C: NOOP " + strings.Repeat("x", 121) + "\r\n", "S: +OK\r\n"}},
		{name: "line of 129 bytes", steps: []string{"S: " + greet, "C: NOOP " + strings.Repeat("x", 122) + "\r\n", "S: " + invalid, "CLOSED"},
			logs: []string{`client sent too long command "NOOP xxx`}},
		{name: "too long password is not logged", steps: []string{"S: " + greet, "C: USER u\r\nPASS " + strings.Repeat("s", 130) + "\r\n", "S: +OK\r\n" + invalid, "CLOSED"},
			logs: []string{`client sent too long command "USER u` + "\r\n" + `PASS ***" while in auth state`}, nologs: []string{"ssssssss"}},
		{name: "too long sasl response is not logged", steps: []string{"S: " + greet, "C: AUTH PLAIN\r\n", "S: + \r\n", "C: " + strings.Repeat("QUFB", 40) + "\r\n", "S: " + invalid, "CLOSED"},
			logs: []string{`client sent too long command "***" while in auth state`}, nologs: []string{"QUFBQUFB"}},
		// The SASL response stays in the buffer (no compaction) after the
		// Auth-Wait failure, ahead of the over-long line that is logged.
		{name: "pipelined sasl response is not logged", auth: []string{authWaitFail}, steps: []string{"S: " + greet,
			"C: AUTH PLAIN\r\n" + b64("\x00wait\x00secret") + "\r\nNOOP " + strings.Repeat("x", 100),
			"S: + \r\n" + refused + invalid, "CLOSED"},
			logs: []string{`client sent too long command "AUTH PLAIN` + "\r\n***\r\n" + `NOOP xxx`}, nologs: []string{b64("\x00wait\x00secret")}},
		{name: "too long auth initial response is not logged", steps: []string{"S: " + greet, "C: AUTH PLAIN " + strings.Repeat("QUFB", 40) + "\r\n", "S: " + invalid, "CLOSED"},
			logs: []string{`client sent too long command "AUTH PLAIN ***" while in auth state`}, nologs: []string{"QUFBQUFB"}},
		{name: "no compaction", steps: []string{"S: " + greet, "C: " + strings.Repeat("NOOP\r\n", 21) + "NO",
			"S: " + strings.Repeat("+OK\r\n", 21) + invalid, "CLOSED"}},
		{name: "auth plain initial response", auth: []string{authPass},
			steps: []string{"S: " + greet, "C: AUTH PLAIN " + b64("z\x00u\x00secret") + "\r\n", "S: +OK maildrop ready\r\n", "CLOSED"},
			up:    "USER u\r\nPASS secret\r\n", reqs: []string{"plain u secret"}},
		{name: "auth plain continuation", auth: []string{authPass},
			steps: []string{"S: " + greet, "C: AUTH PLAIN\r\n", "S: + \r\n", "C: " + b64("\x00u\x00secret") + "\r\n", "S: +OK maildrop ready\r\n", "CLOSED"},
			up:    "USER u\r\nPASS secret\r\n", reqs: []string{"plain u secret"}},
		{name: "auth plain bad base64", steps: []string{"S: " + greet, "C: AUTH PLAIN\r\n", "S: + \r\n", "C: ***\r\n", "S: " + invalid, "C: NOOP\r\n", "S: +OK\r\n"},
			logs: []string{"client sent invalid base64 encoding in AUTH PLAIN command while in auth state"}},
		{name: "auth login", auth: []string{authPass},
			steps: []string{"S: " + greet, "C: AUTH LOGIN\r\n", "S: + VXNlcm5hbWU6\r\n", "C: " + b64("u") + "\r\n", "S: + UGFzc3dvcmQ6\r\n",
				"C: " + b64("secret") + "\r\n", "S: +OK maildrop ready\r\n", "CLOSED"},
			up: "USER u\r\nPASS secret\r\n", reqs: []string{"plain u secret"}},
		{name: "auth login with user", auth: []string{authPass},
			steps: []string{"S: " + greet, "C: auth login " + b64("u") + "\r\n", "S: + UGFzc3dvcmQ6\r\n",
				"C: " + b64("secret") + "\r\n", "S: +OK maildrop ready\r\n", "CLOSED"},
			up: "USER u\r\nPASS secret\r\n", reqs: []string{"plain u secret"}},
		{name: "auth login empty lines go to auth", steps: []string{"S: " + greet, "C: AUTH LOGIN\r\n", "S: + VXNlcm5hbWU6\r\n", "C: \r\n", "S: + UGFzc3dvcmQ6\r\n",
			"C: \r\n", "S: " + refused, "CLOSED"}, reqs: []string{"plain  "}},
		{name: "auth login too many args", steps: []string{"S: " + greet, "C: AUTH LOGIN a b\r\n", "S: " + invalid}},
		{name: "auth unknown mechanism", steps: []string{"S: " + greet, "C: AUTH GSSAPI\r\n", "S: " + invalid, "C: AUTH CRAM-MD5\r\n", "S: " + invalid,
			"C: AUTH EXTERNAL\r\n", "S: " + invalid, "C: APOP u d\r\n", "S: " + invalid, "C: NOOP\r\n", "S: +OK\r\n"}},
		{name: "cram-md5", conf: "pop3_auth plain cram-md5;",
			steps: []string{`S~ <`, "C: AUTH CRAM-MD5\r\n", `S~ ^\+ [A-Za-z0-9+/=]+\r\n$`}},
		{name: "external", conf: "pop3_auth plain external;", auth: []string{authPassWith},
			steps: []string{"S: " + greet, "C: AUTH EXTERNAL\r\n", "S: + VXNlcm5hbWU6\r\n", "C: " + b64("u") + "\r\n", "S: +OK maildrop ready\r\n", "CLOSED"},
			up:    "USER u\r\nPASS secret\r\n", reqs: []string{"external u "}},
		{name: "external initial response unchecked", auth: []string{authPassWith},
			steps: []string{"S: " + greet, "C: AUTH EXTERNAL " + b64("u") + "\r\n", "S: +OK maildrop ready\r\n", "CLOSED"},
			up:    "USER u\r\nPASS secret\r\n", reqs: []string{"external u "}},
		{name: "upstream refuses", auth: []string{authPass},
			steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: PASS nope\r\n", "S: -ERR internal server error\r\n", "CLOSED"},
			up:    "USER u\r\nPASS nope\r\n",
			logs:  []string{`upstream sent invalid response: "-ERR [AUTH] upstream says no" while reading response from upstream, ` + ctx + `, login: "u", upstream: 127.0.0.1:110`}},
		{name: "stls without tls", steps: []string{"S: " + greet, "C: STLS\r\n", "S: " + invalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own server; most of the time is End waiting
			e := start(t, tt.conf, tt.auth, tt.up)
			e.run(t, tt.steps)
			e.up.Wait()
			if got := e.up.Received(0); got != tt.up {
				t.Errorf("upstream got %q, want %q", got, tt.up)
			}
			var reqs []string
			for _, h := range e.auth.Requests() {
				reqs = append(reqs, request(h))
			}
			if tt.reqs != nil && strings.Join(reqs, "|") != strings.Join(tt.reqs, "|") {
				t.Errorf("auth requests %q, want %q", reqs, tt.reqs)
			}
			if miss := e.Log.Wait(3*time.Second, tt.logs...); miss != "" {
				t.Errorf("log lacks %q:\n%s", miss, e.Log)
			}
			for _, l := range tt.nologs {
				if strings.Contains(e.Log.String(), l) {
					t.Errorf("log has %q:\n%s", l, e.Log)
				}
			}
		})
	}
}

var saltRE = regexp.MustCompile(`<[^>]+>`)

func TestAPOPAndCRAMRequests(t *testing.T) {
	e := start(t, "pop3_auth plain apop cram-md5;", []string{authPassWith, authPassWith}, "USER u\r\nPASS secret\r\n")
	c := e.Dial(t, mailtest.Unix, 0)
	g := c.ReadLine(5 * time.Second)
	salt := saltRE.FindString(g)
	if salt == "" {
		t.Fatalf("greeting %q", g)
	}
	d := md5.Sum([]byte(salt + "secret"))
	c.Send("APOP u " + hex.EncodeToString(d[:]) + "\r\n") //nolint:errcheck
	if l := c.ReadLine(5 * time.Second); l != "+OK maildrop ready\r\n" {
		t.Fatalf("APOP reply %q", l)
	}
	if msg := c.End(true); msg != "" {
		t.Fatal(msg)
	}
	e.up.Wait()
	if got := e.up.Received(0); got != "USER u\r\nPASS secret\r\n" {
		t.Errorf("upstream got %q", got)
	}
	reqs := e.auth.Requests()
	if len(reqs) != 1 || request(reqs[0]) != "apop u "+hex.EncodeToString(d[:]) {
		t.Fatalf("requests %q", reqs)
	}
	if s, _ := mailtest.Header(reqs[0], "Auth-Salt"); s != salt {
		t.Errorf("Auth-Salt %q, want %q", s, salt)
	}

	// CRAM-MD5 uses the greeting's salt.
	c2 := e.Dial(t, mailtest.Unix, 0)
	g = c2.ReadLine(5 * time.Second)
	salt = saltRE.FindString(g)
	c2.Send("AUTH CRAM-MD5\r\n") //nolint:errcheck
	if ch := c2.ReadLine(5 * time.Second); ch != "+ "+b64(salt)+"\r\n" {
		t.Fatalf("challenge %q for salt %q", ch, salt)
	}
	m := hmac.New(md5.New, []byte("secret"))
	m.Write([]byte(salt))
	digest := hex.EncodeToString(m.Sum(nil))
	c2.Send(b64("u "+digest) + "\r\n") //nolint:errcheck
	if l := c2.ReadLine(5 * time.Second); l != "+OK maildrop ready\r\n" {
		t.Fatalf("CRAM-MD5 reply %q", l)
	}
	reqs = e.auth.Requests()
	if len(reqs) != 2 || request(reqs[1]) != "cram-md5 u "+digest {
		t.Fatalf("requests %q", reqs)
	}
	if s, _ := mailtest.Header(reqs[1], "Auth-Salt"); s != salt {
		t.Errorf("Auth-Salt %q, want %q", s, salt)
	}
}

func TestTimeoutIsOneDeadline(t *testing.T) {
	e := start(t, "timeout 600ms;", nil, "")
	c := e.Dial(t, mailtest.Unix, 0)
	begin := time.Now()
	c.ReadLine(5 * time.Second)
	// Activity does not re-arm the timer.
	for i := 0; i < 4; i++ {
		time.Sleep(100 * time.Millisecond)
		c.Send("NOOP\r\n") //nolint:errcheck
		c.ReadLine(5 * time.Second)
	}
	rest := c.ReadAll(5 * time.Second)
	if took := time.Since(begin); len(rest) != 0 || took > 900*time.Millisecond || took < 550*time.Millisecond {
		t.Errorf("closed after %v with %q; want about 600ms and nothing", took, rest)
	}
	if miss := e.Log.Wait(3*time.Second, "client timed out (110: Connection timed out) while in auth state, "+ctx+"\n"); miss != "" {
		t.Errorf("log lacks %q:\n%s", miss, e.Log)
	}
}

func TestStartTLS(t *testing.T) {
	for _, mode := range []string{"on", "only"} {
		t.Run(mode, func(t *testing.T) {
			cert, key := mailtest.Certificate(t)
			e := start(t, "starttls "+mode+"; ssl_certificate "+cert+"; ssl_certificate_key "+key+";", []string{authPass}, "USER u\r\nPASS secret\r\n")
			var steps []string
			if mode == "on" {
				steps = []string{"S: " + greet, "C: CAPA\r\n", "S: +OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n",
					"C: USER u\r\n", "S: +OK\r\n", "C: CAPA\r\n", "S: " + capaDefault, "C: QUIT\r\n", "S: +OK\r\n", "CLOSED"}
			} else {
				steps = []string{"S: " + greet, "C: CAPA\r\n", "S: +OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n",
					"C: USER u\r\n", "S: " + invalid, "C: AUTH\r\n", "S: " + invalid,
					"C: STLS\r\n", "S: +OK\r\n", "STARTTLS", "C: CAPA\r\n", "S: " + capaDefault, "C: STLS\r\n", "S: " + invalid,
					"C: USER u\r\n", "S: +OK\r\n", "C: PASS secret\r\n", "S: +OK maildrop ready\r\n", "CLOSED"}
			}
			e.run(t, steps)
			if mode != "only" {
				return
			}
			if miss := e.Log.Wait(3*time.Second, `client logged in, client: unix: using starttls, server: 127.0.0.1:110, login: "u"`); miss != "" {
				t.Errorf("log lacks %q:\n%s", miss, e.Log)
			}
			reqs := e.auth.Requests()
			if len(reqs) != 1 {
				t.Fatalf("auth requests %q", reqs)
			}
			if p, _ := mailtest.Header(reqs[0], "Auth-SSL-Protocol"); p != "TLSv1.3" {
				t.Errorf("auth request TLS info: %q", reqs[0])
			}
		})
	}
}
