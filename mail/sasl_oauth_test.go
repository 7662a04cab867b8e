package mail

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"mailgate/confparse"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const oauthBoth = confparse.AuthOAuthBearer | confparse.AuthXOAuth2

func TestParseOAuthBearer(t *testing.T) {
	tests := []struct {
		msg         string
		user, token string
		why         string
	}{
		{"n,a=user@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01", "user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", ""},
		// curl's message: host and port pairs before auth
		{"n,a=alice,\x01host=127.0.0.1\x01port=143\x01auth=Bearer tok.en-1_~+/\x01\x01", "alice", "tok.en-1_~+/", ""},
		{"y,a=alice,\x01auth=bearer  abc\x01\x01", "alice", "abc", ""},    // scheme in any case, spaces
		{"n,,\x01auth=Bearer abc\x01\x01", "", "abc", ""},                 // no authzid
		{"n,a=a=2Cb=3Dc,\x01auth=Bearer abc\x01\x01", "a,b=c", "abc", ""}, // saslname escapes
		{"p=tls-unique,a=alice,\x01auth=Bearer abc\x01\x01", "", "", "invalid gs2 header"},
		{"n,a=alice\x01auth=Bearer abc\x01\x01", "", "", "invalid gs2 header"},  // authzid not closed
		{"n,b=alice,\x01auth=Bearer abc\x01\x01", "", "", "invalid gs2 header"}, // not a=
		{"n,a=al=ice,\x01auth=Bearer abc\x01\x01", "", "", "invalid gs2 header"},
		{"n,a=alice,\x01auth=Bearer abc\x01", "", "", "invalid key/value pairs"}, // the final %x01 is missing
		{"n,a=alice,auth=Bearer abc\x01\x01", "", "", "invalid key/value pairs"},
		{"n,a=alice,\x01\x01", "", "", "no bearer token"},
		{"n,a=alice,\x01auth=Basic abc\x01\x01", "", "", "no bearer token"},
		{"n,a=alice,\x01auth=Bearer a b\x01\x01", "", "", "no bearer token"},
		{"n,a=alice,\x01auth=Bearer ab=c\x01\x01", "", "", "no bearer token"},
		{"n,a=alice,\x01auth=Bearer \x01\x01", "", "", "no bearer token"},
		{"n,a=alice,\x01au-th=Bearer abc\x01\x01", "", "", "invalid key/value pairs"},
		{"\x01", "", "", "invalid gs2 header"},
	}
	for _, tt := range tests {
		user, token, why := ParseOAuthBearer([]byte(tt.msg))
		if why != tt.why || string(user) != tt.user || string(token) != tt.token {
			t.Errorf("ParseOAuthBearer(%q) = %q, %q, %q; want %q, %q, %q", tt.msg, user, token, why, tt.user, tt.token, tt.why)
		}
	}
}

func TestParseXOAuth2(t *testing.T) {
	tests := []struct {
		msg         string
		user, token string
		why         string
	}{
		{"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01", "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", ""},
		{"auth=Bearer abc\x01user=bob\x01\x01", "bob", "abc", ""},
		{"user=bob\x01auth=Bearer abc\x01", "", "", "invalid key/value pairs"}, // the final %x01 is missing
		{"user=\x01auth=Bearer abc\x01\x01", "", "", "invalid user"},
		{"auth=Bearer abc\x01\x01", "", "", "invalid user"},
		{"user=bob\x01auth=abc\x01\x01", "", "", "no bearer token"},
		{"user=bob\x01\x01", "", "", "no bearer token"},
		{"user=bob auth=Bearer abc", "", "", "invalid key/value pairs"},
		{"", "", "", "invalid key/value pairs"},
	}
	for _, tt := range tests {
		user, token, why := ParseXOAuth2([]byte(tt.msg))
		if why != tt.why || string(user) != tt.user || string(token) != tt.token {
			t.Errorf("ParseXOAuth2(%q) = %q, %q, %q; want %q, %q, %q", tt.msg, user, token, why, tt.user, tt.token, tt.why)
		}
	}
}

// The exchanges: initial response or an empty challenge, refusal when the
// directive does not enable the mechanism, bad base64, and what auth_http
// will get.
func TestSASLOAuthExchanges(t *testing.T) {
	bearer := b64("n,a=alice,\x01auth=Bearer t0k3n\x01\x01")
	xo := b64("user=bob\x01auth=Bearer t0k3n2\x01\x01")
	tests := []struct {
		name       string
		enabled    confparse.AuthMethods
		mech       string
		args       []string
		lines      []string
		challenges []string
		login      string
		pass       string
		method     string
		err        error
	}{
		{"oauthbearer IR", oauthBoth, "OAUTHBEARER", []string{bearer}, nil, nil, "alice", "t0k3n", "oauthbearer", nil},
		{"oauthbearer no IR", confparse.AuthOAuthBearer, "oauthbearer", nil, []string{bearer}, []string{""}, "alice", "t0k3n", "oauthbearer", nil},
		{"xoauth2 IR", confparse.AuthXOAuth2, "XOAUTH2", []string{xo}, nil, nil, "bob", "t0k3n2", "xoauth2", nil},
		{"xoauth2 no IR", oauthBoth, "XOAuth2", nil, []string{xo}, []string{""}, "bob", "t0k3n2", "xoauth2", nil},
		{"oauthbearer disabled", confparse.AuthXOAuth2 | confparse.AuthPlain, "OAUTHBEARER", []string{bearer}, nil, nil, "", "", "", ErrRejected},
		{"xoauth2 disabled", confparse.AuthOAuthBearer, "XOAUTH2", nil, nil, nil, "", "", "", ErrRejected},
		{"nginx defaults refuse", confparse.AuthPlain | confparse.AuthLogin, "XOAUTH2", []string{xo}, nil, nil, "", "", "", ErrRejected},
		{"bad base64", oauthBoth, "XOAUTH2", []string{"!!"}, nil, nil, "", "", "", ErrRejected},
		{"bad message", oauthBoth, "OAUTHBEARER", nil, []string{b64("\x01")}, []string{""}, "", "", "", ErrRejected},
		{"two arguments", oauthBoth, "OAUTHBEARER", []string{bearer, "x"}, nil, nil, "", "", "", ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSession()
			ch, done, err := exchange(s, tt.enabled, tt.mech, tt.args, tt.lines...)
			if !errors.Is(err, tt.err) || (tt.err == nil) != done {
				t.Fatalf("err %v done %v, want %v", err, done, tt.err)
			}
			if strings.Join(ch, "|") != strings.Join(tt.challenges, "|") || len(ch) != len(tt.challenges) {
				t.Errorf("challenges %q, want %q", ch, tt.challenges)
			}
			if string(s.Login) != tt.login || string(s.Passwd) != tt.pass || s.AuthMethod != tt.method {
				t.Errorf("login %q pass %q method %q, want %q %q %q", s.Login, s.Passwd, s.AuthMethod, tt.login, tt.pass, tt.method)
			}
		})
	}
}

func TestOAuthCommand(t *testing.T) {
	tests := []struct {
		line    string
		verb    string
		enabled confparse.AuthMethods
		want    bool
	}{
		{"AUTH XOAUTH2 dXNlcj1", "AUTH", confparse.AuthXOAuth2, true},
		{"auth  oauthbearer bj", "AUTH", confparse.AuthOAuthBearer, true},
		{"AUTHENTICATE OAUTHBEARER\r\n", "AUTHENTICATE", confparse.AuthOAuthBearer, true},
		{"AUTH XOAUTH2 dXNlcj1", "AUTH", confparse.AuthOAuthBearer, false}, // not enabled
		{"AUTH XOAUTH2 dXNlcj1", "AUTH", confparse.AuthPlain, false},
		{"AUTH XOAUTH2X dXNlcj1", "AUTH", oauthBoth, false},
		{"AUTH PLAIN dXNlcj1", "AUTH", oauthBoth | confparse.AuthPlain, false},
		{"AUTHXOAUTH2 dXNlcj1", "AUTH", oauthBoth, false},
		{"MAIL FROM:<a>", "AUTH", oauthBoth, false},
		{"AUTH XOAUTH", "AUTH", oauthBoth, false}, // name cut by the buffer's end
	}
	for _, tt := range tests {
		if got := OAuthCommand([]byte(tt.line), tt.verb, tt.enabled); got != tt.want {
			t.Errorf("OAuthCommand(%q, %q, %b) = %v", tt.line, tt.verb, tt.enabled, got)
		}
	}
	var x SASL
	s := testSession()
	if n := OAuthBufferFor(&x, []byte("AUTH PLAIN "), "AUTH", oauthBoth|confparse.AuthPlain); n != 0 {
		t.Errorf("PLAIN grows to %d", n)
	}
	if _, err := x.Start(s, oauthBoth, []byte("XOAUTH2"), nil); err != nil {
		t.Fatal(err)
	}
	if n := OAuthBufferFor(&x, []byte("dXNlcj1"), "AUTH", oauthBoth); n != OAuthBuffer {
		t.Errorf("XOAUTH2 exchange grows to %d", n)
	}
	if _, err := x.Start(s, confparse.AuthLogin, []byte("LOGIN"), nil); err != nil {
		t.Fatal(err)
	}
	if n := OAuthBufferFor(&x, []byte("AUTH XOAUTH2 x"), "AUTH", oauthBoth); n != 0 {
		t.Errorf("LOGIN exchange grows to %d", n)
	}
}

// The error challenges decode to the JSON the RFCs describe.
func TestOAuthErrorChallenges(t *testing.T) {
	for name, want := range map[string]string{
		"OAUTHBEARER": `{"status":"invalid_token","schemes":"bearer"}`,
		"XOAUTH2":     `{"status":"401","schemes":"bearer"}`,
	} {
		m := mechanisms[name]
		got, err := base64.StdEncoding.DecodeString(string(m.ErrorChallenge))
		if err != nil || !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s challenge %q (%v), want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL"} {
		if mechanisms[name].ErrorChallenge != nil || mechanisms[name].AuthMethod != "" {
			t.Errorf("nginx mechanism %s has an OAuth error challenge", name)
		}
	}
}
