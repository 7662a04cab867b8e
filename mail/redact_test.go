package mail

import (
	"bytes"
	"testing"
)

func pop3Kind(w []byte) LineKind {
	switch string(bytes.ToUpper(w)) {
	case "PASS":
		return LineSecret
	case "AUTH":
		return LineAuth
	case "USER", "APOP", "QUIT", "CAPA", "NOOP", "STLS":
		return LinePlain
	}
	return LineUnknown
}

func TestRedactLines(t *testing.T) {
	tests := []struct {
		name       string
		in, want   string
		inExchange bool
	}{
		{"plain commands kept", "USER alice\r\nNOOP\r\nXXXX", "USER alice\r\nNOOP\r\nXXXX", false},
		{"pass argument hidden", "USER alice\r\nPASS se cret\r\nNOOPNOOP", "USER alice\r\nPASS ***\r\nNOOPNOOP", false},
		{"pass without argument", "PASS\r\nxx", "PASS\r\nxx", false},
		{"lowercase pass", "pass secret\nxx", "pass ***\nxx", false},
		{"initial response hidden", "AUTH PLAIN AGEAcw==\r\nNOOP\r\nxx", "AUTH PLAIN ***\r\nNOOP\r\nxx", false},
		// Until the next command, any line may be a response (AUTH LOGIN
		// with a user name still expects the password line).
		{"mechanism kept, next line hidden", "AUTH LOGIN dXNlcg==\r\nxx", "AUTH LOGIN ***\r\n***", false},
		{"exchange lines hidden", "AUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0\r\nQUIT\r\nxx", "AUTH LOGIN\r\n***\r\n***\r\nQUIT\r\nxx", false},
		{"exchange after auth-wait failure", "AUTH PLAIN\r\nAGEAcw==\r\nUSER b\r\nyyyy", "AUTH PLAIN\r\n***\r\nUSER b\r\nyyyy", false},
		{"unfinished response in an exchange", "c2VjcmV0c2VjcmV0", "***", true},
		{"unfinished response outside an exchange", "c2VjcmV0c2VjcmV0", "***", false},
		{"unfinished junk outside an exchange", "x{1}yyy", "x{1}yyy", false},
		// A SASL response whose AUTH came in an earlier buffer (or was
		// refused) is still hidden; base64-alphabet junk that does not
		// decode to text is kept.
		{"response without its auth", "AGEAcw==\r\nZm9vYmFy\r\nNOOP\r\nxx", "***\r\n***\r\nNOOP\r\nxx", false},
		{"cut response without its auth", "XYZW\r\nAGEAc2VjcmV0cw", "XYZW\r\n***", false},
		{"response with a stray CR", "c2VjcmV0cw==\rX\r\nxx", "***\r\nxx", false},
		{"response with a trailing space", "c2VjcmV0cw== \r\nxx", "***\r\nxx", false},
		{"response with more tokens", "c2VjcmV0cw== x y\r\nxx", "***\r\nxx", false},
		{"response with a NUL after it", "c2VjcmV0cw==\x00\r\nxx", "***\r\nxx", false},
		{"short words kept", "TURN\r\nETRN x\r\nxx", "TURN\r\nETRN x\r\nxx", false},
		{"base64 junk kept", "NOOPNOOP\r\nXXXX\r\nxyz\r\n*\r\nxx", "NOOPNOOP\r\nXXXX\r\nxyz\r\n*\r\nxx", false},
		{"unfinished pass", "PASS secretsecret", "PASS ***", false},
	}
	for _, tt := range tests {
		got := string(RedactLines([]byte(tt.in), pop3Kind, tt.inExchange))
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func FuzzRedactLines(f *testing.F) {
	f.Add([]byte("AUTH PLAIN AGEAcw==\r\nPASS x\r\nzz"), true)
	f.Fuzz(func(t *testing.T, b []byte, inExchange bool) {
		out := RedactLines(b, pop3Kind, inExchange)
		if bytes.Count(out, []byte("\n")) != bytes.Count(b, []byte("\n")) {
			t.Fatalf("line count changed: %q -> %q", b, out)
		}
		if len(out) > len(b)+3*(bytes.Count(b, []byte("\n"))+1) {
			t.Fatalf("output grew too much: %q -> %q", b, out)
		}
	})
}
