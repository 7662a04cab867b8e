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
		s := testSession()
		err := s.SASLPlain([]byte(tt.in))
		if err != tt.err {
			t.Errorf("SASLPlain(%q) err = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && (string(s.Login) != tt.login || string(s.Passwd) != tt.pass || s.AuthMethod != "plain") {
			t.Errorf("SASLPlain(%q) = %q/%q/%s", tt.in, s.Login, s.Passwd, s.AuthMethod)
		}
	}
}

func TestSASLCRAMMD5(t *testing.T) {
	s := testSession()
	ch := s.SASLCRAMMD5Challenge("334 ")
	if !regexp.MustCompile(`^334 [A-Za-z0-9+/=]+\r\n$`).Match(ch) {
		t.Fatalf("challenge %q", ch)
	}
	if !regexp.MustCompile(`^<\d+\.\d+@mx\.example\.test>$`).Match(s.Salt) {
		t.Fatalf("salt %q", s.Salt)
	}
	salt := append([]byte(nil), s.Salt...)
	s.SASLCRAMMD5Challenge("+ ")
	if !bytes.Equal(salt, s.Salt) {
		t.Fatal("salt changed between challenges on one connection")
	}
	// "user 0123456789abcdef0123456789abcdef"
	good := "dXNlciAwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="
	if err := s.SASLCRAMMD5([]byte(good)); err != nil || string(s.Login) != "user" || len(s.Passwd) != 32 || s.AuthMethod != "cram-md5" {
		t.Fatalf("good response: %v %q", err, s.Login)
	}
	// "user 0123" (digest too short)
	if err := s.SASLCRAMMD5([]byte("dXNlciAwMTIz")); err != ErrRejected {
		t.Fatalf("short digest: %v", err)
	}
}

func TestSASLLoginAndExternal(t *testing.T) {
	s := testSession()
	if err := s.SASLLoginUsername([]byte("dXNlcg==")); err != nil || string(s.Login) != "user" {
		t.Fatal(err, string(s.Login))
	}
	if err := s.SASLLoginPassword([]byte("cGFzcw==")); err != nil || string(s.Passwd) != "pass" || s.AuthMethod != "plain" {
		t.Fatal(err)
	}
	if err := s.SASLLoginPassword([]byte("*")); err != ErrRejected {
		t.Fatal("cancel must be rejected")
	}
	// nginx leaves the password of the earlier attempt in place (found by
	// the random differential test: Auth-Pass of an EXTERNAL request).
	if err := s.SASLExternal([]byte("")); err != nil || len(s.Login) != 0 || string(s.Passwd) != "pass" || s.AuthMethod != "external" {
		t.Fatal("empty EXTERNAL login is allowed, the password stays", err)
	}
}
