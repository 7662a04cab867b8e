package mailtest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/accesslog"
	"mailgate/mail/errlog"
	"mailgate/mail/imap"
	"mailgate/mail/mailtest"
)

// everyVariable is a log_format naming every access log variable, as
// name=value fields separated by "|".
func everyVariable() string {
	var b strings.Builder
	for _, v := range confparse.AccessLogVariables {
		b.WriteString(v + "=$" + v + "|")
	}
	return b.String()
}

// accessLogEnv starts an IMAP server whose sessions are logged with every
// variable to a file, and returns the file's path.
func accessLogEnv(t *testing.T, as *mailtest.AuthServer, dial mail.DialFunc) (*mailtest.Env, *accesslog.Set, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := mailtest.Config(t, "log_format all '"+everyVariable()+"';\n"+
		"access_log "+path+" all;\n"+
		"server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; }")
	set, err := accesslog.Open(cfg, func(l errlog.Level, msg string) { t.Errorf("access log error: %s", msg) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	env := mailtest.Start(t, cfg, mailtest.Options{
		Protocols:    map[string]mail.Protocol{"imap": imap.Protocol{}},
		DialUpstream: dial,
		AccessLog:    set,
	})
	return env, set, path
}

// lastLine reads the access log's last line as name → value.
func lastLine(t *testing.T, path string, n int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), n, b)
	}
	m := map[string]string{}
	for _, f := range strings.Split(strings.TrimSuffix(lines[n-1], "|"), "|") {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

// checkFields compares fields with want; a want value starting with "~"
// is a regular expression.
func checkFields(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: no %s in %v", what, k, got)
			continue
		}
		if re, isRE := strings.CutPrefix(w, "~"); isRE {
			if !regexp.MustCompile("^(" + re + ")$").MatchString(g) {
				t.Errorf("%s: %s=%q, want /%s/", what, k, g, re)
			}
		} else if g != w {
			t.Errorf("%s: %s=%q, want %q", what, k, g, w)
		}
	}
}

// One line per session with each variable's value, for a relayed
// session, a refused login and an upstream that refuses the connection;
// the password appears in none of them.
func TestAccessLogFields(t *testing.T) {
	as := mailtest.StartAuthServer(t)
	refuse := false
	up := &echoUpstream{closed: make(chan struct{})}
	dial := func(ctx context.Context, a netip.AddrPort, pp int) (net.Conn, error) {
		if refuse {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		return up.Dial(ctx, a, pp)
	}
	env, _, path := accessLogEnv(t, as, dial)
	now := time.Now()
	common := map[string]string{
		"remote_addr": "127.0.0.1", "remote_port": `~\d+`, "server_addr": "127.0.0.1", "server_port": `~\d+`,
		"protocol": "imap", "session_time": `~\d+\.\d{3}`, "connection": `~\d+`, "pid": `~\d+`,
		"hostname": `~.+`, "ssl_protocol": "-", "ssl_cipher": "-",
		"time_local":   "~" + regexp.QuoteMeta(now.Format("02/Jan/2006:")) + `\d\d:\d\d:\d\d [-+]\d{4}`,
		"time_iso8601": "~" + regexp.QuoteMeta(now.Format("2006-01-02T")) + `\d\d:\d\d:\d\d([-+]\d\d:\d\d|Z)`,
		"msec":         `~\d{10}\.\d{3}`,
	}

	// Logged in, one command relayed, the client closes.
	as.Script(nil, []byte(authOK143))
	c := env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGIN alice s3cr3tPW\r\n")
	if l := c.ReadLine(5 * time.Second); l != "a1 OK done\r\n" {
		t.Fatalf("login reply %q", l)
	}
	c.Send("x NOOP\r\n")
	if l := c.ReadLine(5 * time.Second); l != "x NOOP\r\n" {
		t.Fatalf("echo %q", l)
	}
	c.Close()
	<-c.Done()
	checkFields(t, "relayed", lastLine(t, path, 1), common)
	checkFields(t, "relayed", lastLine(t, path, 1), map[string]string{
		"login": "alice", "auth_status": "OK", "upstream_addr": "127.0.0.1:143", "status": "200",
		"end_reason": "client_closed",
		// greeting 18 + the upstream's "a1 OK done" 12 + echo 8
		"bytes_sent": "38",
		// the LOGIN line 25 + 8
		"bytes_received": "33",
		// "a1 LOGIN {5}", "alice {8}", the password: 14 + 11 + 10, + 8
		"upstream_bytes_sent": "43",
		// "* OK up" 9, two "+ go" 12, "a1 OK done" 12, + 8
		"upstream_bytes_received": "41",
	})

	// auth_http refuses.
	as.Script(nil, []byte("HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n\r\n"))
	c = env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGIN alice wr0ngPW\r\n")
	c.ReadAll(5 * time.Second)
	<-c.Done()
	checkFields(t, "refused", lastLine(t, path, 2), common)
	checkFields(t, "refused", lastLine(t, path, 2), map[string]string{
		"login": "alice", "auth_status": "Invalid login or password", "upstream_addr": "-", "status": "403",
		"upstream_bytes_sent": "-", "upstream_bytes_received": "-", "bytes_received": "24", "end_reason": "error",
	})

	// auth_http says OK, the upstream refuses the connection.
	refuse = true
	as.Script(nil, []byte(authOK143))
	c = env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGIN bob s3cr3tPW\r\n")
	c.ReadAll(5 * time.Second)
	<-c.Done()
	checkFields(t, "upstream refused", lastLine(t, path, 3), map[string]string{
		"login": "bob", "auth_status": "OK", "upstream_addr": "127.0.0.1:143", "status": "502",
		"upstream_bytes_sent": "0", "upstream_bytes_received": "0",
	})

	// LOGOUT before any login: nothing to say about auth or upstream.
	c = env.Dial(t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGOUT\r\n")
	c.ReadAll(5 * time.Second)
	<-c.Done()
	checkFields(t, "logout", lastLine(t, path, 4), map[string]string{
		"login": "-", "auth_status": "-", "upstream_addr": "-", "status": "200", "end_reason": "client_closed",
		"bytes_received": "11",
	})

	b, _ := os.ReadFile(path)
	for _, pw := range []string{"s3cr3tPW", "wr0ngPW"} {
		if strings.Contains(string(b), pw) {
			t.Errorf("the password %q is in the access log:\n%s", pw, b)
		}
	}
}

type panicLogger struct{}

func (panicLogger) LogSession(*mail.SessionRecord) { panic("boom") }

// A session logger that panics costs the process nothing: the panic is
// logged at alert and counted, and the next session is served.
func TestAccessLogPanicContained(t *testing.T) {
	cfg := mailtest.Config(t, "log_format f x; access_log /dev/null f;\n"+
		"server { listen 127.0.0.1:143; protocol imap; auth_http 127.0.0.1:9/auth; }")
	env := mailtest.Start(t, cfg, mailtest.Options{
		Protocols: map[string]mail.Protocol{"imap": imap.Protocol{}},
		AccessLog: panicLogger{},
	})
	before := mail.PanicsRecovered()
	for i := 0; i < 2; i++ {
		c := env.Dial(t, mailtest.Unix, 0)
		if l := c.ReadLine(5 * time.Second); l != "* OK IMAP4 ready\r\n" {
			t.Fatalf("greeting %q", l)
		}
		c.Send("a1 LOGOUT\r\n")
		c.ReadAll(5 * time.Second)
		<-c.Done()
	}
	if n := mail.PanicsRecovered() - before; n != 2 {
		t.Errorf("%d panics counted, want 2", n)
	}
	if !strings.Contains(env.Log.String(), "[alert]") || !strings.Contains(env.Log.String(), "boom") {
		t.Errorf("no alert line:\n%s", env.Log.String())
	}
}

// With TLS: the protocol and cipher, and bytes counted as payload (the
// greeting and the LOGOUT reply: as many as without TLS).
func TestAccessLogTLS(t *testing.T) {
	dir, _ := filepath.Abs("../../confparse/testdata/sslfile")
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := mailtest.Config(t, "log_format all '"+everyVariable()+"';\naccess_log "+path+" all;\n"+
		"server { listen 127.0.0.1:993 ssl; protocol imap; auth_http 127.0.0.1:9/auth; "+
		"ssl_certificate "+dir+"/cert.pem; ssl_certificate_key "+dir+"/key.pem; }")
	set, err := accesslog.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	env := mailtest.Start(t, cfg, mailtest.Options{
		Protocols: map[string]mail.Protocol{"imap": imap.Protocol{}},
		AccessLog: set,
	})
	c := env.Dial(t, mailtest.TCP, 0)
	tc := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(tc)
	if l, err := r.ReadString('\n'); err != nil || l != "* OK IMAP4 ready\r\n" {
		t.Fatalf("greeting over TLS %q %v", l, err)
	}
	io.WriteString(tc, "a1 LOGOUT\r\n")
	io.ReadAll(r)
	tc.Close()
	<-c.Done()
	checkFields(t, "tls", lastLine(t, path, 1), map[string]string{
		"ssl_protocol": "TLSv1.2", "ssl_cipher": "~ECDHE-(RSA|ECDSA)-AES128-GCM-SHA256",
		"bytes_received": "11", "bytes_sent": "42", "status": "200", // as without TLS
	})
}
