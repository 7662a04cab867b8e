package smtp_test

import (
	"strings"
	"testing"

	"mailgate/mail"
	"mailgate/mail/mailtest"
	"mailgate/mail/smtp"
)

const (
	authOK   = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 25\r\n\r\n"
	authFail = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\nAuth-Wait: 1\r\nAuth-Error-Code: 535 5.7.8\r\n\r\n"
	authWait = "HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n"
	upSMTP   = "220 upstream ESMTP\r\n\x00250-upstream\r\n250 XCLIENT ADDR NAME LOGIN\r\n\x00220 ok\r\n\x00250 2.1.0 ok\r\n\x00250 2.1.5 ok\r\n\x00354 go\r\n"
)

// FuzzSMTPSession runs whole SMTP sessions through the real engine (see
// mailtest.SessionFuzzer for the rules it checks), on a server that
// allows smtp_auth none, so that MAIL/RCPT reach auth_http and XCLIENT
// goes upstream.
func FuzzSMTPSession(f *testing.F) {
	sf := mailtest.NewSessionFuzzer(f, map[string]mail.Protocol{"smtp": smtp.Protocol{}}, `
		server {
			listen 127.0.0.1:25;
			protocol smtp;
			auth_http {{auth}};
			smtp_auth login plain cram-md5 external none;
			smtp_client_buffer 256;
			xclient on;
			max_errors 5;
			timeout 500ms;
			proxy_timeout 200ms;
		}`)
	// SMTP answers a pipelined command by what a read brought, as nginx
	// does (503 5.5.0 Improper use of SMTP command pipelining).
	sf.SplitDependent = func(in mailtest.Input, whole, split, wl, sl string) bool {
		return mailtest.DefaultSplitDependent(in, whole, split, wl, sl) ||
			strings.Contains(whole+split, "Improper use of SMTP command pipelining")
	}
	seeds := []struct{ client, splits, auth, up string }{
		{"EHLO client\r\nNOOP\r\nRSET\r\nQUIT\r\n", "\x05", "", ""},
		{"EHLO client\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b>\r\n", "\x03\x10", authOK, upSMTP},
		{"HELO client\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n", "\x01", authFail + "\x00" + authOK, upSMTP},
		{"EHLO x\r\nAUTH CRAM-MD5\r\nYWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n", "\x09", authOK, upSMTP},
		{"EHLO x\r\nAUTH EXTERNAL\r\nYWxpY2U=\r\n", "", authWait + "\x00" + authOK, upSMTP},
		{"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", "\x11", authOK, upSMTP},
		{"EHLO x\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<c@d>\r\nRCPT TO:<e@f>\r\n", "", authFail, ""},
		{"STARTTLS\r\nVRFY x\r\nEXPN y\r\nHELP\r\nFOO\r\n", "\x02", "", ""},
		{"EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "", authOK, "220 up\r\n\x00500 no\r\n\x00"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.client), []byte(s.splits), []byte(s.auth), []byte(s.up))
	}
	f.Fuzz(func(t *testing.T, client, splits, auth, up []byte) {
		sf.Run(t, mailtest.Input{Client: client, Splits: splits, Auth: auth, Upstream: up})
	})
}
