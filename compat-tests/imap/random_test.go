package imap_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TestIMAPRandomDifferential sends seeded random pipelines of IMAP lines,
// valid and broken, cut into random packets, to nginx and to mailgate and
// compares the transcripts. The grammar mixes the six verbs nginx knows with
// unknown ones, good and bad tags, quoted strings (closed, open, with
// escapes), literals ({n}, {n+}, {0}, bad ones), SASL continuation lines
// and odd line ends. It leaves out a byte other than SP/CR/LF after a
// literal: that is a declared difference (newer nginx), tested on its own.
// Logins go to an auth server that knows nobody, so they end in "NO" and a
// close.
func TestIMAPRandomDifferential(t *testing.T) {
	auth := harness.StartAuth(t, authserver.Script{})
	suite := &harness.Suite{
		Name: "imap random",
		Config: harness.Config{Mail: `
    server_name mx.example.test;
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
        imap_client_buffer 128;
        imap_auth plain login cram-md5 external;
        max_errors 4;
    }`},
		Auth:       auth,
		CompareLog: true,
		// mailgate redacts credentials in the too-long log line (declared
		// and tested in TestIMAPCompat); compare the rest.
		Normalize: []harness.Normalizer{harness.Replace(`client sent too long command ".*`, `client sent too long command "..."`)},
	}
	var scs []harness.Scenario
	for seed := int64(1); seed <= 40; seed++ {
		scs = append(scs, randomScenario(seed))
	}
	suite.Run(t, scs)
}

var (
	rAtoms = []string{"a", "x y", `"q"`, `"a b"`, `"un`, `\\`, `"e\\\"s"`, "{0}\r\nx", "{3}\r\nabc", "{2+}\r\nzz",
		"{1}\r\n\n", "{4x}", `""`, "AHRlc3QAYmFk", "dGVzdA==", "!!!", "*", "="}
	rVerbs = []string{"NOOP", "CAPABILITY", "LOGIN", "AUTHENTICATE", "LOGOUT", "STARTTLS", "noop", "ID", "SELECT", "LOG1N"}
	rMechs = []string{"PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL", "plain", "FOO"}
	rTags  = []string{"a", "A1", "t.2", "x_y-z", "", " ", "+", strings.Repeat("a", 33), strings.Repeat("b", 32)}
	rOdd   = []string{"\r\n", "\n", "garbage\r\n", "a\r\n", "+}\r\n", "x{1+}\r\n", "dGVzdA==\r\n", "*\r\n"}
	rEnds  = []string{"\r\n", "\r\n", "\n", " \r\n", "\rX\r\n"}
)

func randomLine(r *rand.Rand) string {
	if r.Float64() < 0.15 {
		return rOdd[r.Intn(len(rOdd))]
	}
	var b strings.Builder
	b.WriteString(rTags[r.Intn(len(rTags))])
	b.WriteByte(' ')
	v := rVerbs[r.Intn(len(rVerbs))]
	b.WriteString(v)
	n := r.Intn(5)
	if strings.EqualFold(v, "AUTHENTICATE") && r.Float64() < 0.8 {
		b.WriteString(" " + rMechs[r.Intn(len(rMechs))])
		n = r.Intn(2)
	}
	for i := 0; i < n; i++ {
		b.WriteString(" " + rAtoms[r.Intn(len(rAtoms))])
	}
	b.WriteString(rEnds[r.Intn(len(rEnds))])
	return b.String()
}

func randomScenario(seed int64) harness.Scenario {
	r := rand.New(rand.NewSource(seed))
	var data strings.Builder
	for i, n := 0, 1+r.Intn(7); i < n; i++ {
		data.WriteString(randomLine(r))
	}
	steps := []harness.Step{greet}
	s := data.String()
	for len(s) > 0 {
		k := min(len(s), 1+r.Intn(48))
		steps = append(steps, send(s[:k]), harness.Quiet(80*time.Millisecond))
		s = s[k:]
	}
	steps = append(steps, harness.Quiet(300*time.Millisecond))
	return harness.Scenario{Name: fmt.Sprintf("seed %d", seed), Steps: steps}
}
