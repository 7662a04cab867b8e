// Package accesslog tests mailgate's access log (mailgate-only, issue 13,
// docs/access-log.md) with real IMAP sessions through mailgate to
// Dovecot: one JSON line per session whose fields match what the client
// did (bytes counted on the client's side of the socket), the status of a
// refused login and of an upstream that refuses the connection, no
// password anywhere, and nginx 1.22.1's refusal of the directives.
package accesslog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

const (
	alicePass = "alice-s3cret"
	bobPass   = "bob-s3cret"
)

// client is an IMAP client that counts the bytes it sends and receives.
type client struct {
	t          *testing.T
	c          net.Conn
	br         *bufio.Reader
	sent, recv int
}

func (c *client) Read(p []byte) (int, error) {
	n, err := c.c.Read(p)
	c.recv += n
	return n, err
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, c: nc}
	c.br = bufio.NewReader(c)
	if l := c.line(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q", l)
	}
	return c
}

func (c *client) line() string {
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %q %v", l, err)
	}
	return l
}

func (c *client) cmd(tag, line string) string {
	c.t.Helper()
	n, _ := fmt.Fprintf(c.c, "%s %s\r\n", tag, line)
	c.sent += n
	for {
		if l := c.line(); strings.HasPrefix(l, tag+" ") {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

// eof reads to the end: every byte the server sent is counted.
func (c *client) eof() string {
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	b, _ := io.ReadAll(c.br)
	return string(b)
}

const format = `log_format json escape=json '{"client":"$remote_addr","port":"$remote_port","server":"$server_addr:$server_port",'
        '"protocol":"$protocol","login":"$login","auth":"$auth_status","upstream":"$upstream_addr",'
        '"sent":"$bytes_sent","received":"$bytes_received","up_sent":"$upstream_bytes_sent",'
        '"up_received":"$upstream_bytes_received","time":"$session_time","status":"$status",'
        '"end":"$end_reason","conn":"$connection","ssl":"$ssl_protocol"}';`

func TestAccessLog(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": alicePass, "bob": bobPass})
	dc.Deliver("alice", "Subject: hello\n\nfirst message body\n")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := closed.Addr().String()
	closed.Close() // nothing listens there: the connect is refused
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: alicePass, Upstream: dc.IMAPAddr},
		"bob":   {Password: bobPass, Upstream: down},
	}})
	p := harness.StartMailgate(t, harness.Config{
		Vars: map[string]string{"auth": as.URL()},
		Mail: `
    auth_http {{auth}};
    ` + format + `
    access_log access.log json;
    server { listen 127.0.0.1:{{port imap}}; protocol imap; }`})
	addr := p.Addr("imap")
	path := p.Prefix + "access.log"

	// A login, a SELECT, LOGOUT: Dovecot closes.
	c := dial(t, addr)
	if r := c.cmd("a", "LOGIN alice "+alicePass); !strings.HasPrefix(r, "a OK") {
		t.Fatalf("LOGIN: %q", r)
	}
	if r := c.cmd("b", "SELECT INBOX"); !strings.HasPrefix(r, "b OK") {
		t.Fatalf("SELECT: %q", r)
	}
	c.cmd("c", "LOGOUT")
	c.eof()
	ok := c
	// A wrong password.
	c = dial(t, addr)
	if r := c.cmd("a", "LOGIN alice wrong-password"); !strings.HasPrefix(r, "a NO") {
		t.Fatalf("wrong password: %q", r)
	}
	c.eof()
	refused := c
	// auth_http says OK, the upstream refuses the connection.
	// The client gets nginx's untagged internal error, then the close.
	c = dial(t, addr)
	n0, _ := fmt.Fprintf(c.c, "a LOGIN bob %s\r\n", bobPass)
	c.sent += n0
	if rest := c.eof(); !strings.Contains(rest, "internal server error") {
		t.Fatalf("login to a closed upstream: %q", rest)
	}
	upDown := c

	var lines []map[string]string
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines = lines[:0]
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == "" {
				continue
			}
			m := map[string]string{}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not JSON: %q: %v", l, err)
			}
			lines = append(lines, m)
		}
		if len(lines) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %v", len(lines), lines)
	}
	n := func(c *client) map[string]string {
		return map[string]string{"sent": fmt.Sprint(c.recv), "received": fmt.Sprint(c.sent),
			"port": fmt.Sprint(c.c.LocalAddr().(*net.TCPAddr).Port)}
	}
	for i, want := range []map[string]string{
		{"login": "alice", "auth": "OK", "upstream": dc.IMAPAddr, "status": "200", "end": "upstream_closed"},
		{"login": "alice", "auth": "Invalid login or password", "upstream": "", "status": "403", "end": "error",
			"up_sent": "", "up_received": ""},
		{"login": "bob", "auth": "OK", "upstream": down, "status": "502", "end": "error", "up_sent": "0", "up_received": "0"},
	} {
		for k, v := range n([]*client{ok, refused, upDown}[i]) {
			want[k] = v
		}
		want["client"], want["server"], want["protocol"], want["ssl"] = "127.0.0.1", addr, "imap", ""
		for k, v := range want {
			if lines[i][k] != v {
				t.Errorf("line %d: %s=%q, want %q (%v)", i+1, k, lines[i][k], v, lines[i])
			}
		}
	}
	for _, k := range []string{"up_sent", "up_received"} {
		if lines[0][k] == "0" || lines[0][k] == "" {
			t.Errorf("relayed session: %s=%q", k, lines[0][k])
		}
	}
	b, _ := os.ReadFile(path)
	for _, pw := range []string{alicePass, bobPass, "wrong-password"} {
		if strings.Contains(string(b), pw) || strings.Contains(p.ErrorLog(), pw) {
			t.Errorf("the password %q is in a log:\n%s", pw, b)
		}
	}
}

// nginx 1.22.1's mail module has neither directive.
func TestNginxRefuses(t *testing.T) {
	_, err := harness.TryStart(t, harness.Nginx, harness.Config{
		Mail: format + `
    access_log access.log json;
    server { listen 127.0.0.1:{{port imap}}; protocol imap; auth_http 127.0.0.1:9/auth; }`})
	if err == nil || !strings.Contains(err.Error(), `"log_format" directive is not allowed here`) {
		t.Errorf("nginx with log_format in mail{}: %v", err)
	}
	_, err = harness.TryStart(t, harness.Nginx, harness.Config{
		Mail: `access_log access.log;
    server { listen 127.0.0.1:{{port imap}}; protocol imap; auth_http 127.0.0.1:9/auth; }`})
	if err == nil || !strings.Contains(err.Error(), `"access_log" directive is not allowed here`) {
		t.Errorf("nginx with access_log in mail{}: %v", err)
	}
}
