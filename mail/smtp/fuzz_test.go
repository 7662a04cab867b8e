package smtp

import (
	"bytes"
	"errors"
	"testing"

	"mailgate/mail"
)

// FuzzSMTPParse checks the parser's invariants on any input, in both the
// command and the SASL-continuation modes: a line always ends at the first
// LF; without an LF more bytes are needed; a parsed command's line and
// arguments come from the input in order; at most 11 arguments.
func FuzzSMTPParse(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\n", "helo a b\n", "MAIL FROM:<a@b> SIZE=1\r\n", "RCPT TO:<c>\r\n",
		"AUTH PLAIN AGdvb2QAcHc=\r\n", "STARTTLS\r\n", "DATA\r\n", "\r\n", "NOOP\rX\r\n",
		"QUIT", "MAIL 1 2 3 4 5 6 7 8 9 10 11 12\r\n", "\x00\xff\n", "  NOOP\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, cont bool) {
		buf := bytes.Clone(in) // scribbled on below
		cmd, n, err := parseLine(buf, cont)
		lf := bytes.IndexByte(buf, '\n')
		switch {
		case errors.Is(err, mail.ErrNeedMore):
			if lf >= 0 {
				t.Fatalf("need more with an LF at %d", lf)
			}
			if cmd != nil || n != 0 {
				t.Fatalf("need more with cmd %v n %d", cmd, n)
			}
			return
		case errors.Is(err, mail.ErrInvalid):
			if n != lf+1 || cmd != nil {
				t.Fatalf("invalid: n %d, LF at %d", n, lf)
			}
			return
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		}
		if n != lf+1 {
			t.Fatalf("parsed %d bytes, LF at %d", n, lf)
		}
		if len(cmd.Args) > maxArgs {
			t.Fatalf("%d arguments", len(cmd.Args))
		}
		if cont != (cmd.verb == verbContinue) {
			t.Fatalf("verb %v in cont=%v", cmd.verb, cont)
		}
		if !cont {
			if !bytes.HasPrefix(buf, cmd.Line) || !bytes.EqualFold(cmd.Line[:len(cmd.verb.String())], []byte(cmd.verb.String())) {
				t.Fatalf("line %q of %q", cmd.Line, buf)
			}
			if len(cmd.Line) > 0 && cmd.Line[len(cmd.Line)-1] == ' ' {
				t.Fatalf("line with trailing space %q", cmd.Line)
			}
		}
		rest := buf[:n]
		for _, a := range cmd.Args {
			if bytes.ContainsAny(a, " \r\n") {
				t.Fatalf("argument %q holds a separator", a)
			}
			i := bytes.Index(rest, a)
			if i < 0 {
				t.Fatalf("argument %q not in order in %q", a, buf[:n])
			}
			rest = rest[i+len(a):]
		}
		// Commands copy their bytes: scribbling on the input must not
		// change them.
		before := string(cmd.Line)
		for i := range buf {
			buf[i] = '#'
		}
		if string(cmd.Line) != before {
			t.Fatalf("command aliases the input buffer")
		}
	})
}
