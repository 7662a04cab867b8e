package soak

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quitPhase opens a logged-in POP3 and IMAP session and an SMTP session
// past RCPT, sends SIGQUIT, and checks that mailgate stops listening at
// once, keeps serving the three sessions (whose bytes are checked as in
// the load) and exits with status 0 only after the last one ended.
func quitPhase(t *testing.T, e *soakEnv, accepted func(id, sum string)) {
	t.Helper()
	patience := 20 * time.Second
	const n = 1 << 40 // session numbers apart from the load's

	// Each is dialled just before its login: the pre-auth timeout runs
	// from the connect.
	step := func(what string, w *wire, send, wantPrefix string, read func() (string, error)) {
		t.Helper()
		if send != "" {
			w.send(send) //nolint:errcheck
		}
		l, err := read()
		if err != nil || !strings.HasPrefix(l, wantPrefix) {
			t.Fatalf("held session, %s: %q %v, want %q", what, l, err, wantPrefix)
		}
	}
	pop, err := dialWire(e.mg.Addr("pop3"), patience)
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	step("pop3 greeting", pop, "", "+OK", pop.line)
	step("pop3 USER", pop, "USER "+user("ok", n)+"\r\n", "+OK", pop.line)
	step("pop3 PASS", pop, "PASS secret\r\n", "+OK", pop.line)
	imap, err := dialWire(e.mg.Addr("imap"), patience)
	if err != nil {
		t.Fatal(err)
	}
	defer imap.Close()
	imapTagged := func(tag string) func() (string, error) {
		return func() (string, error) { l, _, err := imap.until(tag + " "); return l, err }
	}
	step("imap greeting", imap, "", "* OK", imap.line)
	step("imap LOGIN", imap, "q1 LOGIN "+user("ok", n+1)+" secret\r\n", "q1 OK", imapTagged("q1"))
	smtp, err := dialWire(e.mg.Addr("smtp"), patience)
	if err != nil {
		t.Fatal(err)
	}
	defer smtp.Close()
	step("smtp greeting", smtp, "", "220", smtp.smtpReply)
	step("smtp EHLO", smtp, "EHLO soak.test\r\n", "250", smtp.smtpReply)
	id := "ok-" + strconv.Itoa(n+2)
	step("smtp MAIL", smtp, "MAIL FROM:<"+id+"@example.org>\r\n", "250", smtp.smtpReply)
	step("smtp RCPT", smtp, "RCPT TO:<sink@example.com>\r\n", "250", smtp.smtpReply)

	if err := e.mg.Signal(syscall.SIGQUIT); err != nil {
		t.Fatalf("SIGQUIT: %v", err)
	}
	// No new sessions once QUIT is taken: the listening sockets close.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp4", e.mg.Addr("pop3"), time.Second)
		if err != nil {
			// Refused, or reset: a connection that was still in the
			// listener's queue when it closed is reset, as with nginx
			// (the kernel completed the handshake, nobody accepted it).
			if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("connect after SIGQUIT: %v, want refused", err)
			}
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("mailgate still accepts connections 10s after SIGQUIT")
		}
		time.Sleep(50 * time.Millisecond)
	}
	alive := func(when string) {
		t.Helper()
		time.Sleep(300 * time.Millisecond)
		if exited, err := e.mg.Exited(); exited {
			t.Fatalf("mailgate exited (%v) %s, with a session still open", err, when)
		}
	}
	alive("after SIGQUIT")

	mb := e.mb
	pop.send("RETR 3\r\n") //nolint:errcheck
	want := fmt.Sprintf("+OK %d octets\r\n", len(mb.wire[2])) + mb.wire[2] + ".\r\n"
	if got, err := pop.full(len(want)); err != nil || string(got) != want {
		t.Fatalf("held POP3 RETR after SIGQUIT: %v, byte %d of %d differs", err, firstDiff(string(got), want), len(want))
	}
	step("pop3 QUIT", pop, "QUIT\r\n", "+OK", pop.line)
	if err := pop.drainClose(); err != nil {
		t.Errorf("held POP3 after QUIT: %v", err)
	}
	alive("after the POP3 session ended")

	step("imap EXAMINE", imap, "q2 EXAMINE INBOX\r\n", "q2 OK", imapTagged("q2"))
	imap.send("q3 FETCH 2 BODY.PEEK[]\r\n") //nolint:errcheck
	want = fmt.Sprintf("* 2 FETCH (BODY[] {%d}\r\n", len(mb.wire[1])) + mb.wire[1] + ")\r\n"
	if got, err := imap.full(len(want)); err != nil || string(got) != want {
		t.Fatalf("held IMAP FETCH after SIGQUIT: %v, byte %d of %d differs", err, firstDiff(string(got), want), len(want))
	}
	step("imap FETCH end", imap, "", "q3 OK", imapTagged("q3"))
	step("imap LOGOUT", imap, "q4 LOGOUT\r\n", "q4 OK", imapTagged("q4"))
	if err := imap.drainClose(); err != nil {
		t.Errorf("held IMAP after LOGOUT: %v", err)
	}
	alive("after the IMAP session ended")

	step("smtp DATA", smtp, "DATA\r\n", "354", smtp.smtpReply)
	msg := smtpMessage(id, rand.New(rand.NewPCG(7, 7)), 5000)
	step("smtp message", smtp, msg+".\r\n", "250", smtp.smtpReply)
	accepted(id, storedSum(msg))
	step("smtp QUIT", smtp, "QUIT\r\n", "221", smtp.smtpReply)
	if err := smtp.drainClose(); err != nil {
		t.Errorf("held SMTP after QUIT: %v", err)
	}

	select {
	case <-e.mg.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("mailgate still runs 15s after its last session ended")
	}
	if _, err := e.mg.Exited(); err != nil {
		t.Errorf("mailgate's exit after SIGQUIT: %v, want status 0\n--- stderr:\n%s", err, e.mg.Stderr())
	} else {
		t.Log("SIGQUIT: listeners closed, 3 open sessions completed, exit status 0 after the last")
	}
}
