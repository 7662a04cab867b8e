package soak

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// outcome is how a client session ended.
type outcome string

const (
	outOK        outcome = "ok"        // completed; every byte checked
	outError     outcome = "error"     // an error reply or a close before login completed
	outTruncated outcome = "truncated" // a reply cut short: a prefix of the right bytes, then a close
	outBad       outcome = "bad"       // wrong bytes, a hang, a success where a fault was injected
	outAbandoned outcome = "abandoned" // the client hung up on purpose (kinds abandon*)
)

// abandonAt is where a session of kind hangs up without waiting: "login"
// (right after sending the password, or RCPT), "relay" (right after
// asking for the message, or half way through sending it), or "".
func abandonAt(kind string) string {
	switch kind {
	case "abandonlogin", "abandonstall":
		return "login"
	case "abandonrelay":
		return "relay"
	}
	return ""
}

// hangUp closes with a reset, as a client that goes away mid-command.
func (w *wire) hangUp() (outcome, string) {
	if tc, ok := w.c.(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck
	}
	w.c.Close()
	return outAbandoned, ""
}

// errHang marks a read that got nothing within the client's patience.
var errHang = errors.New("no answer (hang)")

// wire is one client connection with line and exact-length reads, each
// bounded by patience.
type wire struct {
	c        net.Conn
	r        *bufio.Reader
	patience time.Duration
}

func dialWire(addr string, patience time.Duration) (*wire, error) {
	c, err := net.DialTimeout("tcp4", addr, patience)
	if err != nil {
		return nil, err
	}
	return &wire{c: c, r: bufio.NewReaderSize(c, 64<<10), patience: patience}, nil
}

func (w *wire) Close() { w.c.Close() }

func (w *wire) send(s string) error {
	w.c.SetWriteDeadline(time.Now().Add(w.patience)) //nolint:errcheck
	_, err := io.WriteString(w.c, s)
	return err
}

func classify(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errHang
	}
	return err
}

func (w *wire) line() (string, error) {
	w.c.SetReadDeadline(time.Now().Add(w.patience)) //nolint:errcheck
	s, err := w.r.ReadString('\n')
	if err != nil {
		return s, classify(err)
	}
	return s, nil
}

// full reads exactly n bytes (fewer at a close).
func (w *wire) full(n int) ([]byte, error) {
	w.c.SetReadDeadline(time.Now().Add(w.patience)) //nolint:errcheck
	b := make([]byte, n)
	k, err := io.ReadFull(w.r, b)
	if err != nil {
		return b[:k], classify(err)
	}
	return b, nil
}

// until reads lines until one has prefix (returned) or an error.
func (w *wire) until(prefix string) (string, string, error) {
	var all strings.Builder
	for {
		l, err := w.line()
		all.WriteString(l)
		if err != nil {
			return "", all.String(), err
		}
		if strings.HasPrefix(l, prefix) {
			return l, all.String(), nil
		}
	}
}

// smtpReply reads one (possibly multi-line) SMTP reply.
func (w *wire) smtpReply() (string, error) {
	var all strings.Builder
	for {
		l, err := w.line()
		all.WriteString(l)
		if err != nil {
			return all.String(), err
		}
		if len(l) < 4 || l[3] != '-' {
			return all.String(), nil
		}
	}
}

// drainClose reads until the server closes (after a QUIT/LOGOUT or an
// error); a hang is reported.
func (w *wire) drainClose() error {
	w.c.SetReadDeadline(time.Now().Add(w.patience)) //nolint:errcheck
	_, err := io.Copy(io.Discard, w.r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return classify(err)
	}
	return nil
}

// closedErr: the server closed or reset the connection.
func closedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// mailbox is the known content of the Dovecot mailbox, as stored (LF)
// and as served (CRLF).
type mailbox struct {
	stored []string
	wire   []string
}

func makeMailbox(sizes ...int) mailbox {
	var m mailbox
	rng := rand.New(rand.NewPCG(1, 2))
	for i, n := range sizes {
		var b strings.Builder
		fmt.Fprintf(&b, "From: <soak@example.org>\nTo: <alice@example.com>\nSubject: soak message %d\nMessage-ID: <m%d@soak.test>\n\n", i+1, i+1)
		for b.Len() < n {
			b.WriteString(randomLine(rng))
			b.WriteByte('\n')
		}
		m.stored = append(m.stored, b.String())
		m.wire = append(m.wire, strings.ReplaceAll(b.String(), "\n", "\r\n"))
	}
	return m
}

const lineChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ "

// randomLine is 20..76 characters that never start with '.' (no
// dot-stuffing) nor end with a space.
func randomLine(rng *rand.Rand) string {
	n := 20 + rng.IntN(57)
	b := make([]byte, n)
	for i := range b {
		b[i] = lineChars[rng.IntN(len(lineChars)-1)] // no space
		if i > 0 && i < n-1 && rng.IntN(8) == 0 {
			b[i] = ' '
		}
	}
	return string(b)
}

// user is the login a session uses: the auth server reads the fault
// from it ("k-<fault>-<n>"); the upstream login is always alice.
func user(kind string, n int64) string { return "k-" + kind + "-" + strconv.FormatInt(n, 10) }

// kindOf undoes user (and the SMTP sender "<fault>-<n>@example.org").
func kindOf(login string) string {
	// Auth-SMTP-From is the whole command: "MAIL FROM:<addr> ...".
	if i := strings.IndexByte(login, '<'); i >= 0 {
		login = login[i+1:]
	}
	login = strings.TrimPrefix(login, "k-")
	login, _, _ = strings.Cut(login, "@")
	if i := strings.LastIndexByte(login, '-'); i >= 0 {
		return login[:i]
	}
	return login
}

// pop3Session logs in, RETRs message idx and checks every byte of it,
// waits dwell, and quits.
func pop3Session(addr, kind string, n int64, mb mailbox, idx int, dwell, patience time.Duration) (outcome, string) {
	w, err := dialWire(addr, patience)
	if err != nil {
		return outBad, "connect: " + err.Error()
	}
	defer w.Close()
	if l, err := w.line(); err != nil || !strings.HasPrefix(l, "+OK") {
		return outBad, fmt.Sprintf("greeting %q %v", l, err)
	}
	w.send("USER " + user(kind, n) + "\r\n") //nolint:errcheck
	if l, err := w.line(); err != nil || !strings.HasPrefix(l, "+OK") {
		return outBad, fmt.Sprintf("USER: %q %v", l, err)
	}
	w.send("PASS secret\r\n") //nolint:errcheck
	if abandonAt(kind) == "login" {
		return w.hangUp()
	}
	l, err := w.line()
	switch {
	case err == errHang:
		return outBad, "PASS: hang"
	case err != nil && closedErr(err) && l == "":
		return outError, "closed at PASS"
	case err != nil:
		return outBad, fmt.Sprintf("PASS: %q %v", l, err)
	case strings.HasPrefix(l, "-ERR"):
		// An error reply, then the session either ends or goes on.
		w.send("QUIT\r\n") //nolint:errcheck
		if err := w.drainClose(); err == errHang {
			return outBad, "no close after -ERR and QUIT"
		}
		return outError, strings.TrimSpace(l)
	case !strings.HasPrefix(l, "+OK"):
		return outBad, fmt.Sprintf("PASS: %q", l)
	}
	fmt.Fprintf(w.c, "RETR %d\r\n", idx+1)
	if abandonAt(kind) == "relay" {
		return w.hangUp()
	}
	want := mb.wire[idx] + ".\r\n"
	head, err := w.line()
	if err != nil {
		if closedErr(err) {
			return outTruncated, "closed before the RETR reply"
		}
		return outBad, fmt.Sprintf("RETR: %q %v", head, err)
	}
	if head != fmt.Sprintf("+OK %d octets\r\n", len(mb.wire[idx])) {
		return outBad, fmt.Sprintf("RETR reply %q", head)
	}
	body, err := w.full(len(want))
	if string(body) != want[:len(body)] {
		return outBad, fmt.Sprintf("RETR: byte %d differs", firstDiff(string(body), want))
	}
	if err != nil {
		if closedErr(err) {
			return outTruncated, fmt.Sprintf("RETR cut after %d of %d bytes", len(body), len(want))
		}
		return outBad, fmt.Sprintf("RETR after %d bytes: %v", len(body), err)
	}
	time.Sleep(dwell)
	w.send("QUIT\r\n") //nolint:errcheck
	if l, err := w.line(); err != nil || !strings.HasPrefix(l, "+OK") {
		if closedErr(err) && l == "" {
			return outTruncated, "closed at QUIT"
		}
		return outBad, fmt.Sprintf("QUIT: %q %v", l, err)
	}
	if err := w.drainClose(); err != nil {
		return outBad, "after QUIT: " + err.Error()
	}
	return outOK, ""
}

var literalRe = regexp.MustCompile(`^\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n$`)

// imapSession logs in, EXAMINEs INBOX, FETCHes message idx and checks
// every byte, waits dwell, and logs out.
func imapSession(addr, kind string, n int64, mb mailbox, idx int, dwell, patience time.Duration) (outcome, string) {
	w, err := dialWire(addr, patience)
	if err != nil {
		return outBad, "connect: " + err.Error()
	}
	defer w.Close()
	if l, err := w.line(); err != nil || !strings.HasPrefix(l, "* OK") {
		return outBad, fmt.Sprintf("greeting %q %v", l, err)
	}
	w.send("a1 LOGIN " + user(kind, n) + " secret\r\n") //nolint:errcheck
	if abandonAt(kind) == "login" {
		return w.hangUp()
	}
	l, all, err := w.until("a1 ")
	switch {
	case err == errHang:
		return outBad, "LOGIN: hang after " + strconv.Quote(all)
	case err != nil && closedErr(err):
		// nginx's upstream errors are an untagged "* BAD internal server
		// error" and a close.
		if all == "" || strings.HasPrefix(all, "* BAD") {
			return outError, "closed at LOGIN " + strings.TrimSpace(all)
		}
		return outBad, fmt.Sprintf("LOGIN: %q then close", all)
	case err != nil:
		return outBad, fmt.Sprintf("LOGIN: %q %v", all, err)
	case strings.HasPrefix(l, "a1 NO") || strings.HasPrefix(l, "a1 BAD"):
		w.send("a2 LOGOUT\r\n") //nolint:errcheck
		if err := w.drainClose(); err == errHang {
			return outBad, "no close after NO and LOGOUT"
		}
		return outError, strings.TrimSpace(l)
	case !strings.HasPrefix(l, "a1 OK"):
		return outBad, fmt.Sprintf("LOGIN: %q", all)
	}
	w.send("a2 EXAMINE INBOX\r\n") //nolint:errcheck
	if l, all, err := w.until("a2 "); err != nil || !strings.HasPrefix(l, "a2 OK") {
		if closedErr(err) {
			return outTruncated, "closed at EXAMINE"
		}
		return outBad, fmt.Sprintf("EXAMINE: %q %v", all, err)
	}
	fmt.Fprintf(w.c, "a3 FETCH %d BODY.PEEK[]\r\n", idx+1)
	if abandonAt(kind) == "relay" {
		return w.hangUp()
	}
	head, err := w.line()
	if err != nil {
		if closedErr(err) {
			return outTruncated, "closed before the FETCH reply"
		}
		return outBad, fmt.Sprintf("FETCH: %q %v", head, err)
	}
	m := literalRe.FindStringSubmatch(head)
	if m == nil || m[1] != strconv.Itoa(idx+1) || m[2] != strconv.Itoa(len(mb.wire[idx])) {
		return outBad, fmt.Sprintf("FETCH reply %q", head)
	}
	want := mb.wire[idx] + ")\r\n"
	body, err := w.full(len(want))
	if string(body) != want[:len(body)] {
		return outBad, fmt.Sprintf("FETCH: byte %d differs", firstDiff(string(body), want))
	}
	if err != nil {
		if closedErr(err) {
			return outTruncated, fmt.Sprintf("FETCH cut after %d of %d bytes", len(body), len(want))
		}
		return outBad, fmt.Sprintf("FETCH after %d bytes: %v", len(body), err)
	}
	if l, all, err := w.until("a3 "); err != nil || !strings.HasPrefix(l, "a3 OK") {
		if closedErr(err) && all == "" {
			return outTruncated, "closed before FETCH's OK"
		}
		return outBad, fmt.Sprintf("FETCH end: %q %v", all, err)
	}
	time.Sleep(dwell)
	w.send("a4 LOGOUT\r\n") //nolint:errcheck
	if l, all, err := w.until("a4 "); err != nil || !strings.HasPrefix(l, "a4 OK") {
		if closedErr(err) && all == "" {
			return outTruncated, "closed at LOGOUT"
		}
		return outBad, fmt.Sprintf("LOGOUT: %q %v", all, err)
	}
	if err := w.drainClose(); err != nil {
		return outBad, "after LOGOUT: " + err.Error()
	}
	return outOK, ""
}

// smtpMessage is a unique message for SMTP session id, CRLF, ending in
// CRLF, never a line starting with '.'.
func smtpMessage(id string, rng *rand.Rand, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "X-Soak-Id: %s\r\nFrom: <%s@example.org>\r\nTo: <sink@example.com>\r\n"+
		"Date: Mon, 7 Dec 2026 20:00:00 +0000\r\nMessage-ID: <%s@soak.test>\r\nSubject: soak %s\r\n\r\n", id, id, id, id)
	for b.Len() < size {
		b.WriteString(randomLine(rng))
		b.WriteString("\r\n")
	}
	return b.String()
}

// storedSum is the SHA-256 of msg as Postfix stores it (LF line ends).
func storedSum(msg string) string {
	s := sha256.Sum256([]byte(strings.ReplaceAll(msg, "\r\n", "\n")))
	return hex.EncodeToString(s[:])
}

// deliveredSum finds the X-Soak-Id header in a delivered message and
// hashes from it to the end (Postfix prepends Return-Path, Delivered-To
// and Received); "" if there is none.
func deliveredSum(delivered string) (id, sum string) {
	i := strings.Index(delivered, "X-Soak-Id: ")
	if i < 0 {
		return "", ""
	}
	rest := delivered[i:]
	id, _, _ = strings.Cut(strings.TrimPrefix(rest, "X-Soak-Id: "), "\n")
	s := sha256.Sum256([]byte(rest))
	return id, hex.EncodeToString(s[:])
}

// smtpSession sends one message through smtp_auth none. accepted is
// called with the message's id and stored SHA-256 when the client was
// told 250 after DATA.
func smtpSession(addr, kind string, n int64, rng *rand.Rand, size int, dwell, patience time.Duration,
	accepted func(id, sum string)) (outcome, string) {
	w, err := dialWire(addr, patience)
	if err != nil {
		return outBad, "connect: " + err.Error()
	}
	defer w.Close()
	if l, err := w.smtpReply(); err != nil || !strings.HasPrefix(l, "220") {
		return outBad, fmt.Sprintf("greeting %q %v", l, err)
	}
	w.send("EHLO soak.test\r\n") //nolint:errcheck
	if l, err := w.smtpReply(); err != nil || !strings.HasPrefix(l, "250") {
		return outBad, fmt.Sprintf("EHLO: %q %v", l, err)
	}
	id := kind + "-" + strconv.FormatInt(n, 10)
	w.send("MAIL FROM:<" + id + "@example.org>\r\n") //nolint:errcheck
	if l, err := w.smtpReply(); err != nil || !strings.HasPrefix(l, "250") {
		return outBad, fmt.Sprintf("MAIL: %q %v", l, err)
	}
	// Here the proxy asks auth_http and logs in to the upstream.
	w.send("RCPT TO:<sink@example.com>\r\n") //nolint:errcheck
	if abandonAt(kind) == "login" {
		return w.hangUp()
	}
	l, err := w.smtpReply()
	switch {
	case err == errHang:
		return outBad, "RCPT: hang"
	case err != nil && closedErr(err) && l == "":
		return outError, "closed at RCPT"
	case err != nil:
		return outBad, fmt.Sprintf("RCPT: %q %v", l, err)
	case l[0] == '4' || l[0] == '5':
		w.send("QUIT\r\n") //nolint:errcheck
		if err := w.drainClose(); err == errHang {
			return outBad, "no close after an RCPT error and QUIT"
		}
		return outError, strings.TrimSpace(l)
	case !strings.HasPrefix(l, "250"):
		return outBad, fmt.Sprintf("RCPT: %q", l)
	}
	w.send("DATA\r\n") //nolint:errcheck
	if l, err := w.smtpReply(); err != nil || !strings.HasPrefix(l, "354") {
		if closedErr(err) && l == "" {
			return outTruncated, "closed at DATA"
		}
		return outBad, fmt.Sprintf("DATA: %q %v", l, err)
	}
	msg := smtpMessage(id, rng, size)
	if abandonAt(kind) == "relay" {
		w.send(msg[:len(msg)/2]) //nolint:errcheck
		return w.hangUp()
	}
	if err := w.send(msg + ".\r\n"); err != nil {
		if closedErr(err) {
			return outTruncated, "closed while sending the message"
		}
		return outBad, "sending the message: " + err.Error()
	}
	l, err = w.smtpReply()
	switch {
	case err == nil && strings.HasPrefix(l, "250"):
		accepted(id, storedSum(msg))
	case err != nil && closedErr(err) && l == "":
		return outTruncated, "closed before the reply to the message"
	default:
		return outBad, fmt.Sprintf("end of DATA: %q %v", l, err)
	}
	time.Sleep(dwell)
	w.send("QUIT\r\n") //nolint:errcheck
	if l, err := w.smtpReply(); err != nil || !strings.HasPrefix(l, "221") {
		return outBad, fmt.Sprintf("QUIT: %q %v", l, err)
	}
	if err := w.drainClose(); err != nil {
		return outBad, "after QUIT: " + err.Error()
	}
	return outOK, ""
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// envOr is os.Getenv(key) if set, else def (for flag defaults).
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
