package randomdiff

import (
	"encoding/base64"
	"math/rand"
	"strings"
)

// Gen holds what the POP3 and SMTP generators share: the seeded source,
// the passwords and credentials drawn (secrets that must never reach
// mailgate's log), and whether an Auth-Wait login was drawn.
type Gen struct {
	R *rand.Rand
	// Wait: an Auth-Wait user appears, so reads wait out the 1s pause.
	Wait    bool
	Secrets []string
	// User draws a login name; the protocol's generator sets it (and
	// sets Wait for an Auth-Wait user).
	User func() string
}

// Pick returns one of xs.
func (g *Gen) Pick(xs ...string) string { return xs[g.R.Intn(len(xs))] }

// Chance is true with probability p.
func (g *Gen) Chance(p float64) bool { return g.R.Float64() < p }

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// Alnum is n random letters and digits.
func (g *Gen) Alnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[g.R.Intn(len(alnum))]
	}
	return string(b)
}

// Password is a fresh random password, remembered as a secret.
func (g *Gen) Password() string {
	p := "Pw" + g.Alnum(10)
	g.Secrets = append(g.Secrets, p)
	return p
}

// Login notes a login the auth server answers with Auth-Wait.
func (g *Gen) Login(u string) string {
	if strings.HasPrefix(u, "wait") {
		g.Wait = true
	}
	return u
}

// Cred is plain in base64, remembered as a secret (it holds a password).
func (g *Gen) Cred(plain string) string {
	b := base64.StdEncoding.EncodeToString([]byte(plain))
	g.Secrets = append(g.Secrets, b)
	return b
}

// Hex32 is 32 random lower-case hex digits.
func (g *Gen) Hex32() string {
	const hx = "0123456789abcdef"
	b := make([]byte, 32)
	for i := range b {
		b[i] = hx[g.R.Intn(16)]
	}
	return string(b)
}

// BadB64 are responses nginx's base64 decoder refuses or reads oddly.
var BadB64 = []string{"%%%", "abcde", "a=b", "====", "YQ", "YWJj=ZGVm", "-_-_", "\xff\xfe", "Zm9v!"}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// SASLResponse is a SASL client response: PLAIN credentials (with or
// without an authorization identity), a LOGIN user or password, a
// CRAM-MD5 answer, a cancel, an empty line, broken base64 or PLAIN that
// decodes wrongly.
func (g *Gen) SASLResponse() string {
	switch g.R.Intn(10) {
	case 0:
		return g.Cred("\x00" + g.User() + "\x00" + g.Password())
	case 1:
		return g.Cred(g.Pick("", "admin") + "\x00" + g.User() + "\x00" + g.Password())
	case 2:
		return b64(g.User())
	case 3:
		return g.Cred(g.Password())
	case 4:
		return b64(g.User() + " " + g.Hex32())
	case 5:
		return "*"
	case 6:
		return ""
	case 7:
		return g.Pick(BadB64...)
	case 8:
		return b64(g.Pick("nonul", "\x00onlyuser", g.User()+" short"))
	}
	return g.Cred("\x00" + g.User() + "\x00" + g.Password())
}
