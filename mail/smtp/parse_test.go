package smtp

import (
	"errors"
	"io"
	"strings"
	"testing"

	"mailgate/mail"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		in   string
		cont bool
		verb verb
		args []string
		line string
		n    int // bytes used; 0 with err
		err  error
	}{
		{in: "EHLO x\r\n", verb: verbEHLO, args: []string{"x"}, line: "EHLO x", n: 8},
		{in: "ehlo x\n", verb: verbEHLO, args: []string{"x"}, line: "ehlo x", n: 7},
		{in: "StartTLS\r\nNOOP\r\n", verb: verbSTARTTLS, line: "StartTLS", n: 10},
		{in: "MAIL FROM:<a@b>   SIZE=1   \r\n", verb: verbMAIL, args: []string{"FROM:<a@b>", "SIZE=1"}, line: "MAIL FROM:<a@b>   SIZE=1", n: 29},
		{in: "NOOP \r\n", verb: verbNOOP, line: "NOOP", n: 7},
		{in: "RCPT 1 2 3 4 5 6 7 8 9 10 11\r\n", verb: verbRCPT, args: strings.Fields("1 2 3 4 5 6 7 8 9 10 11"), line: "RCPT 1 2 3 4 5 6 7 8 9 10 11", n: 30},
		{in: "RCPT 1 2 3 4 5 6 7 8 9 10 11 12\r\nNOOP\r\n", n: 33, err: mail.ErrInvalid},
		{in: "DATA\r\nNOOP\r\n", n: 6, err: mail.ErrInvalid},
		{in: "\r\n", n: 2, err: mail.ErrInvalid},
		{in: " NOOP\r\n", n: 7, err: mail.ErrInvalid},
		{in: "NO0P\r\n", n: 6, err: mail.ErrInvalid},
		{in: "NOOPNOOP\r\n", n: 10, err: mail.ErrInvalid},
		{in: "NOOP\rX\r\n", n: 8, err: mail.ErrInvalid},
		{in: "HELO\tx\r\n", n: 8, err: mail.ErrInvalid},
		{in: "NOOP", err: mail.ErrNeedMore},
		{in: "NOOP\r", err: mail.ErrNeedMore},
		{in: "DATA but no LF yet", err: mail.ErrNeedMore},
		{in: "", err: mail.ErrNeedMore},
		// SASL continuation lines: arguments straight away.
		{in: "dXNlcg==\r\n", cont: true, args: []string{"dXNlcg=="}, n: 10},
		{in: "\r\n", cont: true, args: []string{""}, n: 2},
		{in: "a b  c\n", cont: true, args: []string{"a", "b", "c"}, n: 7},
		{in: "EHLO x\r\n", cont: true, args: []string{"EHLO", "x"}, n: 8},
		{in: "abc\rX\r\n", cont: true, n: 7, err: mail.ErrInvalid},
		{in: "abc", cont: true, err: mail.ErrNeedMore},
	}
	for _, tc := range tests {
		cmd, n, err := parseLine([]byte(tc.in), tc.cont)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("parseLine(%q, %v) error %v, want %v", tc.in, tc.cont, err, tc.err)
			continue
		}
		if n != tc.n {
			t.Errorf("parseLine(%q, %v) used %d bytes, want %d", tc.in, tc.cont, n, tc.n)
		}
		if err != nil {
			if cmd != nil {
				t.Errorf("parseLine(%q) returned a command with %v", tc.in, err)
			}
			continue
		}
		if cmd.verb != tc.verb || string(cmd.Line) != tc.line {
			t.Errorf("parseLine(%q) = %v %q, want %v %q", tc.in, cmd.verb, cmd.Line, tc.verb, tc.line)
		}
		var args []string
		for _, a := range cmd.Args {
			args = append(args, string(a))
		}
		if strings.Join(args, "|") != strings.Join(tc.args, "|") || len(args) != len(tc.args) {
			t.Errorf("parseLine(%q) args %q, want %q", tc.in, args, tc.args)
		}
	}
}

func TestProtocol(t *testing.T) {
	c := testConf()
	c.SMTP.ClientBuffer = 1234
	var p Protocol
	if p.Name() != "smtp" || p.ClientBuffer(c) != 1234 {
		t.Errorf("Name %q ClientBuffer %d", p.Name(), p.ClientBuffer(c))
	}
	h := newFixture(c).h
	if got := string(h.InternalError()); got != "451 4.3.2 Internal server error\r\n" {
		t.Errorf("InternalError %q", got)
	}
	for _, err := range []error{mail.ErrInvalid, mail.ErrRejected, mail.ErrTooLong} {
		if got := string(h.ErrorReply(err)); got != "500 5.5.1 Invalid command\r\n" {
			t.Errorf("ErrorReply(%v) %q", err, got)
		}
	}
	if got := string(h.AuthFailed("Invalid login or password", "")); got != "535 5.7.0 Invalid login or password\r\n" {
		t.Errorf("AuthFailed %q", got)
	}
	if got := string(h.AuthFailed("Nope", "450 4.7.1")); got != "450 4.7.1 Nope\r\n" {
		t.Errorf("AuthFailed with code %q", got)
	}
	// Templates are built once per server (mail.Preparer) and every
	// session of that server uses them.
	pt := Protocol{}.Prepare(c).(*templates)
	for i := 0; i < 2; i++ {
		s := mail.NewTestSession(c, io.Discard)
		s.Prepared = pt
		if newHandler(s, s).tmpl != pt {
			t.Fatal("a session does not use its server's prepared templates")
		}
	}
}
