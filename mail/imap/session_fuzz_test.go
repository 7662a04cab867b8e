package imap_test

import (
	"bytes"
	"testing"

	"mailgate/mail"
	"mailgate/mail/imap"
	"mailgate/mail/mailtest"
)

// Auth answers and upstream scripts the session fuzzers start from.
const (
	authOK     = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"
	authOKPass = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\nAuth-Pass: secret\r\n\r\n"
	authFail   = "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\nAuth-Wait: 1\r\n\r\n"
	authWait   = "HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n"
	upIMAP     = "* OK upstream ready\r\n\x00+ go ahead\r\n\x00+ go ahead\r\n\x00a1 OK LOGIN completed\r\n\x00* 1 EXISTS\r\n"
)

// FuzzIMAPSession runs whole IMAP sessions through the real engine (see
// mailtest.SessionFuzzer for the rules it checks).
func FuzzIMAPSession(f *testing.F) {
	sf := mailtest.NewSessionFuzzer(f, map[string]mail.Protocol{"imap": imap.Protocol{}}, `
		server {
			listen 127.0.0.1:143;
			protocol imap;
			auth_http {{auth}};
			imap_auth plain login cram-md5 external;
			imap_capabilities IMAP4rev1 SASL-IR;
			imap_client_buffer 256;
			max_errors 5;
			timeout 500ms;
			proxy_timeout 200ms;
		}`)
	// nginx closes after an invalid line that ends in "+}" only when its
	// LF is more than 4 bytes into the command buffer, which is rewound
	// when a read has been used up: where reads end decides.
	sf.SplitDependent = func(in mailtest.Input, whole, split, wl, sl string) bool {
		return mailtest.DefaultSplitDependent(in, whole, split, wl, sl) || bytes.Contains(in.Client, []byte("+}"))
	}
	seeds := []struct{ client, splits, auth, up string }{
		{"a1 CAPABILITY\r\na2 NOOP\r\na3 LOGOUT\r\n", "\x05", "", ""},
		{"a1 LOGIN alice secret\r\na2 SELECT INBOX\r\n", "\x03\x10", authOK, upIMAP},
		{"a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n", "\x00", authOK, upIMAP},
		{"a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\nx NOOP\r\n", "\x07", authOK, upIMAP},
		{"a1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n", "\x02", authOK, upIMAP},
		{"a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n", "", authFail + "\x00" + authOK, upIMAP},
		{"a1 AUTHENTICATE LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n", "\x01", authWait + "\x00" + authOK, upIMAP},
		{"a1 AUTHENTICATE CRAM-MD5\r\nYWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n", "\x09", authOKPass, upIMAP},
		{"a1 AUTHENTICATE EXTERNAL\r\nYWxpY2U=\r\n", "", authOKPass, upIMAP},
		{"a1 LOGIN alice bad\r\na2 LOGIN alice secret\r\n", "\x0b", authFail + "\x00" + authOK, upIMAP},
		{"a1 STARTTLS\r\na2 FOO\r\n\"x\r\n{3}\r\n", "", "", ""},
		{"a1 LOGIN {18446744073709551615}\r\n" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "\x20", "", ""},
		{"a1 LOGIN alice secret\r\n", "", "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 99999999999999999999\r\n\r\n", upIMAP},
		{"a1 LOGIN alice secret\r\n", "", authOK, "* OK\r\n\x00a1 NO go away\r\n\x00"},
		// ID is unknown to nginx 1.22.1: invalid with imap_id off.
		{"a1 ID (\"name\" \"Thunderbird\")\r\na2 LOGIN alice secret\r\n", "\x04", authOK, upIMAP},
		{"a1 ID ({4}\r\nname NIL)\r\n", "", "", ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.client), []byte(s.splits), []byte(s.auth), []byte(s.up))
	}
	f.Fuzz(func(t *testing.T, client, splits, auth, up []byte) {
		sf.Run(t, mailtest.Input{Client: client, Splits: splits, Auth: auth, Upstream: up})
	})
}

// FuzzIMAPSessionID is FuzzIMAPSession with the mailgate-only imap_id and
// imap_forward_id on: ID before login, its fields to auth_http and an ID
// upstream before the login.
func FuzzIMAPSessionID(f *testing.F) {
	sf := mailtest.NewSessionFuzzer(f, map[string]mail.Protocol{"imap": imap.Protocol{}}, `
		server {
			listen 127.0.0.1:143;
			protocol imap;
			auth_http {{auth}};
			imap_auth plain login;
			imap_id on;
			imap_id_fields name mailgate version 1;
			imap_forward_id on;
			imap_client_buffer 256;
			max_errors 5;
			timeout 500ms;
			proxy_timeout 200ms;
		}`)
	sf.SplitDependent = func(in mailtest.Input, whole, split, wl, sl string) bool {
		return mailtest.DefaultSplitDependent(in, whole, split, wl, sl) || bytes.Contains(in.Client, []byte("+}"))
	}
	upID := "* OK upstream ready\r\n\x00* ID NIL\r\nmgid1 OK ID completed\r\n\x00+ go ahead\r\n\x00+ go ahead\r\n\x00a2 OK LOGIN completed\r\n\x00* 1 EXISTS\r\n"
	seeds := []struct{ client, splits, auth, up string }{
		{"a1 CAPABILITY\r\na2 ID NIL\r\na3 LOGOUT\r\n", "\x05", "", ""},
		{"a1 ID (\"name\" \"Thunderbird\" \"version\" \"115\")\r\na2 LOGIN alice secret\r\na3 SELECT INBOX\r\n", "\x03\x10", authOK, upID},
		{"a1 ID ({4}\r\nname {3+}\r\nx\ny)\r\na2 LOGIN alice secret\r\n", "\x01", authOK, upID},
		{"a1 ID (\"x-originating-ip\" \"6.6.6.6\")\r\na2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n", "", authOK, upID},
		{"a2 LOGIN alice secret\r\n", "", authOK, "* OK\r\n\x00mgid1 BAD no ID here\r\n\x00+ go\r\n\x00+ go\r\n\x00a2 OK\r\n"},
		{"a2 LOGIN alice secret\r\n", "", authOK, "* OK\r\n\x00* BYE\r\n\x00"},
		{"a1 ID (\"a\" \"b\" )\r\na1 ID (\"a\")\r\na1 ID\r\na1 ID {9999}\r\n", "", "", ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.client), []byte(s.splits), []byte(s.auth), []byte(s.up))
	}
	f.Fuzz(func(t *testing.T, client, splits, auth, up []byte) {
		sf.Run(t, mailtest.Input{Client: client, Splits: splits, Auth: auth, Upstream: up})
	})
}
