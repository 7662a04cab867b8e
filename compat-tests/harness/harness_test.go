package harness_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// smtpDialog sends each command and returns every reply line.
func smtpDialog(t *testing.T, addr string, cmds ...string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var lines []string
	readReply := func() {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v (so far %q)", err, lines)
			}
			lines = append(lines, l)
			if len(l) < 4 || l[3] != '-' {
				return
			}
		}
	}
	readReply()
	for _, cmd := range cmds {
		fmt.Fprint(c, cmd)
		readReply()
	}
	return lines
}

func TestPostfixDeliversAndTrustsXCLIENT(t *testing.T) {
	t.Parallel()
	pf := harness.StartPostfix(t)
	lines := smtpDialog(t, pf.Addr,
		"EHLO client.test\r\n",
		"XCLIENT NAME=mail.client.test ADDR=192.0.2.7 LOGIN=alice\r\n",
		"EHLO client.test\r\n",
		"MAIL FROM:<a@client.test>\r\n",
		"RCPT TO:<bob@example.com>\r\n",
		"DATA\r\n",
		"Subject: t1\r\n\r\nbody one\r\n.\r\n",
		"QUIT\r\n")
	all := strings.Join(lines, "")
	if !strings.HasPrefix(all, "220 upstream.test ESMTP\r\n") || !strings.Contains(all, "250-XCLIENT") {
		t.Fatalf("unexpected dialogue:\n%s", all)
	}
	if !strings.Contains(all, "queued as") || !strings.Contains(all, "221 ") {
		t.Fatalf("not queued:\n%s", all)
	}
	msgs := pf.WaitMessages(1, 10*time.Second)
	if !strings.Contains(msgs[0], "Delivered-To: bob@example.com") || !strings.Contains(msgs[0], "body one") {
		t.Fatalf("delivered message:\n%s", msgs[0])
	}
	// XCLIENT took effect: Postfix recorded the forged client.
	if !strings.Contains(msgs[0], "192.0.2.7") {
		t.Errorf("XCLIENT address not in Received:\n%s", msgs[0])
	}
}

// Several private Postfix instances must run at once.
func TestPostfixConcurrentInstances(t *testing.T) {
	t.Parallel()
	a, b := harness.StartPostfix(t), harness.StartPostfix(t)
	if a.Addr == b.Addr {
		t.Fatalf("same address %s", a.Addr)
	}
	for _, pf := range []*harness.Postfix{a, b} {
		smtpDialog(t, pf.Addr, "HELO x\r\n", "MAIL FROM:<a@x.test>\r\n", "RCPT TO:<c@example.org>\r\n",
			"DATA\r\n", "Subject: "+pf.Addr+"\r\n\r\nx\r\n.\r\n", "QUIT\r\n")
	}
	for _, pf := range []*harness.Postfix{a, b} {
		msgs := pf.WaitMessages(1, 10*time.Second)
		if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: "+pf.Addr) {
			t.Errorf("%s got %q", pf.Addr, msgs)
		}
	}
}

func TestDovecotMailboxRoundTrip(t *testing.T) {
	t.Parallel()
	dc := harness.StartDovecot(t, map[string]string{"bob": "pw"})
	dc.Deliver("bob", "Subject: one\n\n1\n")
	dc.Deliver("bob", "Subject: two\n\n2\n")
	c, err := net.Dial("tcp", dc.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	readTo := func(tag string) string {
		var b strings.Builder
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v after %q", err, b.String())
			}
			b.WriteString(l)
			if strings.HasPrefix(l, tag) {
				return b.String()
			}
		}
	}
	if g := readTo("* OK"); strings.Contains(g, "Waiting") {
		t.Errorf("greeting before auth was ready: %q", g)
	}
	fmt.Fprint(c, "a LOGIN bob pw\r\n")
	if s := readTo("a "); !strings.Contains(s, "a OK") {
		t.Fatalf("login: %q", s)
	}
	fmt.Fprint(c, "b SELECT INBOX\r\n")
	if s := readTo("b "); !strings.Contains(s, "* 2 EXISTS") {
		t.Fatalf("select: %q", s)
	}
	fmt.Fprint(c, "c FETCH 2 BODY[HEADER.FIELDS (SUBJECT)]\r\n")
	if s := readTo("c "); !strings.Contains(s, "Subject: two") {
		t.Fatalf("fetch: %q", s)
	}
	fmt.Fprint(c, "d STORE 1 +FLAGS (\\Deleted)\r\ne EXPUNGE\r\nf LOGOUT\r\n")
	readTo("f ")
	msgs := dc.Messages("bob")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: two") {
		t.Fatalf("after expunge: %q", msgs)
	}
	dc.SetMailbox("bob")
	if msgs := dc.Messages("bob"); len(msgs) != 0 {
		t.Fatalf("after reset: %q", msgs)
	}
}

func TestRecorderPassesAndRecords(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprint(c, "hello\r\n")
				l, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "echo %s", l)
			}()
		}
	}()
	addr, rec := harness.Record(t, ln.Addr().String())
	for i := range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprintf(c, "ping %d\r\n", i)
		got, _ := r.ReadString('\n')
		if got != fmt.Sprintf("echo ping %d\r\n", i) {
			t.Errorf("relayed %q", got)
		}
		c.Close()
	}
	if !rec.WaitIdle(0, 5*time.Second) {
		t.Fatal("connections not done")
	}
	conns := rec.Conns()
	if len(conns) != 2 {
		t.Fatalf("%d connections", len(conns))
	}
	if s, r := string(conns[1].Sent()), string(conns[1].Received()); s != "ping 1\r\n" || r != "hello\r\necho ping 1\r\n" {
		t.Errorf("sent %q received %q", s, r)
	}
	if len(rec.Since(1)) != 1 {
		t.Errorf("Since(1) = %d conns", len(rec.Since(1)))
	}
}

func TestDiffFindsByteDifferencesAfterNormalising(t *testing.T) {
	a := &harness.Transcript{Impl: "nginx", Client: "S: +OK <123.456@host>\\r\\n\nS: x\\r\\n\n"}
	b := &harness.Transcript{Impl: "mailgate", Client: "S: +OK <999.1@host>\\r\\n\nS: x\\r\\n\n"}
	if d := harness.Diff(a, b, false, harness.DefaultNormalizers()...); d != "" {
		t.Errorf("salts not normalised:\n%s", d)
	}
	b.Client += "S: extra\\r\\n\n"
	d := harness.Diff(a, b, false, harness.DefaultNormalizers()...)
	if !strings.Contains(d, "+S: extra\\r\\n") || !strings.Contains(d, "--- nginx") {
		t.Errorf("diff:\n%s", d)
	}
	if harness.Escape([]byte("a\r\n\x00\xff")) != `a\r\n\x00\xff` {
		t.Errorf("escape: %s", harness.Escape([]byte("a\r\n\x00\xff")))
	}
}

// The runner against nginx alone, without upstream: a timeout and the
// close show in the transcript.
func TestRunnerRecordsTimeoutsAndClose(t *testing.T) {
	t.Parallel()
	auth := harness.StartAuth(t, authserver.Script{})
	s := &harness.Suite{
		Name:        "runner self-test",
		Config:      harness.Config{Mail: "auth_http {{auth}};\nserver { listen 127.0.0.1:{{port imap}}; protocol imap; }"},
		Auth:        auth,
		Impls:       []harness.Impl{harness.Nginx},
		ReadTimeout: time.Second,
	}
	tr := s.RunOne(t, harness.Nginx, harness.Scenario{Name: "t", Steps: []harness.Step{
		harness.Lines(2), // only the greeting comes: timeout
		harness.Send("a CAPABILITY\r\nb LOGOUT\r\n"),
		harness.Until(`(?m)^a OK`),
		harness.Closed(),
	}})
	want := []string{
		"S: * OK IMAP4 ready\\r\\n\n[timeout in Lines(2)]\n",
		"C: a CAPABILITY\\r\\n\nC: b LOGOUT\\r\\n\nS: * CAPABILITY",
		"S: b OK completed\\r\\n\n[closed]\n",
	}
	for _, w := range want {
		if !strings.Contains(tr.Client, w) {
			t.Errorf("transcript lacks %q:\n%s", w, tr.Client)
		}
	}
	if !tr.Closed || len(tr.Auth) != 0 {
		t.Errorf("closed=%v auth=%d", tr.Closed, len(tr.Auth))
	}
	if !strings.Contains(tr.Log, "client 127.0.0.1:") {
		t.Errorf("error.log lines: %q", tr.Log)
	}
}

// A declared difference is reported, not failed, and counted as such; an
// identical scenario is counted as identical.
func TestDeclaredDifferenceIsCounted(t *testing.T) {
	t.Parallel()
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	up, rec := harness.Record(t, dc.POP3Addr)
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: up}}})
	run := 0
	s := &harness.Suite{
		Name:      "declared self-test",
		Config:    harness.Config{Mail: "auth_http {{auth}};\nserver { listen 127.0.0.1:{{port pop3}}; protocol pop3; }"},
		Auth:      auth,
		Upstreams: map[string]*harness.Recorder{"dovecot": rec},
		// The second run sees a different message: the transcripts differ.
		Reset: func(t testing.TB) {
			run++
			dc.SetMailbox("alice", fmt.Sprintf("Subject: run %d\n\nx\n", run))
		},
		Impls: []harness.Impl{harness.Nginx, harness.Nginx},
	}
	s.Run(t, []harness.Scenario{{
		Name:   "differs",
		Differ: "the mailbox changes between runs (self-test)",
		Steps: []harness.Step{harness.Lines(1), harness.Send("USER alice\r\nPASS secret\r\nTOP 1 0\r\nQUIT\r\n"),
			harness.Closed()},
	}})
	if total, identical, declared, failures := s.Counts(); total != 1 || identical != 0 || declared != 1 || failures != 0 {
		t.Errorf("counts: total %d identical %d declared %d failures %d", total, identical, declared, failures)
	}
}

// Bytes left unread and the close after them both show in the transcript.
func TestRunClientShowsUnreadAndClose(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("one\r\ntwo\r\n"))
		c.Close()
	}()
	tr := harness.RunClient(t, ln.Addr().String(), []harness.Step{harness.Lines(1)}, 2*time.Second)
	want := "S: one\\r\\n\n[unread]\nS: two\\r\\n\n[closed]\n"
	if tr.Client != want || !tr.Closed || string(tr.Received) != "one\r\ntwo\r\n" {
		t.Errorf("transcript %q closed=%v, want %q", tr.Client, tr.Closed, want)
	}
}

func TestNormalizers(t *testing.T) {
	salt := base64.StdEncoding.EncodeToString([]byte("<3028419870.1795668245@mail.example.test>"))
	other := base64.StdEncoding.EncodeToString([]byte("not a salt at all, really"))
	for _, tc := range []struct{ in, want string }{
		{"S: 334 " + salt + "\\r\\n\n", "S: 334 <BASE64-SALT>\\r\\n\n"},
		{"S: + " + salt + "\\r\\n\n", "S: + <BASE64-SALT>\\r\\n\n"},
		{"S: 334 " + other + "\\r\\n\n", "S: 334 " + other + "\\r\\n\n"},
		{"S: +OK POP3 ready <123.456@mx>\\r\\n\n", "S: +OK POP3 ready <SALT>\\r\\n\n"},
		{"2026/11/26 04:35:47 [info] 10098#10098: *1 client 127.0.0.1:42820 connected to x\n",
			"[info] *1 client 127.0.0.1:PORT connected to x\n"},
		{"c NO [SERVERBUG] Internal error occurred. [2026-11-26 04:32:39] (0.001 + 0.000 secs).",
			"c NO [SERVERBUG] Internal error occurred. [TIME] [TIME]."},
		{"* OK [UIDVALIDITY 1764131559] UIDs valid", "* OK [UIDVALIDITY N] UIDs valid"},
		{"250 2.0.0 Ok: queued as 4EB4398C681", "250 2.0.0 Ok: queued as QUEUEID"},
	} {
		got := tc.in
		for _, n := range harness.DefaultNormalizers() {
			got = n(got)
		}
		if got != tc.want {
			t.Errorf("normalised %q\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
