package mailtest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/mail"
	"mailgate/mail/imap"
	"mailgate/mail/mailtest"
)

// recorder is an Observer that writes down every event as a line.
type recorder struct {
	mu     sync.Mutex
	events []string
	up     int64
	down   int64
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

func (r *recorder) Accepted(l mail.Labels) { r.add("accepted %s %s", l.Server, l.Protocol) }
func (r *recorder) TLSHandshake(l mail.Labels, f string) {
	r.add("tls %q", f)
}
func (r *recorder) Login(l mail.Labels, o mail.LoginOutcome, d time.Duration) {
	r.add("login %s auth=%t", o, d > 0)
}
func (r *recorder) Upstream(l mail.Labels, c, lg time.Duration) { r.add("upstream") }
func (r *recorder) Relayed(l mail.Labels, up, down int64) {
	r.mu.Lock()
	r.up, r.down = up, down
	r.mu.Unlock()
	r.add("relayed")
}
func (r *recorder) Ended(l mail.Labels, why mail.EndReason) { r.add("ended %s", why) }

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.events, "\n")
	r.events = nil
	return s
}

// echoUpstream is an IMAP upstream that accepts the LOGIN with literals
// and then echoes every line, until mailgate closes the connection.
type echoUpstream struct{ closed chan struct{} }

func (u *echoUpstream) Dial(ctx context.Context, _ netip.AddrPort, _ int) (net.Conn, error) {
	mine, theirs := net.Pipe()
	go func() {
		defer close(u.closed)
		defer mine.Close()
		r := bufio.NewReader(mine)
		io.WriteString(mine, "* OK up\r\n")
		for _, reply := range []string{"+ go\r\n", "+ go\r\n", "a1 OK done\r\n"} {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			io.WriteString(mine, reply)
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(mine, l); err != nil {
				return
			}
		}
	}()
	return theirs, nil
}

// The observer sees one event per step of a session, and the registry
// lists a relayed session with its live byte counts, without its
// password, until End closes both its connections.
func TestObserverAndRegistry(t *testing.T) {
	as := mailtest.StartAuthServer(t)
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; }")
	rec := &recorder{}
	reg := mail.NewRegistry()
	up := &echoUpstream{closed: make(chan struct{})}
	env := mailtest.Start(t, cfg, mailtest.Options{
		Protocols:    map[string]mail.Protocol{"imap": imap.Protocol{}},
		DialUpstream: up.Dial,
		Observer:     rec,
		Registry:     reg,
	})

	// A relayed session, listed live.
	as.Script(nil, []byte(authOK143))
	c := env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGIN alice secret\r\n")
	if l := c.ReadLine(5 * time.Second); l != "a1 OK done\r\n" {
		t.Fatalf("login reply %q", l)
	}
	c.Send("x NOOP\r\n")
	if l := c.ReadLine(5 * time.Second); l != "x NOOP\r\n" {
		t.Fatalf("echo %q", l)
	}
	// The relay counts a write once it returned: the client may have
	// read the bytes a moment before.
	var ss []mail.SessionInfo
	for i := 0; i < 100; i++ {
		if ss = env.Server.Sessions(); len(ss) == 1 && ss[0].BytesDown == 8 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ss) != 1 {
		t.Fatalf("sessions %+v", ss)
	}
	s := ss[0]
	if s.Login != "alice" || s.State != "relay" || s.Protocol != "imap" || s.Server != "127.0.0.1:143" ||
		s.Upstream != "127.0.0.1:143" || !strings.HasPrefix(s.Client, "127.0.0.1:") || s.Start.IsZero() {
		t.Errorf("session %+v", s)
	}
	if s.BytesUp != int64(len("x NOOP\r\n")) || s.BytesDown != int64(len("x NOOP\r\n")) {
		t.Errorf("live bytes up %d down %d, want 8 each", s.BytesUp, s.BytesDown)
	}
	if b, _ := json.Marshal(ss); strings.Contains(string(b), "secret") {
		t.Errorf("the password is listed: %s", b)
	}
	if env.Server.EndSession(s.ID+1000) || env.Server.EndSessionsOf("bob") != 0 {
		t.Error("ended a session that does not exist")
	}
	if !env.Server.EndSession(s.ID) {
		t.Fatal("EndSession: not found")
	}
	if rest := c.ReadAll(5 * time.Second); rest != "" {
		t.Errorf("after End the client got %q, want EOF", rest)
	}
	<-c.Done()
	select {
	case <-up.closed:
	case <-time.After(5 * time.Second):
		t.Error("the upstream connection stayed open")
	}
	if ss := env.Server.Sessions(); len(ss) != 0 {
		t.Errorf("ended session still listed: %+v", ss)
	}
	if got := rec.take(); got != "accepted 127.0.0.1:143 imap\nupstream\nlogin ok auth=true\nrelayed\nended admin" {
		t.Errorf("events:\n%s", got)
	}
	if rec.up != 8 || rec.down != 8 {
		t.Errorf("relayed up %d down %d, want 8 each", rec.up, rec.down)
	}

	// A refused login, then a session ended by its login, then LOGOUT.
	as.Script(nil, []byte("HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\n\r\n"))
	c = env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGIN alice wrong\r\n")
	c.ReadAll(5 * time.Second)
	<-c.Done()
	if got := rec.take(); got != "accepted 127.0.0.1:143 imap\nlogin invalid auth=true\nended error" {
		t.Errorf("refused login events:\n%s", got)
	}

	c = env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGOUT\r\n")
	c.ReadAll(5 * time.Second)
	<-c.Done()
	if got := rec.take(); got != "accepted 127.0.0.1:143 imap\nended client_closed" {
		t.Errorf("logout events:\n%s", got)
	}

	c = env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 NOOP\r\n")
	c.ReadLine(5 * time.Second)
	if n := env.Server.EndSessionsOf(""); n != 0 {
		t.Errorf("EndSessionsOf(\"\") ended %d sessions, want none", n)
	}
	ss = env.Server.Sessions()
	if len(ss) != 1 || ss[0].State != "pre-auth" || ss[0].Login != "" {
		t.Fatalf("pre-auth session: %+v", ss)
	}
	env.Server.EndSession(ss[0].ID)
	c.ReadAll(5 * time.Second)
	<-c.Done()
	if got := rec.take(); got != "accepted 127.0.0.1:143 imap\nended admin" {
		t.Errorf("ended pre-auth events:\n%s", got)
	}
}

// TLS handshakes are reported with a reason on failure, and the registry
// shows the session's TLS version and cipher.
func TestObserverTLS(t *testing.T) {
	dir, _ := filepath.Abs("../../confparse/testdata/sslfile")
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:993 ssl; protocol imap; auth_http 127.0.0.1:9/auth; "+
		"ssl_certificate "+dir+"/cert.pem; ssl_certificate_key "+dir+"/key.pem; }")
	rec := &recorder{}
	env := mailtest.Start(t, cfg, mailtest.Options{
		Protocols: map[string]mail.Protocol{"imap": imap.Protocol{}},
		Observer:  rec,
	})
	c := env.Dial(t, mailtest.TCP, 0)
	tc := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(tc).ReadString('\n'); err != nil || l != "* OK IMAP4 ready\r\n" {
		t.Fatalf("greeting over TLS %q %v", l, err)
	}
	ss := env.Server.Sessions()
	if len(ss) != 1 || ss[0].TLS != "TLSv1.2" || !strings.Contains(ss[0].Cipher, "AES128-GCM-SHA256") {
		t.Errorf("TLS session %+v", ss)
	}
	tc.Close()
	<-c.Done()
	if got := rec.take(); got != "accepted 127.0.0.1:993 imap\ntls \"\"\nended client_closed" {
		t.Errorf("TLS events:\n%s", got)
	}

	c = env.Dial(t, mailtest.TCP, 0)
	c.Send("GET / HTTP/1.0\r\n\r\n")
	c.ReadAll(5 * time.Second)
	<-c.Done()
	if got := rec.take(); got != "accepted 127.0.0.1:993 imap\ntls \"not_tls\"\nended error" {
		t.Errorf("HTTP to a TLS port events:\n%s", got)
	}
}
