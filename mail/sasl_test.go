package mail

import (
	"bytes"
	"io"
	"regexp"
	"testing"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
)

func testSession() *Session {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return &Session{
		Conf: &confparse.Server{Core: confparse.CoreConf{ServerName: "mx.example.test"}},
		Log:  logrus.NewEntry(l),
	}
}

func TestDecodeBase64(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"dGVzdA==", "test", true},
		{"dGVzdA", "test", true},           // padding optional
		{"dGVzdA==garbage!", "test", true}, // stops at '='
		{"", "", true},
		{"dGVzd", "", false}, // 4n+1 symbols
		{"*", "", false},     // cancel
		{"dG Vz", "", false},
		{"dGVz\r\n", "", false},
	}
	for _, tt := range tests {
		got, ok := DecodeBase64([]byte(tt.in))
		if ok != tt.ok || (ok && string(got) != tt.want) {
			t.Errorf("DecodeBase64(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// exchange runs one SASL exchange: the mechanism with its arguments, then
// each line, and returns the challenges sent and the outcome.
func exchange(s *Session, enabled confparse.AuthMethods, mech string, args []string, lines ...string) (challenges []string, done bool, err error) {
	var x SASL
	var a [][]byte
	for _, v := range args {
		a = append(a, []byte(v))
	}
	st, err := x.Start(s, enabled, []byte(mech), a)
	for err == nil && !st.Done() {
		challenges = append(challenges, string(st.Challenge))
		if len(lines) == 0 {
			return challenges, false, nil
		}
		st, err = x.Next(s, []byte(lines[0]))
		lines = lines[1:]
	}
	if x.Active() {
		panic("exchange still active after it ended")
	}
	return challenges, err == nil, err
}

func TestSASLPlain(t *testing.T) {
	tests := []struct {
		in          string
		login, pass string
		err         error
	}{
		{"AHVzZXIAcGFzcw==", "user", "pass", nil},     // \0user\0pass
		{"YWRtaW4AdXNlcgBwYXNz", "user", "pass", nil}, // authzid ignored
		{"dXNlcgBwYXNz", "", "", ErrRejected},         // one NUL only
		{"dXNlcg==", "", "", ErrRejected},             // no NUL
		{"!!!!", "", "", ErrRejected},                 // bad base64
		{"AHVzZXIA", "user", "", nil},                 // empty password
	}
	for _, tt := range tests {
		for _, ir := range []bool{true, false} {
			s := testSession()
			var ch []string
			var err error
			if ir {
				ch, _, err = exchange(s, 0, "plain", []string{tt.in})
			} else {
				ch, _, err = exchange(s, 0, "PLAIN", nil, tt.in)
				if len(ch) != 1 || ch[0] != "" {
					t.Errorf("PLAIN challenges %q, want one empty", ch)
				}
			}
			if err != tt.err {
				t.Errorf("PLAIN %q (initial response %v) err = %v, want %v", tt.in, ir, err, tt.err)
				continue
			}
			if err == nil && (string(s.Login) != tt.login || string(s.Passwd) != tt.pass || s.AuthMethod != "plain") {
				t.Errorf("PLAIN %q = %q/%q/%s", tt.in, s.Login, s.Passwd, s.AuthMethod)
			}
		}
	}
}

func TestSASLCRAMMD5(t *testing.T) {
	s := testSession()
	if _, _, err := exchange(s, confparse.AuthPlain, "CRAM-MD5", nil); err != ErrRejected {
		t.Fatalf("CRAM-MD5 not enabled: %v", err)
	}
	if _, _, err := exchange(s, confparse.AuthCRAMMD5, "CRAM-MD5", []string{"eA=="}); err != ErrRejected {
		t.Fatalf("CRAM-MD5 with an initial response: %v", err)
	}
	ch, _, err := exchange(s, confparse.AuthCRAMMD5, "cram-md5", nil)
	if err != nil || len(ch) != 1 || !regexp.MustCompile(`^[A-Za-z0-9+/=]+$`).MatchString(ch[0]) {
		t.Fatalf("challenge %q, %v", ch, err)
	}
	if !regexp.MustCompile(`^<\d+\.\d+@mx\.example\.test>$`).Match(s.Salt) {
		t.Fatalf("salt %q", s.Salt)
	}
	if b, _ := DecodeBase64([]byte(ch[0])); !bytes.Equal(b, s.Salt) {
		t.Fatalf("challenge %q is not the salt %q", ch[0], s.Salt)
	}
	salt := append([]byte(nil), s.Salt...)
	exchange(s, confparse.AuthCRAMMD5, "CRAM-MD5", nil) //nolint:errcheck
	if !bytes.Equal(salt, s.Salt) {
		t.Fatal("salt changed between challenges on one connection")
	}
	// "user 0123456789abcdef0123456789abcdef"
	good := "dXNlciAwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="
	if _, done, err := exchange(s, confparse.AuthCRAMMD5, "CRAM-MD5", nil, good); err != nil || !done || string(s.Login) != "user" || len(s.Passwd) != 32 || s.AuthMethod != "cram-md5" {
		t.Fatalf("good response: %v %q", err, s.Login)
	}
	// "user 0123" (digest too short)
	if _, _, err := exchange(s, confparse.AuthCRAMMD5, "CRAM-MD5", nil, "dXNlciAwMTIz"); err != ErrRejected {
		t.Fatalf("short digest: %v", err)
	}
}

func TestSASLLoginAndExternal(t *testing.T) {
	s := testSession()
	ch, done, err := exchange(s, 0, "LOGIN", nil, "dXNlcg==", "cGFzcw==")
	if err != nil || !done || string(s.Login) != "user" || string(s.Passwd) != "pass" || s.AuthMethod != "plain" ||
		len(ch) != 2 || ch[0] != ChallengeUsername || ch[1] != ChallengePassword {
		t.Fatal(err, ch, string(s.Login))
	}
	if ch, _, err := exchange(s, 0, "LOGIN", []string{"dXNlcg=="}, "*"); err != ErrRejected || len(ch) != 1 || ch[0] != ChallengePassword {
		t.Fatal("cancel must be rejected", ch, err)
	}
	// nginx checks smtp_auth for EXTERNAL only without an initial response.
	if _, _, err := exchange(s, 0, "EXTERNAL", nil); err != ErrRejected {
		t.Fatal("EXTERNAL without an initial response, not enabled:", err)
	}
	// nginx leaves the password of the earlier attempt in place (found by
	// the random differential test: Auth-Pass of an EXTERNAL request).
	if _, done, err := exchange(s, 0, "EXTERNAL", []string{""}); err != nil || !done || len(s.Login) != 0 || string(s.Passwd) != "pass" || s.AuthMethod != "external" {
		t.Fatal("empty EXTERNAL login is allowed, the password stays", err)
	}
	if _, _, err := exchange(s, allMethods, "FOO", nil); err != ErrRejected {
		t.Fatal("unknown mechanism:", err)
	}
	if _, _, err := exchange(s, allMethods, "PLAIN", []string{"a", "b"}); err != ErrRejected {
		t.Fatal("two arguments:", err)
	}
}

const allMethods = confparse.AuthPlain | confparse.AuthLogin | confparse.AuthCRAMMD5 | confparse.AuthExternal
