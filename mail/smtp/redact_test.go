package smtp

import (
	"io"
	"testing"

	"mailgate/mail"
)

func TestRedactLog(t *testing.T) {
	const ir = "AGFsaWNlAHNlY3JldA==" // \0alice\0secret
	tests := []struct {
		name, in, want string
	}{
		{"commands kept", "EHLO x\r\nMAIL FROM:<a@b>\r\nNOOP", "EHLO x\r\nMAIL FROM:<a@b>\r\nNOOP"},
		{"initial response", "AUTH PLAIN " + ir + "\r\nNOOP\r\nxx", "AUTH PLAIN ***\r\nNOOP\r\nxx"},
		{"exchange responses", "AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nQUIT", "AUTH LOGIN\r\n***\r\n***\r\nQUIT"},
		{"unfinished initial response", "AUTH PLAIN " + ir + ir, "AUTH PLAIN ***"},
	}
	for _, tt := range tests {
		s := mail.NewTestSession(testConf(), io.Discard)
		h := Protocol{}.NewHandler(s).(mail.LogRedactor)
		if got := string(h.RedactLog([]byte(tt.in))); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
