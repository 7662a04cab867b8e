package pop3_test

import (
	"testing"

	"mailgate/mail"
	"mailgate/mail/mailtest"
	"mailgate/mail/pop3"
)

const (
	authOK     = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 110\r\n\r\n"
	authOKPass = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 110\r\nAuth-Pass: secret\r\n\r\n"
	authFail   = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\nAuth-Wait: 1\r\n\r\n"
	authWait   = "HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n"
	upPOP3     = "+OK upstream ready\r\n\x00+OK\r\n\x00+OK logged in\r\n\x00+OK 2 320\r\n"
)

// FuzzPOP3Session runs whole POP3 sessions through the real engine (see
// mailtest.SessionFuzzer for the rules it checks).
func FuzzPOP3Session(f *testing.F) {
	sf := mailtest.NewSessionFuzzer(f, map[string]mail.Protocol{"pop3": pop3.Protocol{}}, `
		server {
			listen 127.0.0.1:110;
			protocol pop3;
			auth_http {{auth}};
			pop3_auth plain apop cram-md5 external;
			max_errors 5;
			timeout 500ms;
			proxy_timeout 200ms;
		}`)
	seeds := []struct{ client, splits, auth, up string }{
		{"CAPA\r\nNOOP\r\nQUIT\r\n", "\x05", "", ""},
		{"USER alice\r\nPASS secret\r\nSTAT\r\n", "\x03\x10", authOK, upPOP3},
		{"USER alice\r\nPASS bad\r\nUSER alice\r\nPASS secret\r\n", "\x07", authFail + "\x00" + authOK, upPOP3},
		{"APOP alice 0123456789abcdef0123456789abcdef\r\n", "\x01", authOKPass, upPOP3},
		{"AUTH\r\nAUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n", "\x02", authOK, upPOP3},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "", authWait + "\x00" + authOK, upPOP3},
		{"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n", "\x01", authOK, upPOP3},
		{"AUTH CRAM-MD5\r\nYWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n", "\x09", authOKPass, upPOP3},
		{"AUTH EXTERNAL YWxpY2U=\r\n", "", authOKPass, upPOP3},
		{"STLS\r\nFOO\r\nUSER\r\n" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", "\x20", "", ""},
		{"USER alice\r\nPASS secret\r\n", "", authOK, "+OK\r\n\x00-ERR no\r\n\x00"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.client), []byte(s.splits), []byte(s.auth), []byte(s.up))
	}
	f.Fuzz(func(t *testing.T, client, splits, auth, up []byte) {
		sf.Run(t, mailtest.Input{Client: client, Splits: splits, Auth: auth, Upstream: up})
	})
}
