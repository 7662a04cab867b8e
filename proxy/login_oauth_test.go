package proxy

import (
	"encoding/base64"
	"testing"
)

func TestOAuthMessage(t *testing.T) {
	tests := []struct{ mech, user, token, want string }{
		{"XOAUTH2", "bob@example.com", "tok", "user=bob@example.com\x01auth=Bearer tok\x01\x01"},
		{"OAUTHBEARER", "alice", "tok", "n,a=alice,\x01auth=Bearer tok\x01\x01"},
		{"OAUTHBEARER", "a,b=c", "tok", "n,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01"},
		{"OAUTHBEARER", "", "tok", "n,,\x01auth=Bearer tok\x01\x01"},
	}
	for _, tt := range tests {
		if got := string(OAuthMessage(tt.mech, []byte(tt.user), []byte(tt.token))); got != tt.want {
			t.Errorf("OAuthMessage(%s, %q) = %q, want %q", tt.mech, tt.user, got, tt.want)
		}
	}
}

// The upstream login with the client's mechanism, through Login: what
// each upstream gets, and a refusal answered as nginx answers any.
func TestLoginOAuth(t *testing.T) {
	xo := base64.StdEncoding.EncodeToString([]byte("user=test@example.com\x01auth=Bearer secret\x01\x01"))
	ob := base64.StdEncoding.EncodeToString([]byte("n,a=test@example.com,\x01auth=Bearer secret\x01\x01"))
	mech := func(m string) func(*LoginParams) { return func(p *LoginParams) { p.SASLMech = m } }
	cases := []loginCase{
		{name: "pop3 xoauth2", params: with(pop3Params(), mech("XOAUTH2")),
			greeting: b("+OK hi\r\n"), replies: [][]byte{b("+OK in\r\n")},
			wantUp: "AUTH XOAUTH2 " + xo + "\r\n", wantHandoff: "+OK in\r\n"},
		{name: "imap oauthbearer", params: with(imapParams(), mech("OAUTHBEARER")),
			greeting: b("* OK hi\r\n"), replies: [][]byte{b("a2 OK in\r\n")},
			wantUp: "a2 AUTHENTICATE OAUTHBEARER " + ob + "\r\n", wantHandoff: "a2 OK in\r\n"},
		{name: "imap refused", params: with(imapParams(), mech("XOAUTH2")),
			greeting: b("* OK hi\r\n"), replies: [][]byte{b("a2 NO [AUTHENTICATIONFAILED] no\r\n")},
			wantUp: "a2 AUTHENTICATE XOAUTH2 " + xo + "\r\n", wantErr: true,
			wantLog: `upstream sent invalid response: "NO [AUTHENTICATIONFAILED] no"`, wantLevel: "error", wantAction: ActionReading},
		{name: "imap error challenge", params: with(imapParams(), mech("OAUTHBEARER")),
			greeting: b("* OK hi\r\n"), replies: [][]byte{b("+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n")},
			wantUp: "a2 AUTHENTICATE OAUTHBEARER " + ob + "\r\n", wantErr: true,
			wantLog: `upstream sent invalid response: "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0="`, wantLevel: "error", wantAction: ActionReading},
		{name: "pop3 refusal echoing the message", params: with(pop3Params(), mech("XOAUTH2")),
			greeting: b("+OK hi\r\n"), replies: [][]byte{b("-ERR bad " + xo + " secret\r\n")},
			wantUp: "AUTH XOAUTH2 " + xo + "\r\n", wantErr: true,
			wantLog: `upstream sent invalid response: "-ERR bad ******** ********"`, wantLevel: "error", wantAction: ActionReading},
		{name: "smtp xoauth2 with proxy_smtp_auth", params: with(smtpParams(), func(p *LoginParams) { p.SASLMech = "XOAUTH2"; p.SMTPAuth = true; p.XClient = false; p.ESMTP = true }),
			greeting: b("220 hi\r\n"), replies: [][]byte{b("250 hi\r\n"), b("235 ok\r\n")},
			wantUp: "EHLO mx.example.test\r\nAUTH XOAUTH2 " + xo + "\r\n", wantHandoff: ""},
		{name: "smtp without proxy_smtp_auth: XCLIENT only", params: with(smtpParams(), mech("XOAUTH2")),
			greeting: b("220 hi\r\n"), replies: [][]byte{b("250 hi\r\n"), b("220 ok\r\n")},
			wantUp: "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n", wantHandoff: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLoginCase(t, tc)
		})
	}
}
