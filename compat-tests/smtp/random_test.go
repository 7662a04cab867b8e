package smtp

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
	"mailgate/compat-tests/randomdiff"
)

// Seeds of the random differential test: -seeds N (default 40, or
// $RANDOM_SEEDS) starting at -seedfrom (default 1, or $RANDOM_SEEDFROM):
//
//	go test ./compat-tests/smtp -run Random -args -seeds 2000 -seedfrom 1
var (
	flagSeeds    = flag.Int("seeds", randomdiff.EnvInt("RANDOM_SEEDS", 40), "random differential test: number of seeds")
	flagSeedFrom = flag.Int("seedfrom", randomdiff.EnvInt("RANDOM_SEEDFROM", 1), "random differential test: first seed")
)

// Declared differences a random SMTP session can meet.
var (
	ruleRedacted = randomdiff.Rule{Reason: "mailgate keeps credentials out of the 'client sent too long command' log line (AUTH initial and SASL responses); nginx logs the buffer as it is",
		Norm: harness.Replace(`client sent too long command ".*`, `client sent too long command "..."`)}
	ruleRejectedRedacted = randomdiff.Rule{Reason: "mailgate keeps credentials out of the 'client was rejected' log line of a MAIL without auth (AUTH initial and SASL responses); nginx logs the buffer as it is",
		Norm: harness.Replace(`client was rejected: ".*`, `client was rejected: "..."`)}
	ruleCVE = randomdiff.Rule{Reason: "MAIL under none clears the failed AUTH's login and password as nginx 1.29.1+ does (CVE-2025-53859; 1.22.1 sends them to auth_http and XCLIENT)",
		Norm: normNoneLogin}
)

// rejectedMail: nginx 1.22.1 turns CR and LF into '_' inside its buffer
// when it logs a rejected MAIL, so commands pipelined after it in the same
// read run together; the session is excused whole (TestSMTPCompat's
// "rejected mail logs the buffer").
const rejectedMail = "nginx 1.22.1 turns CR/LF into '_' inside its buffer when it logs a rejected MAIL, so a command pipelined after it never ends; mailgate logs the same line and keeps the pipelined commands"

var (
	lastAuthNone = regexp.MustCompile(`(?s)== auth_http request \d+\n[^\n]*\n[^\n]*\nAuth-Method: none\\r\\n\n(?:[^=][^\n]*\n)*(?:== upstream|== error.log)`)
	noneCreds    = regexp.MustCompile(`(?m)^(Auth-Method: none\\r\\n\n)Auth-User: [^\n]*\nAuth-Pass: [^\n]*\n`)
	externalPass = regexp.MustCompile(`(?m)^(Auth-Method: external\\r\\n\nAuth-User: [^\n]*\n)Auth-Pass: [^\n]*\n`)
	xclientLogin = regexp.MustCompile(`(?m)^(>: XCLIENT ADDR=\S+) LOGIN=\S+`)
	logLogin     = regexp.MustCompile(`, login: "[^"\n]*"(, upstream: \S+)?`)
)

// normNoneLogin blanks the login and password of Auth-Method: none
// requests, and when the last auth request was a none one (the upstream
// session is the none path), the XCLIENT LOGIN= and the log lines' login
// (with the upstream, which nginx logs only after a login).
func normNoneLogin(s string) string {
	none := lastAuthNone.MatchString(s)
	s = noneCreds.ReplaceAllString(s, "${1}Auth-User: \\r\\n\nAuth-Pass: \\r\\n\n")
	// A later EXTERNAL request sends the password nginx kept (1.22.1) or
	// cleared with the MAIL (1.29.1+).
	s = externalPass.ReplaceAllString(s, "${1}Auth-Pass: \\r\\n\n")
	if none {
		s = xclientLogin.ReplaceAllString(s, "$1")
		s = logLogin.ReplaceAllString(s, "")
	}
	return s
}

// randomdiff.ResetRace: a proxy that closes on a client with unread bytes resets the
// connection, and the reset can drop replies still in flight to the
// client (a loopback race, the same for both proxies).
// startFakeSMTP is an SMTP upstream answering every line at once, with
// XCLIENT and AUTH, closing after QUIT.
func startFakeSMTP(t *testing.T) string {
	return harness.FakeServer(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
		io.WriteString(c, "220 fake.test ESMTP\r\n")    //nolint:errcheck
		r := bufio.NewReader(c)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			w, _, _ := strings.Cut(strings.TrimRight(l, "\r\n"), " ")
			switch strings.ToUpper(w) {
			case "EHLO":
				io.WriteString(c, "250-fake.test\r\n250-XCLIENT NAME ADDR LOGIN HELO\r\n250 AUTH PLAIN LOGIN\r\n") //nolint:errcheck
			case "HELO":
				io.WriteString(c, "250 fake.test\r\n") //nolint:errcheck
			case "XCLIENT":
				io.WriteString(c, "220 fake.test ESMTP\r\n") //nolint:errcheck
			case "AUTH":
				io.WriteString(c, "235 2.7.0 ok\r\n") //nolint:errcheck
			case "MAIL":
				io.WriteString(c, "250 2.1.0 ok\r\n") //nolint:errcheck
			case "RCPT":
				io.WriteString(c, "250 2.1.5 ok\r\n") //nolint:errcheck
			case "QUIT":
				io.WriteString(c, "221 2.0.0 bye\r\n") //nolint:errcheck
				return
			default:
				fmt.Fprintf(c, "502 5.5.2 %q\r\n", w)
			}
		}
	})
}

// randomAuth answers by the login's first letters: "ok..." succeeds,
// "wait..." fails with Auth-Wait: 1, anything else fails without one (a
// close). Auth-Method none answers by MAIL FROM: reject@ fails with
// Auth-Wait, deny@ fails without, anything else succeeds.
func randomAuth(up string) authserver.Script {
	host, port, _ := net.SplitHostPort(up)
	return authserver.Script{Handler: func(r *authserver.Request) *authserver.Behavior {
		if r.Get("Auth-Method") == "none" {
			from := r.Get("Auth-SMTP-From")
			switch {
			case strings.Contains(from, "reject@"):
				return &authserver.Behavior{Status: "Relay access denied", Wait: "1"}
			case strings.Contains(from, "deny@"):
				return &authserver.Behavior{Status: "Sender denied", ErrorCode: "554 5.7.1"}
			}
			return &authserver.Behavior{Status: "OK", Server: host, Port: port}
		}
		u := r.User()
		switch {
		case strings.HasPrefix(u, "ok"):
			return &authserver.Behavior{Status: "OK", Server: host, Port: port, Pass: "upw"}
		case strings.HasPrefix(u, "wait"):
			return &authserver.Behavior{Status: "Temporary failure", Wait: "1", ErrorCode: "451 4.7.0"}
		}
		return &authserver.Behavior{Status: "Invalid login or password"}
	}}
}

// The server configs a random SMTP session runs under.
var smtpRandomConfigs = []struct {
	name, body string
	buf        int  // smtp_client_buffer
	none       bool // smtp_auth none: MAIL is accepted
	only       bool // starttls only: STARTTLS would start a handshake, not sent
}{
	{"all methods", `
        smtp_auth plain login cram-md5 external;
        smtp_capabilities PIPELINING "SIZE 10485760" 8BITMIME;
        max_errors 5;`, 4096, false, false},
	{"none", `
        smtp_auth plain login none;
        max_errors 3;`, 4096, true, false},
	{"none xclient off", `
        smtp_auth none cram-md5;
        xclient off;
        starttls off;
        max_errors 4;`, 4096, true, false},
	{"small buffer", `
        smtp_auth login plain external;
        smtp_client_buffer 64;
        max_errors 2;`, 64, false, false},
	{"proxy_smtp_auth", `
        smtp_auth plain login;
        proxy_smtp_auth on;
        xclient off;
        max_errors 3;`, 4096, false, false},
	{"starttls only", `
        smtp_auth plain cram-md5 none;
        starttls only;
        ssl_certificate {{prefix}}cert.pem;
        ssl_certificate_key {{prefix}}key.pem;
        max_errors 3;`, 4096, true, true},
}

// gen draws one random SMTP session.
type gen struct {
	*randomdiff.Gen
	only bool
}

// word returns w in upper, lower or mixed case.
func (g *gen) word(w string) string {
	switch g.R.Intn(6) {
	case 0:
		return strings.ToLower(w)
	case 1:
		b := []byte(w)
		for i := range b {
			if b[i] >= 'A' && b[i] <= 'Z' && g.Chance(0.5) {
				b[i] += 'a' - 'A'
			}
		}
		return string(b)
	}
	return w
}

func (g *gen) user() string {
	u := g.Pick("ok", "okuser", "ok2", "wait", "waitu", "nobody", "u"+g.Alnum(3), "", "a b", "us\xc3\xa9r", "x+y=z", strings.Repeat("l", 40))
	if strings.HasPrefix(u, "wait") {
		g.Wait = true
	}
	return u
}

func (g *gen) from() string {
	f := g.Pick("a@example.org", "reject@example.org", "deny@example.org", "", "a@example.org> BODY=8BITMIME", "x y@example.org")
	if strings.HasPrefix(f, "reject") {
		g.Wait = true
	}
	return f
}

// line returns one command line without its end.
func (g *gen) line() string {
	switch g.R.Intn(24) {
	case 0, 1:
		return g.word(g.Pick("EHLO", "HELO")) + g.Pick(" client.example", " c", "", " a b", "  x  ")
	case 2:
		return g.word("AUTH")
	case 3, 4:
		return g.word("AUTH") + " " + g.word(g.Pick("PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL", "GSSAPI", "XOAUTH2"))
	case 5, 6:
		switch g.R.Intn(5) {
		case 0, 1:
			return g.word("AUTH") + " " + g.word("PLAIN") + " " + g.SASLResponse()
		case 2:
			return g.word("AUTH") + " " + g.word("LOGIN") + " " + b64(g.user())
		case 3:
			return g.word("AUTH") + " " + g.word("EXTERNAL") + " " + b64(g.user())
		}
		return g.word("AUTH") + " " + g.word("CRAM-MD5") + " " + b64(g.user())
	case 7, 8, 9:
		return g.SASLResponse()
	case 10, 11:
		return g.word("MAIL") + " " + g.word("FROM:") + "<" + g.from() + ">"
	case 12, 13:
		return g.word("RCPT") + " " + g.word("TO:") + "<" + g.Pick("b@example.com", "c@example.net", "") + ">"
	case 14:
		return g.word(g.Pick("RSET", "NOOP", "NOOP x", "RSET a b"))
	case 15:
		if g.Chance(0.3) {
			return g.word("QUIT")
		}
		return g.word("NOOP")
	case 16:
		if g.only {
			return g.word("NOOP")
		}
		return g.word("STARTTLS") + g.Pick("", " x")
	case 17:
		return g.word(g.Pick("VRFY a", "EXPN list", "HELP", "DATA", "BDAT 10 LAST", "ETRN x", "TURN"))
	case 18:
		// extra and missing arguments
		return g.word(g.Pick("MAIL", "RCPT", "HELO", "EHLO", "AUTH", "NOOP")) + g.Pick("", " ", " 1 2 3 4 5 6 7 8 9 10 11", " 1 2 3 4 5 6 7 8 9 10 11 12", "   ")
	case 19:
		// broken command words
		return g.Pick("EHL0 x", "MAI", "STARTTLSX", "START TLS", "\xc3\xa9HLO x", "NO\x00P", "", " ", "*", " EHLO x", "HELO\tx")
	case 20:
		// non-ASCII, NULs and tabs in arguments
		return g.word(g.Pick("EHLO", "MAIL", "RCPT")) + " " + g.Pick("\xc3\xa9", "a\x00b", "t\tab", "\xff")
	case 21:
		// long lines: around the small buffer
		return g.word(g.Pick("NOOP", "EHLO", "XYZW", "MAIL")) + " " + strings.Repeat("x", 40+g.R.Intn(40))
	case 22:
		return g.word("AUTH") + " " + g.word("LOGIN") + " " + b64(g.user()) + " " + g.Cred(g.Password())
	}
	return g.word("AUTH") + " " + g.word("PLAIN") + " " + g.Cred("\x00"+g.Login(g.Pick("ok", "wait", "bob"))+"\x00"+g.Password())
}

func (g *gen) end() string {
	if g.Chance(0.75) {
		return "\r\n"
	}
	return g.Pick("\n", " \r\n", "\rX\r\n", "\r\r\n", "\x00\r\n", "\r\n\r\n")
}

var mailLine = regexp.MustCompile(`(?i)^mail[ \r\n]`)

// mailPipelined reports whether a MAIL line ends (its LF) in a packet that
// goes on after it.
func mailPipelined(chunks []string) bool {
	data := strings.Join(chunks, "")
	var ends []int
	off := 0
	for _, c := range chunks {
		off += len(c)
		ends = append(ends, off)
	}
	start := 0
	for i := 0; i < len(data); i++ {
		if data[i] != '\n' {
			continue
		}
		line := data[start : i+1]
		start = i + 1
		if !mailLine.MatchString(line) {
			continue
		}
		for _, e := range ends {
			if i < e {
				if i+1 < e {
					return true
				}
				break
			}
		}
	}
	return false
}

// randomSMTP draws the session of seed: a config, a burst of lines cut
// into random packets, and an ending (quiet, half-close or close).
func randomSMTP(seed int64) randomdiff.Case {
	r := rand.New(rand.NewSource(seed))
	cfg := smtpRandomConfigs[r.Intn(len(smtpRandomConfigs))]
	g := &gen{Gen: &randomdiff.Gen{R: r}, only: cfg.only}
	g.User = g.user
	var data strings.Builder
	for i, n := 0, 1+r.Intn(8); i < n; i++ {
		data.WriteString(g.line() + g.end())
	}
	steps := []harness.Step{harness.Lines(1)}
	var chunks []string
	whole := ""
	s := data.String()
	for len(s) > 0 {
		k := len(s)
		if !g.Chance(0.25) {
			k = min(len(s), 1+r.Intn(48))
		}
		c := s[:k]
		chunks = append(chunks, c)
		steps = append(steps, harness.Send(c), harness.Quiet(randomdiff.QuietAfter(c, g.Wait)))
		s = s[k:]
	}
	// A MAIL refused for want of auth with bytes after it in the same
	// packet: nginx garbles them.
	if !cfg.none && mailPipelined(chunks) {
		whole = rejectedMail
	}
	if whole == "" && randomdiff.FillsExactly(chunks, cfg.buf) {
		whole = randomdiff.ExactFill
	}
	steps = append(steps, harness.Quiet(300*time.Millisecond))
	switch r.Intn(3) {
	case 0:
		steps = append(steps, harness.CloseWrite(), harness.Closed())
	case 1:
		steps = append(steps, harness.Close())
	}
	rules := []randomdiff.Rule{ruleRedacted, randomdiff.RelayTiming}
	if cfg.none {
		rules = append(rules, ruleCVE)
	} else {
		rules = append(rules, ruleRejectedRedacted)
	}
	return randomdiff.Case{
		Scenario: harness.Scenario{
			Name:   fmt.Sprintf("seed %d (%s)", seed, cfg.name),
			Config: randomConfig(cfg.body),
			Steps:  steps,
		},
		Rules:   rules,
		Whole:   whole,
		Secrets: g.Secrets,
		Chunks:  chunks,
	}
}

var randomCert, randomKey = harness.SelfSigned("mx.example.test")

func randomConfig(body string) *harness.Config {
	return &harness.Config{Mail: `
    server_name mx.example.test;
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port smtp}};
        protocol smtp;` + body + `
    }`, Files: map[string]string{"cert.pem": randomCert, "key.pem": randomKey}}
}

// TestSMTPRandomDifferential sends seeded random SMTP sessions (every
// command in any case, extra and missing arguments, SASL PLAIN, LOGIN,
// CRAM-MD5 and EXTERNAL with good and broken base64, '*' cancels, initial
// responses, the smtp_auth none path, long lines, bare LF, CR without LF,
// NULs, non-ASCII) cut into random packets, under several configs, with
// auth answers OK, failure with Auth-Wait and failure without, to nginx
// and mailgate with the same auth server and upstream, and compares the
// client bytes, auth_http requests, upstream bytes and error.log lines.
func TestSMTPRandomDifferential(t *testing.T) {
	up, rec := harness.Record(t, startFakeSMTP(t))
	auth := harness.StartAuth(t, randomAuth(up))
	suite := &harness.Suite{
		Name:       "smtp random",
		Auth:       auth,
		Upstreams:  map[string]*harness.Recorder{"fake": rec},
		CompareLog: true,
	}
	var cases []randomdiff.Case
	for seed := int64(*flagSeedFrom); seed < int64(*flagSeedFrom+*flagSeeds); seed++ {
		cases = append(cases, randomSMTP(seed))
	}
	randomdiff.Run(t, suite, cases)
}

func TestMailPipelined(t *testing.T) {
	tests := []struct {
		chunks []string
		want   bool
	}{
		{[]string{"MAIL FROM:<a@b>\r\n"}, false},
		{[]string{"MAIL FROM:<a@b>\r\nNOOP\r\n"}, true},
		{[]string{"mail FR", "OM:<a@b>\r\nN"}, true},
		{[]string{"MAIL FROM:<a@b>\r\n", "NOOP\r\n"}, false},
		{[]string{"NOOP\r\nMAILX\r\nRSET\r\n"}, false},
		{[]string{"NOOP mail x\r\nRSET\r\n"}, false},
	}
	for i, tt := range tests {
		if got := mailPipelined(tt.chunks); got != tt.want {
			t.Errorf("%d: mailPipelined(%q) = %v, want %v", i, tt.chunks, got, tt.want)
		}
	}
}

func TestNormNoneLogin(t *testing.T) {
	const req = "== auth_http request 1\nGET /auth HTTP/1.0\\r\\n\nHost: 127.0.0.1\\r\\n\nAuth-Method: none\\r\\n\nAuth-User: %s\\r\\n\nAuth-Pass: %s\\r\\n\nAuth-Protocol: smtp\\r\\n\n\\r\\n\n"
	const up = "== upstream fake connection 1\n>: XCLIENT ADDR=127.0.0.1%s NAME=[UNAVAILABLE]\\r\\n\n== error.log\n[info] *1 client logged in, client: 127.0.0.1, server: x%s\n"
	nginx := fmt.Sprintf(req, "bob", "pw") + fmt.Sprintf(up, " LOGIN=bob", `, login: "bob", upstream: 127.0.0.1:25`)
	mailgate := fmt.Sprintf(req, "", "") + fmt.Sprintf(up, "", "")
	if a, b := normNoneLogin(nginx), normNoneLogin(mailgate); a != b {
		t.Errorf("not equal after the rule:\n%s\n%s", a, b)
	}
	// An authenticated session keeps its XCLIENT LOGIN=.
	plain := strings.Replace(nginx, "Auth-Method: none", "Auth-Method: plain", 1)
	if !strings.Contains(normNoneLogin(plain), "LOGIN=bob") {
		t.Error("LOGIN= of a plain session removed")
	}
}
