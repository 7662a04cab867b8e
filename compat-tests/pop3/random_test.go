package pop3

import (
	"bufio"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
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
//	go test ./compat-tests/pop3 -run Random -args -seeds 2000 -seedfrom 1
var (
	flagSeeds    = flag.Int("seeds", randomdiff.EnvInt("RANDOM_SEEDS", 40), "random differential test: number of seeds")
	flagSeedFrom = flag.Int("seedfrom", randomdiff.EnvInt("RANDOM_SEEDFROM", 1), "random differential test: first seed")
)

// Declared differences a random POP3 session can meet.
var (
	ruleSalt = randomdiff.Rule{Reason: saltDiffer,
		Norm: harness.Replace(`(?m)^(Auth-Method: external\\r\\n\nAuth-User: [^\n]*\nAuth-Pass: [^\n]*\n)Auth-Salt: [^\n]*\n`, "$1")}
	ruleRedacted = randomdiff.Rule{Reason: "mailgate keeps credentials out of the 'client sent too long command' log line (PASS arguments, AUTH initial and SASL responses); nginx logs the buffer as it is",
		Norm: harness.Replace(`client sent too long command ".*`, `client sent too long command "..."`)}
)

// startFakePOP3 is a POP3 upstream answering every line at once: the
// greeting, "+OK <word>" for each line, and a close after QUIT.
func startFakePOP3(t *testing.T) string {
	return harness.FakeServer(t, func(c net.Conn) {
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
	})
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
	*randomdiff.Gen
	salt bool
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
			if g.Chance(0.5) {
				b[i] ^= 0x20
			}
		}
		return string(b)
	}
	return w
}

func (g *gen) user() string {
	u := g.Pick("ok", "okuser", "ok2", "wait", "waitu", "nobody", "u"+g.Alnum(3), "", "a b", "us\xc3\xa9r", "x%y", "nul\x00u", strings.Repeat("l", 60))
	if strings.HasPrefix(u, "wait") {
		g.Wait = true
	}
	return u
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// digest is an APOP digest, well-formed or not.
func (g *gen) digest() string {
	switch g.R.Intn(5) {
	case 0:
		return strings.ToUpper(g.Hex32())
	case 1:
		return g.Hex32()[:31]
	case 2:
		return g.Hex32() + "0"
	case 3:
		return g.Pick("zz", "*", "=", b64s(g.Hex32()))
	}
	return g.Hex32()
}

// line returns one command line without its end.
func (g *gen) line() string {
	switch g.R.Intn(22) {
	case 0, 1:
		return g.word("USER") + " " + g.user()
	case 2, 3:
		return g.word("PASS") + " " + g.Password()
	case 4:
		return g.word("APOP") + " " + g.user() + " " + g.digest()
	case 5:
		return g.word("AUTH")
	case 6:
		return g.word("AUTH") + " " + g.word(g.Pick("PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL", "GSSAPI", "XOAUTH2"))
	case 7:
		switch g.R.Intn(4) {
		case 0:
			return g.word("AUTH") + " " + g.word("PLAIN") + " " + g.SASLResponse()
		case 1:
			return g.word("AUTH") + " " + g.word("LOGIN") + " " + b64s(g.user())
		case 2:
			return g.word("AUTH") + " " + g.word("EXTERNAL") + " " + b64s(g.user())
		}
		return g.word("AUTH") + " " + g.word("CRAM-MD5") + " " + b64s(g.user())
	case 8, 9, 10:
		return g.SASLResponse()
	case 11:
		return g.word("CAPA")
	case 12:
		return g.word("NOOP")
	case 13:
		if g.Chance(0.3) {
			return g.word("QUIT")
		}
		return g.word("NOOP")
	case 14:
		if g.only {
			return g.word("CAPA")
		}
		return g.word("STLS")
	case 15:
		return g.word(g.Pick("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 2", "RSET", "XTND XMIT", "LAST"))
	case 16:
		// extra and missing arguments
		return g.word(g.Pick("USER", "PASS", "APOP", "NOOP", "CAPA", "QUIT", "AUTH")) + g.Pick("", " ", "  a", " a b", " a b c", " a b c d", "   ")
	case 17:
		// broken command words
		return g.Pick("US", "USERX a", "U5ER a", " USER a", "USER\ta", "\xc3\xa9USR", "NO\x00P", "", " ", "*", "+", "CAP")
	case 18:
		// non-ASCII, NULs and tabs in arguments
		return g.word("USER") + " " + g.Pick("\xc3\xa9", "a\x00b", "t\tab", "\xff")
	case 19:
		// long lines: near and over the 128-byte buffer
		return g.word(g.Pick("NOOP", "USER", "XYZW")) + " " + strings.Repeat("x", 100+g.R.Intn(40))
	case 20:
		return g.word("PASS") + " " + g.Password() + " " + g.Pick("x", "y z")
	}
	return g.word("USER") + " " + g.Login(g.Pick("ok", "wait", "bob")) + "  "
}

func (g *gen) end() string {
	if g.Chance(0.75) {
		return "\r\n"
	}
	return g.Pick("\n", " \r\n", "\rX\r\n", "\r\r\n", "\x00\r\n", "\r\n\r\n")
}

// randomPOP3 draws the session of seed: a config, a burst of lines cut
// into random packets, and an ending (quiet, half-close or close).
func randomPOP3(seed int64) randomdiff.Case {
	r := rand.New(rand.NewSource(seed))
	cfg := pop3RandomConfigs[r.Intn(len(pop3RandomConfigs))]
	g := &gen{Gen: &randomdiff.Gen{R: r}, salt: cfg.salt, only: cfg.only}
	g.User = g.user
	var data strings.Builder
	for i, n := 0, 1+r.Intn(8); i < n; i++ {
		data.WriteString(g.line() + g.end())
	}
	steps := []harness.Step{harness.Lines(1)}
	var chunks []string
	s := data.String()
	for len(s) > 0 {
		k := len(s)
		if !g.Chance(0.25) {
			k = min(len(s), 1+r.Intn(48))
		}
		chunks = append(chunks, s[:k])
		steps = append(steps, harness.Send(s[:k]), harness.Quiet(randomdiff.QuietAfter(s[:k], g.Wait)))
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
	if randomdiff.FillsExactly(chunks, 128) {
		whole = randomdiff.ExactFill
	}
	rules := []randomdiff.Rule{ruleRedacted, randomdiff.RelayTiming}
	if cfg.salt {
		rules = append(rules, ruleSalt)
	}
	return randomdiff.Case{
		Scenario: harness.Scenario{
			Name:   fmt.Sprintf("seed %d (%s)", seed, cfg.name),
			Config: randomConfig(cfg.body),
			Steps:  steps,
		},
		Rules:   rules,
		Secrets: g.Secrets,
		Chunks:  chunks,
		Whole:   whole,
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
	var cases []randomdiff.Case
	for seed := int64(*flagSeedFrom); seed < int64(*flagSeedFrom+*flagSeeds); seed++ {
		cases = append(cases, randomPOP3(seed))
	}
	randomdiff.Run(t, suite, cases)
}
