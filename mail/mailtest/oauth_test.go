package mailtest_test

// OAUTHBEARER and XOAUTH2 (mailgate-only) through the real engine, the
// real auth_http client and the real upstream login, for all three
// protocols: capabilities, initial response or not, the token mapped to
// a password by auth_http or presented upstream as it came, the error
// challenge before a refusal, and tokens larger than nginx's buffers.

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"mailgate/mail/errlog"
	"mailgate/mail/mailtest"
)

func enc(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func bearerMsg(user, token string) string {
	return enc("n,a=" + user + ",\x01auth=Bearer " + token + "\x01\x01")
}
func xoauth2Msg(user, token string) string {
	return enc("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

const (
	oauthToken = "ya29.a0-Tok_en~+/="
	authOKPass = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\nAuth-Pass: secret\r\n\r\n"
	authOKNone = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"
	authBadTok = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid token\r\nAuth-Error-Code: 535 5.7.8\r\n\r\n"
	authBadTkW = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid token\r\nAuth-Wait: 1\r\n\r\n"
)

var (
	bearerChallenge = enc(`{"status":"invalid_token","schemes":"bearer"}`)
	xoauthChallenge = enc(`{"status":"401","schemes":"bearer"}`)
	bigToken        = strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 410) // 8200 bytes, a JWT's size
)

type exch struct{ send, want string }

type oauthCase struct {
	name, proto, conf string
	auth              []string
	up                []string
	steps             []exch
	closed            bool
	authHas           []string // in the first auth_http request
	upGot             string   // what the upstream received
}

var oauthGreeting = map[string]string{
	"imap": "* OK IMAP4 ready\r\n",
	"pop3": "+OK POP3 ready\r\n",
	"smtp": "220 mx.example.test ESMTP ready\r\n",
}

var oauthListen = map[string]string{"imap": "127.0.0.1:143", "pop3": "127.0.0.1:110", "smtp": "127.0.0.1:25"}

func runOAuth(t *testing.T, tc oauthCase) {
	t.Helper()
	as := mailtest.StartAuthServer(t)
	up := &mailtest.Upstream{Replies: tc.up}
	cfg := mailtest.Config(t, "server { listen "+oauthListen[tc.proto]+"; protocol "+tc.proto+"; auth_http "+as.URL()+"; "+tc.conf+" }")
	env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.Dial, LogLevel: errlog.Debug})
	var auths [][]byte
	for _, a := range tc.auth {
		auths = append(auths, []byte(a))
	}
	as.Script(nil, auths...)
	c := env.Dial(t, mailtest.Unix, 0)
	if g := c.ReadN(len(oauthGreeting[tc.proto]), 5*time.Second); g != oauthGreeting[tc.proto] {
		t.Fatalf("greeting %q", g)
	}
	for i, st := range tc.steps {
		if err := c.Send(st.send); err != nil {
			t.Fatalf("step %d: send: %v", i, err)
		}
		if got := c.ReadN(len(st.want), 5*time.Second); got != st.want {
			t.Fatalf("step %d: sent %.80q, got %.200q, want %.200q\nlog:\n%s", i, st.send, got, st.want, env.Log)
		}
	}
	if msg := c.End(tc.closed); msg != "" {
		t.Errorf("end: %s\nlog:\n%s", msg, env.Log)
	}
	up.Wait()
	if tc.upGot != "" || tc.up != nil {
		if got := up.Received(0); got != tc.upGot {
			t.Errorf("upstream got %.300q, want %.300q", got, tc.upGot)
		}
	} else if up.Dials() != 0 {
		t.Errorf("upstream dialled %d times", up.Dials())
	}
	reqs := as.Requests()
	for _, h := range tc.authHas {
		if len(reqs) == 0 || !strings.Contains(string(reqs[0]), h) {
			t.Errorf("auth request lacks %q: %q", h, reqs)
		}
	}
	// The token, alone or in its base64 message, never reaches the log,
	// not even at debug.
	log := env.Log.String()
	for _, tok := range []string{oauthToken, bigToken, "secret"} {
		if strings.Contains(log, tok) {
			t.Errorf("the log holds %q:\n%s", tok, log)
		}
	}
}

func TestOAuthIMAP(t *testing.T) {
	both := "imap_auth plain oauthbearer xoauth2;"
	cases := []oauthCase{
		{name: "capability", proto: "imap", conf: both,
			steps: []exch{{"a1 CAPABILITY\r\n", "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=OAUTHBEARER AUTH=XOAUTH2\r\na1 OK completed\r\n"}}},
		{name: "capability without oauth", proto: "imap", conf: "imap_auth plain cram-md5;",
			steps: []exch{{"a1 CAPABILITY\r\n", "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=CRAM-MD5\r\na1 OK completed\r\n"}}},
		{name: "not enabled", proto: "imap", conf: "imap_auth plain xoauth2;",
			steps: []exch{{"a1 AUTHENTICATE OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n", "a1 BAD invalid command\r\n"}}},
		{name: "oauthbearer IR, Auth-Pass", proto: "imap", conf: both,
			auth:    []string{authOKPass},
			up:      []string{"* OK up\r\n", "+ go\r\n", "+ go\r\n", "a1 OK done\r\n"},
			steps:   []exch{{"a1 AUTHENTICATE OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n", "a1 OK done\r\n"}},
			closed:  true,
			authHas: []string{"Auth-Method: oauthbearer\r\nAuth-User: alice\r\nAuth-Pass: " + oauthToken + "\r\nAuth-Protocol: imap\r\n"},
			upGot:   "a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n"},
		{name: "xoauth2 no IR, token upstream", proto: "imap", conf: both,
			auth: []string{authOKNone},
			up:   []string{"* OK up\r\n", "a1 OK done\r\n"},
			steps: []exch{{"a1 AUTHENTICATE XOAUTH2\r\n", "+ \r\n"},
				{xoauth2Msg("bob", oauthToken) + "\r\n", "a1 OK done\r\n"}},
			closed:  true,
			authHas: []string{"Auth-Method: xoauth2\r\nAuth-User: bob\r\nAuth-Pass: " + oauthToken + "\r\n"},
			upGot:   "a1 AUTHENTICATE XOAUTH2 " + xoauth2Msg("bob", oauthToken) + "\r\n"},
		{name: "oauthbearer token upstream", proto: "imap", conf: both,
			auth:   []string{authOKNone},
			up:     []string{"* OK up\r\n", "a1 OK done\r\n"},
			steps:  []exch{{"a1 AUTHENTICATE OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n", "a1 OK done\r\n"}},
			closed: true,
			upGot:  "a1 AUTHENTICATE OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n"},
		{name: "oauthbearer refused", proto: "imap", conf: both,
			auth: []string{authBadTok},
			steps: []exch{{"a1 AUTHENTICATE OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n", "+ " + bearerChallenge + "\r\n"},
				{"AQ==\r\n", "a1 NO Invalid token\r\n"}},
			closed: true},
		{name: "xoauth2 refused with Auth-Wait", proto: "imap", conf: both,
			auth: []string{authBadTkW},
			steps: []exch{{"a1 AUTHENTICATE XOAUTH2 " + xoauth2Msg("bob", oauthToken) + "\r\n", "+ " + xoauthChallenge + "\r\n"},
				{"\r\n", "a1 NO Invalid token\r\n"},
				{"a2 NOOP\r\n", "a2 OK completed\r\n"}}},
		{name: "8 KB token in the initial response", proto: "imap", conf: both,
			auth:    []string{authOKPass},
			up:      []string{"* OK up\r\n", "+ go\r\n", "+ go\r\n", "a1 OK done\r\n"},
			steps:   []exch{{"a1 AUTHENTICATE OAUTHBEARER " + bearerMsg("alice", bigToken) + "\r\n", "a1 OK done\r\n"}},
			closed:  true,
			authHas: []string{"Auth-Pass: " + bigToken + "\r\n"},
			upGot:   "a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n"},
		{name: "8 KB token after the challenge", proto: "imap", conf: both,
			auth: []string{authOKPass},
			up:   []string{"* OK up\r\n", "+ go\r\n", "+ go\r\n", "a1 OK done\r\n"},
			steps: []exch{{"a1 AUTHENTICATE XOAUTH2\r\n", "+ \r\n"},
				{xoauth2Msg("bob", bigToken) + "\r\n", "a1 OK done\r\n"}},
			closed:  true,
			authHas: []string{"Auth-User: bob\r\nAuth-Pass: " + bigToken + "\r\n"},
			upGot:   "a1 LOGIN {3}\r\nbob {6}\r\nsecret\r\n"},
		{name: "token beyond 16 KiB", proto: "imap", conf: both,
			steps:  []exch{{"a1 AUTHENTICATE OAUTHBEARER " + bearerMsg("alice", strings.Repeat(bigToken, 2)) + "\r\n", "a1 BAD invalid command\r\n"}},
			closed: true},
		{name: "other long lines stay too long", proto: "imap", conf: both,
			steps:  []exch{{"a1 LOGIN alice " + strings.Repeat("x", 5000) + "\r\n", "a1 BAD invalid command\r\n"}},
			closed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runOAuth(t, tc) })
	}
}

func TestOAuthPOP3(t *testing.T) {
	both := "pop3_auth plain oauthbearer xoauth2;"
	cases := []oauthCase{
		{name: "capa and auth list", proto: "pop3", conf: both,
			steps: []exch{{"CAPA\r\n", "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN OAUTHBEARER XOAUTH2\r\n.\r\n"},
				{"AUTH\r\n", "+OK methods supported:\r\nPLAIN\r\nLOGIN\r\nOAUTHBEARER\r\nXOAUTH2\r\n.\r\n"}}},
		{name: "capa without oauth", proto: "pop3", conf: "",
			steps: []exch{{"CAPA\r\n", "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n"}}},
		{name: "xoauth2 IR, Auth-Pass", proto: "pop3", conf: both,
			auth:    []string{authOKPass},
			up:      []string{"+OK up\r\n", "+OK\r\n", "+OK logged in\r\n"},
			steps:   []exch{{"AUTH XOAUTH2 " + xoauth2Msg("bob", oauthToken) + "\r\n", "+OK logged in\r\n"}},
			closed:  true,
			authHas: []string{"Auth-Method: xoauth2\r\nAuth-User: bob\r\nAuth-Pass: " + oauthToken + "\r\nAuth-Protocol: pop3\r\n"},
			upGot:   "USER bob\r\nPASS secret\r\n"},
		{name: "oauthbearer no IR, token upstream", proto: "pop3", conf: both,
			auth: []string{authOKNone},
			up:   []string{"+OK up\r\n", "+OK in\r\n"},
			steps: []exch{{"AUTH OAUTHBEARER\r\n", "+ \r\n"},
				{bearerMsg("alice", oauthToken) + "\r\n", "+OK in\r\n"}},
			closed: true,
			upGot:  "AUTH OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n"},
		{name: "xoauth2 refused", proto: "pop3", conf: both,
			auth: []string{authBadTok},
			steps: []exch{{"AUTH XOAUTH2 " + xoauth2Msg("bob", oauthToken) + "\r\n", "+ " + xoauthChallenge + "\r\n"},
				{"\r\n", "-ERR Invalid token\r\n"}},
			closed: true},
		{name: "oauthbearer refused with Auth-Wait", proto: "pop3", conf: both,
			auth: []string{authBadTkW},
			steps: []exch{{"AUTH OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n", "+ " + bearerChallenge + "\r\n"},
				{"AQ==\r\n", "-ERR Invalid token\r\n"},
				{"NOOP\r\n", "+OK\r\n"}}},
		{name: "8 KB token in the initial response", proto: "pop3", conf: both,
			auth:    []string{authOKPass},
			up:      []string{"+OK up\r\n", "+OK\r\n", "+OK logged in\r\n"},
			steps:   []exch{{"AUTH OAUTHBEARER " + bearerMsg("alice", bigToken) + "\r\n", "+OK logged in\r\n"}},
			closed:  true,
			authHas: []string{"Auth-Pass: " + bigToken + "\r\n"},
			upGot:   "USER alice\r\nPASS secret\r\n"},
		{name: "8 KB token after the challenge", proto: "pop3", conf: both,
			auth: []string{authOKPass},
			up:   []string{"+OK up\r\n", "+OK\r\n", "+OK logged in\r\n"},
			steps: []exch{{"AUTH XOAUTH2\r\n", "+ \r\n"},
				{xoauth2Msg("bob", bigToken) + "\r\n", "+OK logged in\r\n"}},
			closed: true,
			upGot:  "USER bob\r\nPASS secret\r\n"},
		{name: "disabled mechanism keeps 128 bytes", proto: "pop3", conf: "pop3_auth plain xoauth2;",
			steps:  []exch{{"AUTH OAUTHBEARER " + bearerMsg("alice", bigToken) + "\r\n", "-ERR invalid command\r\n"}},
			closed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runOAuth(t, tc) })
	}
}

func TestOAuthSMTP(t *testing.T) {
	both := "smtp_auth plain login oauthbearer xoauth2; proxy_smtp_auth on; xclient off;"
	ehlo := exch{"EHLO c.example\r\n", "250-mx.example.test\r\n250 AUTH PLAIN LOGIN OAUTHBEARER XOAUTH2\r\n"}
	cases := []oauthCase{
		{name: "ehlo", proto: "smtp", conf: both, steps: []exch{ehlo}},
		{name: "ehlo without oauth", proto: "smtp", conf: "",
			steps: []exch{{"EHLO c.example\r\n", "250-mx.example.test\r\n250 AUTH PLAIN LOGIN\r\n"}}},
		{name: "oauthbearer IR, Auth-Pass", proto: "smtp", conf: both,
			auth:    []string{authOKPass},
			up:      []string{"220 up\r\n", "250 up\r\n", "235 ok\r\n"},
			steps:   []exch{ehlo, {"AUTH OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n", "235 2.0.0 OK\r\n"}},
			closed:  true,
			authHas: []string{"Auth-Method: oauthbearer\r\nAuth-User: alice\r\nAuth-Pass: " + oauthToken + "\r\nAuth-Protocol: smtp\r\n"},
			upGot:   "EHLO mx.example.test\r\nAUTH PLAIN " + enc("\x00alice\x00secret") + "\r\n"},
		{name: "xoauth2 no IR, token upstream", proto: "smtp", conf: both,
			auth:   []string{authOKNone},
			up:     []string{"220 up\r\n", "250 up\r\n", "235 ok\r\n"},
			steps:  []exch{ehlo, {"AUTH XOAUTH2\r\n", "334 \r\n"}, {xoauth2Msg("bob", oauthToken) + "\r\n", "235 2.0.0 OK\r\n"}},
			closed: true,
			upGot:  "EHLO mx.example.test\r\nAUTH XOAUTH2 " + xoauth2Msg("bob", oauthToken) + "\r\n"},
		{name: "oauthbearer refused", proto: "smtp", conf: both,
			auth: []string{authBadTok},
			steps: []exch{ehlo, {"AUTH OAUTHBEARER " + bearerMsg("alice", oauthToken) + "\r\n", "334 " + bearerChallenge + "\r\n"},
				{"AQ==\r\n", "535 5.7.8 Invalid token\r\n"}},
			closed: true},
		{name: "xoauth2 refused with Auth-Wait", proto: "smtp", conf: both,
			auth: []string{authBadTkW},
			steps: []exch{ehlo, {"AUTH XOAUTH2 " + xoauth2Msg("bob", oauthToken) + "\r\n", "334 " + xoauthChallenge + "\r\n"},
				{"\r\n", "535 5.7.0 Invalid token\r\n"},
				{"NOOP\r\n", "250 2.0.0 OK\r\n"}}},
		{name: "8 KB token", proto: "smtp", conf: both,
			auth:   []string{authOKPass},
			up:     []string{"220 up\r\n", "250 up\r\n", "235 ok\r\n"},
			steps:  []exch{ehlo, {"AUTH XOAUTH2 " + xoauth2Msg("bob", bigToken) + "\r\n", "235 2.0.0 OK\r\n"}},
			closed: true,
			upGot:  "EHLO mx.example.test\r\nAUTH PLAIN " + enc("\x00bob\x00secret") + "\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runOAuth(t, tc) })
	}
}
