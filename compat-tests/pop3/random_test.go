package pop3

import (
	"bufio"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// Seeds of the random differential test: -seeds N (default 40, or
// $RANDOM_SEEDS) starting at -seedfrom (default 1, or $RANDOM_SEEDFROM):
//
//	go test ./compat-tests/pop3 -run Random -args -seeds 2000 -seedfrom 1
var (
	flagSeeds    = flag.Int("seeds", envInt("RANDOM_SEEDS", 40), "random differential test: number of seeds")
	flagSeedFrom = flag.Int("seedfrom", envInt("RANDOM_SEEDFROM", 1), "random differential test: first seed")
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// declaredRule is a declared difference (newer nginx, a deliberate
// improvement) in the exact form it takes: norm rewrites both rendered
// transcripts so that only that difference disappears. A random session
// whose transcripts differ is excused only if they are identical after the
// rules the generator flagged for it.
type declaredRule struct {
	reason string
	norm   harness.Normalizer
}

// Declared differences a random POP3 session can meet.
var (
	ruleSalt = declaredRule{saltDiffer,
		harness.Replace(`(?m)^(Auth-Method: external\\r\\n\nAuth-User: [^\n]*\nAuth-Pass: [^\n]*\n)Auth-Salt: [^\n]*\n`, "$1")}
	ruleRedacted = declaredRule{"mailgate keeps credentials out of the 'client sent too long command' log line (PASS arguments, AUTH initial and SASL responses); nginx logs the buffer as it is",
		harness.Replace(`client sent too long command ".*`, `client sent too long command "..."`)}
)

// randomCase is one generated session.
type randomCase struct {
	sc harness.Scenario
	// rules are the declared differences this session may show.
	rules []declaredRule
	// secrets must never appear in mailgate's error.log: the passwords
	// sent and the base64 credentials holding them.
	secrets []string
	// chunks are the packets sent, for a reproducer.
	chunks []string
	// whole, if set, excuses any difference of the session (a declared
	// difference that changes everything after it).
	whole string
}

var loginField = regexp.MustCompile(`(?m), login: "[^\n]*?"(, |$)`)

// runRandom runs every case against nginx and mailgate and compares the
// transcripts like Suite.Run, excusing only the declared rules flagged for
// a case, in their exact form. It also asserts that no secret reached
// mailgate's error.log (every level the config logs).
func runRandom(t *testing.T, s *harness.Suite, cases []randomCase) {
	var total, identical, declared, failures int
	for _, rc := range cases {
		t.Run(rc.sc.Name, func(t *testing.T) {
			total++
			outcome := "failure"
			defer func() {
				switch {
				case t.Failed():
					failures++
				case outcome == "identical":
					identical++
				case outcome == "declared":
					declared++
				default:
					failures++
				}
			}()
			ng := s.RunOne(t, harness.Nginx, rc.sc)
			mg := s.RunOne(t, harness.Mailgate, rc.sc)
			// The login is logged (", login: ..."), as nginx does; a
			// client that sends credentials where a login goes (an
			// EXTERNAL or LOGIN user name) has them logged as its login.
			log := loginField.ReplaceAllString(mg.Proxy.ErrorLog(), "")
			for _, sec := range rc.secrets {
				if strings.Contains(log, sec) {
					t.Errorf("mailgate's error.log contains the secret %q:\n%s", sec, log)
				}
			}
			norms := append(append(harness.DefaultNormalizers(), s.Normalize...), rc.sc.Normalize...)
			d := harness.Diff(ng, mg, true, norms...)
			if d == "" {
				outcome = "identical"
			} else {
				// Name the one rule that explains the difference, else all.
				var reasons []string
				explained := false
				for _, r := range rc.rules {
					if harness.Diff(ng, mg, true, append(norms[:len(norms):len(norms)], r.norm)...) == "" {
						reasons, explained = []string{r.reason}, true
						break
					}
				}
				for _, r := range rc.rules {
					norms = append(norms, r.norm)
					if !explained {
						reasons = append(reasons, r.reason)
					}
				}
				if rc.whole != "" {
					outcome = "declared"
					t.Logf("declared difference (%s):\n%s", rc.whole, d)
				} else if explained || len(reasons) > 0 && harness.Diff(ng, mg, true, norms...) == "" {
					outcome = "declared"
					t.Logf("declared difference (%s):\n%s", strings.Join(reasons, "; "), d)
				} else if lostToReset(normRender(ng, norms), normRender(mg, norms)) {
					outcome = "declared"
					t.Logf("declared difference (%s):\n%s", resetRace, d)
				} else {
					t.Errorf("nginx and mailgate differ:\n%s", d)
				}
			}
			if testing.Verbose() || t.Failed() {
				t.Logf("nginx transcript:\n%s", ng.Render(true))
				if t.Failed() {
					t.Logf("mailgate transcript:\n%s", mg.Render(true))
					t.Logf("packets sent: %q", rc.chunks)
				}
			}
		})
	}
	line := fmt.Sprintf("%s compat: %d scenarios, %d identical, %d declared differences, %d failures",
		s.Name, total, identical, declared, failures)
	t.Log(line)
	fmt.Println(line)
	if f := os.Getenv("HARNESS_SUMMARY"); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(fh, line)
			fh.Close()
		}
	}
}

// resetRace: a proxy that closes on a client with unread bytes resets the
// connection, and the reset can drop replies still in flight to the
// client (a loopback race, the same for both proxies).
const resetRace = "the proxy closed a connection with unread client bytes; the reset dropped replies in flight (a race of the kernel, either proxy): one side's replies after the first difference are a prefix of the other's"

// normRender is the transcript as Diff compares it.
func normRender(tr *harness.Transcript, norms []harness.Normalizer) string {
	s := tr.Render(true)
	for _, n := range norms {
		s = n(s)
	}
	return s
}

// lostToReset reports whether the rendered transcripts a and b differ
// only by replies one of them lost to a reset: everything but the client
// section is equal, both connections were closed by the proxy, the client
// sent the same bytes, and from the first differing line on the replies
// of one are a prefix of the other's.
func lostToReset(a, b string) bool {
	ca, ra := splitClient(a)
	cb, rb := splitClient(b)
	if ra != rb || !strings.Contains(ca, "\n[closed]\n") || !strings.Contains(cb, "\n[closed]\n") {
		return false
	}
	la, lb := strings.SplitAfter(ca, "\n"), strings.SplitAfter(cb, "\n")
	i := 0
	for i < len(la) && i < len(lb) && la[i] == lb[i] {
		i++
	}
	sa, oa := splitReplies(la[i:])
	sb, ob := splitReplies(lb[i:])
	if oa != ob {
		return false
	}
	return strings.HasPrefix(sa, sb) || strings.HasPrefix(sb, sa)
}

// splitClient cuts a rendered transcript into its client section and the
// rest.
func splitClient(s string) (client, rest string) {
	if i := strings.Index(s, "\n== "); i >= 0 {
		return s[:i+1], s[i+1:]
	}
	return s, ""
}

// splitReplies separates received lines ("S: ") from the other client
// lines, leaving out the "[closed]" marker whose place depends on timing.
func splitReplies(lines []string) (replies, other string) {
	var r, o strings.Builder
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "S: "):
			r.WriteString(strings.TrimSuffix(l[3:], "\n"))
		case l == "[closed]\n":
		default:
			o.WriteString(l)
		}
	}
	return r.String(), o.String()
}

// quietAfter is how long the client listens after sending packet: an
// Auth-Wait answer holds the reply for a second, so a packet that ends a
// command waits that out when the session has such a login.
func quietAfter(packet string, wait bool) time.Duration {
	if wait && strings.Contains(packet, "\n") {
		return 1300 * time.Millisecond
	}
	return 80 * time.Millisecond
}

// relayTiming: when a proxy passes bytes on in pieces, where the
// upstream's replies fall between them is timing. The rule compares what
// went each way, not the interleaving.
var ruleRelayTiming = declaredRule{"the upstream's replies fell between the proxy's pieces at other times (timing, not bytes): each direction's bytes are equal", normUpstreamDirections}

// normUpstreamDirections renders each upstream connection as all bytes
// sent to the upstream, then all bytes received from it, then the markers.
func normUpstreamDirections(s string) string {
	lines := strings.SplitAfter(s, "\n")
	var out strings.Builder
	for i := 0; i < len(lines); {
		if !strings.HasPrefix(lines[i], "== upstream ") {
			out.WriteString(lines[i])
			i++
			continue
		}
		out.WriteString(lines[i])
		i++
		var up, down, other strings.Builder
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "== "); i++ {
			l := lines[i]
			switch {
			case strings.HasPrefix(l, ">: "):
				up.WriteString(strings.TrimSuffix(l[3:], "\n"))
			case strings.HasPrefix(l, "<: "):
				down.WriteString(strings.TrimSuffix(l[3:], "\n"))
			default:
				other.WriteString(l)
			}
		}
		for _, d := range []struct{ p, text string }{{">: ", up.String()}, {"<: ", down.String()}} {
			for _, piece := range strings.SplitAfter(d.text, `\n`) {
				if piece != "" {
					out.WriteString(d.p + piece + "\n")
				}
			}
		}
		out.WriteString(other.String())
	}
	return out.String()
}

// exactFill is the declared difference of TestIMAPCompat's "pipelined
// commands filling the buffer exactly": docs/engine.md.
const exactFill = "nginx stops answering when a read fills its buffer exactly with whole commands while more bytes wait (edge-triggered epoll) until more bytes arrive; mailgate goes on"

// fillsExactly models nginx's fixed command buffer of size bufSize over the
// packets: each read takes what fits, the buffer starts over once every
// byte in it is used (it ends in LF), and a full buffer ending in a
// partial line ends the session (too long). It reports whether a read
// fills the buffer exactly with whole lines while bytes are still
// waiting: the read nginx never returns to.
func fillsExactly(chunks []string, bufSize int) bool {
	used := 0
	pending := ""
	for _, c := range chunks {
		pending += c
		for len(pending) > 0 {
			take := min(bufSize-used, len(pending))
			last := pending[take-1]
			pending = pending[take:]
			used += take
			if used == bufSize && last != '\n' {
				return false
			}
			if used == bufSize && len(pending) > 0 {
				return true
			}
			if last == '\n' {
				used = 0
			}
		}
	}
	return false
}

// startFakePOP3 is a POP3 upstream answering every line at once: the
// greeting, "+OK <word>" for each line, and a close after QUIT.
func startFakePOP3(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
				io.WriteString(c, "+OK fake ready\r\n")         //nolint:errcheck
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					w, _, _ := strings.Cut(strings.TrimRight(l, "\r\n"), " ")
					fmt.Fprintf(c, "+OK %q\r\n", w)
					if strings.EqualFold(w, "QUIT") {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// randomAuth answers by the login's first letters: "ok..." succeeds (with
// an Auth-Pass, so APOP, CRAM-MD5 and EXTERNAL work too), "wait..." fails
// with Auth-Wait: 1, anything else fails without Auth-Wait (a close).
func randomAuth(up string) authserver.Script {
	host, port, _ := net.SplitHostPort(up)
	return authserver.Script{Handler: func(r *authserver.Request) *authserver.Behavior {
		u := r.User()
		switch {
		case strings.HasPrefix(u, "ok"):
			return &authserver.Behavior{Status: "OK", Server: host, Port: port, Pass: "upw"}
		case strings.HasPrefix(u, "wait"):
			return &authserver.Behavior{Status: "Temporary failure", Wait: "1"}
		}
		return &authserver.Behavior{Status: "Invalid login or password"}
	}}
}

// The server configs a random POP3 session runs under.
var pop3RandomConfigs = []struct {
	name, body string
	salt       bool // APOP/CRAM-MD5 enabled: a salt in the greeting
	only       bool // starttls only: STLS would start a handshake, not sent
}{
	{"all methods", `
        pop3_auth plain apop cram-md5 external;
        max_errors 3;`, true, false},
	{"default", `
        starttls off;
        max_errors 5;`, false, false},
	{"cram external", `
        pop3_auth plain cram-md5 external;
        pop3_capabilities TOP USER "UIDL X";
        max_errors 1;`, true, false},
	{"starttls only", `
        pop3_auth apop plain;
        starttls only;
        ssl_certificate {{prefix}}cert.pem;
        ssl_certificate_key {{prefix}}key.pem;
        max_errors 4;`, true, true},
}

// gen draws one random POP3 session.
type gen struct {
	r       *rand.Rand
	salt    bool
	only    bool
	wait    bool // an Auth-Wait user appears: reads wait out the 1s pause
	secrets []string
}

func (g *gen) pick(xs ...string) string { return xs[g.r.Intn(len(xs))] }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// word returns w in upper, lower or mixed case.
func (g *gen) word(w string) string {
	switch g.r.Intn(6) {
	case 0:
		return strings.ToLower(w)
	case 1:
		b := []byte(w)
		for i := range b {
			if g.chance(0.5) {
				b[i] ^= 0x20
			}
		}
		return string(b)
	}
	return w
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func (g *gen) alnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[g.r.Intn(len(alnum))]
	}
	return string(b)
}

// password is a fresh random password, remembered as a secret.
func (g *gen) password() string {
	p := "Pw" + g.alnum(10)
	g.secrets = append(g.secrets, p)
	return p
}

// login notes a login the auth server answers with Auth-Wait.
func (g *gen) login(u string) string {
	if strings.HasPrefix(u, "wait") {
		g.wait = true
	}
	return u
}

func (g *gen) user() string {
	u := g.pick("ok", "okuser", "ok2", "wait", "waitu", "nobody", "u"+g.alnum(3), "", "a b", "us\xc3\xa9r", "x%y", "nul\x00u", strings.Repeat("l", 60))
	if strings.HasPrefix(u, "wait") {
		g.wait = true
	}
	return u
}

// cred is a base64 credential holding a password: also a secret.
func (g *gen) cred(plain string) string {
	b := base64.StdEncoding.EncodeToString([]byte(plain))
	g.secrets = append(g.secrets, b)
	return b
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (g *gen) hex32() string {
	const hx = "0123456789abcdef"
	b := make([]byte, 32)
	for i := range b {
		b[i] = hx[g.r.Intn(16)]
	}
	return string(b)
}

// digest is an APOP digest, well-formed or not.
func (g *gen) digest() string {
	switch g.r.Intn(5) {
	case 0:
		return strings.ToUpper(g.hex32())
	case 1:
		return g.hex32()[:31]
	case 2:
		return g.hex32() + "0"
	case 3:
		return g.pick("zz", "*", "=", b64s(g.hex32()))
	}
	return g.hex32()
}

// badB64 are responses nginx's base64 decoder refuses or reads oddly.
var badB64 = []string{"%%%", "abcde", "a=b", "====", "YQ", "YWJj=ZGVm", "-_-_", "\xff\xfe", "Zm9v!"}

// saslResponse is a line answering a SASL challenge, good or not.
func (g *gen) saslResponse() string {
	switch g.r.Intn(10) {
	case 0:
		return g.cred("\x00" + g.user() + "\x00" + g.password())
	case 1:
		return g.cred(g.pick("", "admin") + "\x00" + g.user() + "\x00" + g.password())
	case 2:
		return b64s(g.user())
	case 3:
		return g.cred(g.password())
	case 4:
		return b64s(g.user() + " " + g.hex32())
	case 5:
		return "*"
	case 6:
		return ""
	case 7:
		return g.pick(badB64...)
	case 8:
		return b64s(g.pick("nonul", "\x00onlyuser", g.user()+" short"))
	}
	return g.cred("\x00" + g.user() + "\x00" + g.password())
}

// line returns one command line without its end.
func (g *gen) line() string {
	switch g.r.Intn(22) {
	case 0, 1:
		return g.word("USER") + " " + g.user()
	case 2, 3:
		return g.word("PASS") + " " + g.password()
	case 4:
		return g.word("APOP") + " " + g.user() + " " + g.digest()
	case 5:
		return g.word("AUTH")
	case 6:
		return g.word("AUTH") + " " + g.word(g.pick("PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL", "GSSAPI", "XOAUTH2"))
	case 7:
		switch g.r.Intn(4) {
		case 0:
			return g.word("AUTH") + " " + g.word("PLAIN") + " " + g.saslResponse()
		case 1:
			return g.word("AUTH") + " " + g.word("LOGIN") + " " + b64s(g.user())
		case 2:
			return g.word("AUTH") + " " + g.word("EXTERNAL") + " " + b64s(g.user())
		}
		return g.word("AUTH") + " " + g.word("CRAM-MD5") + " " + b64s(g.user())
	case 8, 9, 10:
		return g.saslResponse()
	case 11:
		return g.word("CAPA")
	case 12:
		return g.word("NOOP")
	case 13:
		if g.chance(0.3) {
			return g.word("QUIT")
		}
		return g.word("NOOP")
	case 14:
		if g.only {
			return g.word("CAPA")
		}
		return g.word("STLS")
	case 15:
		return g.word(g.pick("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 2", "RSET", "XTND XMIT", "LAST"))
	case 16:
		// extra and missing arguments
		return g.word(g.pick("USER", "PASS", "APOP", "NOOP", "CAPA", "QUIT", "AUTH")) + g.pick("", " ", "  a", " a b", " a b c", " a b c d", "   ")
	case 17:
		// broken command words
		return g.pick("US", "USERX a", "U5ER a", " USER a", "USER\ta", "\xc3\xa9USR", "NO\x00P", "", " ", "*", "+", "CAP")
	case 18:
		// non-ASCII, NULs and tabs in arguments
		return g.word("USER") + " " + g.pick("\xc3\xa9", "a\x00b", "t\tab", "\xff")
	case 19:
		// long lines: near and over the 128-byte buffer
		return g.word(g.pick("NOOP", "USER", "XYZW")) + " " + strings.Repeat("x", 100+g.r.Intn(40))
	case 20:
		return g.word("PASS") + " " + g.password() + " " + g.pick("x", "y z")
	}
	return g.word("USER") + " " + g.login(g.pick("ok", "wait", "bob")) + "  "
}

func (g *gen) end() string {
	if g.chance(0.75) {
		return "\r\n"
	}
	return g.pick("\n", " \r\n", "\rX\r\n", "\r\r\n", "\x00\r\n", "\r\n\r\n")
}

// randomPOP3 draws the session of seed: a config, a burst of lines cut
// into random packets, and an ending (quiet, half-close or close).
func randomPOP3(seed int64) randomCase {
	r := rand.New(rand.NewSource(seed))
	cfg := pop3RandomConfigs[r.Intn(len(pop3RandomConfigs))]
	g := &gen{r: r, salt: cfg.salt, only: cfg.only}
	var data strings.Builder
	for i, n := 0, 1+r.Intn(8); i < n; i++ {
		data.WriteString(g.line() + g.end())
	}
	steps := []harness.Step{harness.Lines(1)}
	var chunks []string
	s := data.String()
	for len(s) > 0 {
		k := len(s)
		if !g.chance(0.25) {
			k = min(len(s), 1+r.Intn(48))
		}
		chunks = append(chunks, s[:k])
		steps = append(steps, harness.Send(s[:k]), harness.Quiet(quietAfter(s[:k], g.wait)))
		s = s[k:]
	}
	steps = append(steps, harness.Quiet(300*time.Millisecond))
	switch r.Intn(3) {
	case 0:
		steps = append(steps, harness.CloseWrite(), harness.Closed())
	case 1:
		steps = append(steps, harness.Close())
	}
	whole := ""
	if fillsExactly(chunks, 128) {
		whole = exactFill
	}
	rules := []declaredRule{ruleRedacted, ruleRelayTiming}
	if cfg.salt {
		rules = append(rules, ruleSalt)
	}
	return randomCase{
		sc: harness.Scenario{
			Name:   fmt.Sprintf("seed %d (%s)", seed, cfg.name),
			Config: randomConfig(cfg.body),
			Steps:  steps,
		},
		rules:   rules,
		secrets: g.secrets,
		chunks:  chunks,
		whole:   whole,
	}
}

var randomCert, randomKey = harness.SelfSigned("mx.test")

func randomConfig(body string) *harness.Config {
	return &harness.Config{Mail: `
    server_name mx.test;
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;` + body + `
    }`, Files: map[string]string{"cert.pem": randomCert, "key.pem": randomKey}}
}

// TestPOP3RandomDifferential sends seeded random POP3 sessions (every
// command in any state and case, extra and missing arguments, SASL PLAIN,
// LOGIN, CRAM-MD5, EXTERNAL and APOP with good and broken base64, '*'
// cancels, initial responses, long lines, bare LF, CR without LF, NULs,
// non-ASCII) cut into random packets, under several configs, with auth
// answers OK, failure with Auth-Wait and failure without, to nginx and
// mailgate with the same auth server and upstream, and compares the
// client bytes, auth_http requests, upstream bytes and error.log lines.
func TestPOP3RandomDifferential(t *testing.T) {
	up, rec := harness.Record(t, startFakePOP3(t))
	auth := harness.StartAuth(t, randomAuth(up))
	suite := &harness.Suite{
		Name:       "pop3 random",
		Auth:       auth,
		Upstreams:  map[string]*harness.Recorder{"fake": rec},
		CompareLog: true,
	}
	var cases []randomCase
	for seed := int64(*flagSeedFrom); seed < int64(*flagSeedFrom+*flagSeeds); seed++ {
		cases = append(cases, randomPOP3(seed))
	}
	runRandom(t, suite, cases)
}

func TestFillsExactly(t *testing.T) {
	tests := []struct {
		chunks []string
		want   bool
	}{
		{[]string{"NOOP\r\nNOOP\r\n"}, false},
		{[]string{strings.Repeat("x", 126) + "\r\n"}, false},
		{[]string{strings.Repeat("x", 126) + "\r\nNOOP\r\n"}, true},
		{[]string{"USER " + strings.Repeat("x", 60), strings.Repeat("x", 61) + "\r\nNOOP\r\n"}, true},
		{[]string{"NOOP\r\n", strings.Repeat("x", 126) + "\r\nNOOP\r\n"}, true},
		{[]string{"NOOP\r\nNO", strings.Repeat("x", 126) + "\r\nNOOP\r\n"}, false},
		{[]string{strings.Repeat("x", 127) + "\r\nNOOP\r\n"}, false},
	}
	for i, tt := range tests {
		if got := fillsExactly(tt.chunks, 128); got != tt.want {
			t.Errorf("%d: fillsExactly(%q) = %v, want %v", i, tt.chunks, got, tt.want)
		}
	}
}

func TestLostToReset(t *testing.T) {
	const head = "== client\nS: +OK ready\\r\\nC: NOOP\\r\\n\n"
	const tail = "== error.log\n[info] *1 x\n"
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"lost last reply", head + "S: +OK\\r\\n\n[closed]\n" + tail, head + "S: +OK\\r\\n\nS: -ERR invalid command\\r\\n\n[closed]\n" + tail, true},
		{"lost all, client went on", head + "[closed]\nC: x\\r\\n\n" + tail, head + "S: -ERR\\r\\n\nC: x\\r\\n\n[closed]\n" + tail, true},
		{"other reply", head + "S: +OK\\r\\n\n[closed]\n" + tail, head + "S: -ERR\\r\\n\n[closed]\n" + tail, false},
		{"not closed", head + "S: +OK\\r\\n\n" + tail, head + "S: +OK\\r\\n\nS: -ERR\\r\\n\n" + tail, false},
		{"log differs", head + "S: +OK\\r\\n\n[closed]\n" + tail, head + "S: +OK\\r\\n\nS: -ERR\\r\\n\n[closed]\n" + tail + "[info] *1 y\n", false},
		{"client sent other bytes", head + "[closed]\nC: x\\r\\n\n" + tail, head + "S: -ERR\\r\\n\nC: y\\r\\n\n[closed]\n" + tail, false},
	}
	for _, tt := range tests {
		if got := lostToReset(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNormUpstreamDirections(t *testing.T) {
	a := "== upstream fake connection 1\n<: +OK\\r\\n\n>: USER a\\r\\nP\n<: +OK\\r\\n\n>: ASS b\\r\\n\n[proxy closed]\n== error.log\nx\n"
	b := "== upstream fake connection 1\n<: +OK\\r\\n\n>: USER a\\r\\nPASS b\\r\\n\n<: +OK\\r\\n\n[proxy closed]\n== error.log\nx\n"
	want := "== upstream fake connection 1\n>: USER a\\r\\n\n>: PASS b\\r\\n\n<: +OK\\r\\n\n<: +OK\\r\\n\n[proxy closed]\n== error.log\nx\n"
	if got := normUpstreamDirections(a); got != want {
		t.Errorf("a: got\n%s\nwant\n%s", got, want)
	}
	if got := normUpstreamDirections(b); got != want {
		t.Errorf("b: got\n%s\nwant\n%s", got, want)
	}
	c := strings.Replace(b, "PASS b", "PASS c", 1)
	if normUpstreamDirections(c) == want {
		t.Error("other bytes normalised away")
	}
}
