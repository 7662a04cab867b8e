package pop3

import (
	"bytes"
	"errors"
	"testing"

	"mailgate/mail"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		cont bool
		verb verb
		args []string
		n    int
		err  error
	}{
		{in: "USER a\r\n", verb: verbUSER, args: []string{"a"}, n: 8},
		{in: "user a\n", verb: verbUSER, args: []string{"a"}, n: 7},
		{in: "USER a b  \r\n", verb: verbUSER, args: []string{"a b  "}, n: 12},
		{in: "USER    lead\r\n", verb: verbUSER, args: []string{"lead"}, n: 14},
		{in: "PASS p w \r\n", verb: verbPASS, args: []string{"p w "}, n: 11},
		{in: "USER\r\n", verb: verbUSER, n: 6},
		{in: "USER \r\n", verb: verbUSER, n: 7},
		{in: "APOP u d\r\n", verb: verbAPOP, args: []string{"u", "d"}, n: 10},
		{in: "NOOP a b c\r\n", verb: verbNOOP, args: []string{"a", "b", "c"}, n: 12},
		{in: "NOOP a b c d\r\nNOOP\r\n", n: 14, err: mail.ErrInvalid},
		{in: "NOOP a  b\r\n", verb: verbNOOP, args: []string{"a", "b"}, n: 11},
		{in: "AUTH PLAIN x\r\nNOOP\r\n", verb: verbAUTH, args: []string{"PLAIN", "x"}, n: 14},
		{in: "CaPa\r\n", verb: verbCAPA, n: 6},
		{in: "STLS\r\n", verb: verbSTLS, n: 6},
		{in: "QUIT\n", verb: verbQUIT, n: 5},
		{in: "STAT\r\n", n: 6, err: mail.ErrInvalid},
		{in: "RETR 1\r\n", n: 8, err: mail.ErrInvalid},
		{in: "USERS a\r\n", n: 9, err: mail.ErrInvalid},
		{in: "US1R a\r\n", n: 8, err: mail.ErrInvalid},
		{in: "\r\n", n: 2, err: mail.ErrInvalid},
		{in: " USER a\r\n", n: 9, err: mail.ErrInvalid},
		{in: "NOOP\rX\r\n", n: 8, err: mail.ErrInvalid},
		{in: "USER a\rb\r\n", n: 10, err: mail.ErrInvalid},
		{in: "NOOP", err: mail.ErrNeedMore},
		{in: "NOOP\r", err: mail.ErrNeedMore},
		{in: "USER abc", err: mail.ErrNeedMore},
		{in: "XXXX never ends", err: mail.ErrNeedMore},
		{in: "", err: mail.ErrNeedMore},
		// SASL continuation lines: the whole line is arguments.
		{in: "dXNlcg==\r\n", cont: true, verb: verbContinue, args: []string{"dXNlcg=="}, n: 10},
		{in: "\r\n", cont: true, verb: verbContinue, args: []string{""}, n: 2},
		{in: "QUIT\r\n", cont: true, verb: verbContinue, args: []string{"QUIT"}, n: 6},
		{in: "a b\r\n", cont: true, verb: verbContinue, args: []string{"a", "b"}, n: 5},
		{in: " a\r\n", cont: true, verb: verbContinue, args: []string{"", "a"}, n: 4},
		{in: "a b c d\r\n", cont: true, n: 9, err: mail.ErrInvalid},
		{in: "abc", cont: true, err: mail.ErrNeedMore},
	}
	for _, tt := range tests {
		cmd, n, err := parse([]byte(tt.in), tt.cont)
		if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("parse(%q, %v) err = %v, want %v", tt.in, tt.cont, err, tt.err)
			continue
		}
		if n != tt.n {
			t.Errorf("parse(%q, %v) n = %d, want %d", tt.in, tt.cont, n, tt.n)
		}
		if err != nil {
			continue
		}
		if cmd.verb != tt.verb {
			t.Errorf("parse(%q) verb = %v, want %v", tt.in, cmd.verb, tt.verb)
		}
		if len(cmd.args) != len(tt.args) {
			t.Errorf("parse(%q) args = %q, want %q", tt.in, cmd.args, tt.args)
			continue
		}
		for i := range tt.args {
			if string(cmd.args[i]) != tt.args[i] {
				t.Errorf("parse(%q) arg %d = %q, want %q", tt.in, i, cmd.args[i], tt.args[i])
			}
		}
	}
}

// FuzzPOP3Parse checks the parser's invariants on any input: it never
// panics, consumes whole lines (through an LF) or nothing, never more than
// it was given, returns at most 3 arguments, and its arguments are slices
// of the line without CR or LF.
func FuzzPOP3Parse(f *testing.F) {
	seeds := []string{
		"USER a\r\n", "PASS p w \r\n", "APOP u d\r\n", "AUTH\r\n", "AUTH PLAIN AGEAYg==\r\n",
		"AUTH LOGIN\r\n", "AUTH CRAM-MD5\r\n", "AUTH EXTERNAL =\r\n", "CAPA\r\n", "NOOP a b c\r\n",
		"QUIT\r\n", "STLS\r\n", "STAT\r\n", "\r\n", "NOOP\rX\n", "NOOP a b c d\r\n", "user x\n",
		"NOOP\r\nNOOP\r\nNO",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, cont bool) {
		cmd, n, err := parse(in, cont)
		switch {
		case errors.Is(err, mail.ErrNeedMore):
			if n != 0 {
				t.Fatalf("NeedMore with n=%d", n)
			}
			if bytes.IndexByte(in, '\n') >= 0 && !cont {
				// A line with an LF is always decided.
				t.Fatalf("NeedMore although %q has an LF", in)
			}
			return
		case err != nil && !errors.Is(err, mail.ErrInvalid):
			t.Fatalf("unexpected error %v", err)
		}
		if n <= 0 || n > len(in) || in[n-1] != '\n' {
			t.Fatalf("n=%d for %q", n, in)
		}
		if bytes.IndexByte(in[:n-1], '\n') >= 0 {
			t.Fatalf("consumed more than one line: n=%d for %q", n, in)
		}
		if err != nil {
			return
		}
		if len(cmd.args) > 3 {
			t.Fatalf("%d args", len(cmd.args))
		}
		for _, a := range cmd.args {
			if bytes.ContainsAny(a, "\r\n") {
				t.Fatalf("arg %q has CR/LF", a)
			}
		}
	})
}
