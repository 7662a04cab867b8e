package upstreamtls

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// smtpSession authenticates through the proxy and sends one message; it
// returns every reply line the client read.
func smtpSession(t *testing.T, addr string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	var got []string
	// reply reads one (multi-line) reply and returns its last line.
	reply := func() string {
		for {
			l, err := br.ReadString('\n')
			if l != "" {
				got = append(got, l)
			}
			if err != nil || len(l) < 4 || l[3] != '-' {
				return l
			}
		}
	}
	step := func(cmd, want string) bool {
		if cmd != "" {
			c.Write([]byte(cmd))
		}
		return strings.HasPrefix(reply(), want)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + pw))
	_ = step("", "220") && step("EHLO client.test\r\n", "250") && step("AUTH PLAIN "+auth+"\r\n", "235") &&
		step("MAIL FROM:<a@example.test>\r\n", "250") && step("RCPT TO:<sink@example.com>\r\n", "250") &&
		step("DATA\r\n", "354") && step("Subject: over STARTTLS\r\n\r\nhello\r\n.\r\n", "250") && step("QUIT\r\n", "221")
	return got
}

// SMTP: STARTTLS to a Postfix that requires it (smtpd_tls_security_level
// = encrypt) after EHLO, then XCLIENT and the client's EHLO inside TLS;
// a Postfix that offers no STARTTLS gets no XCLIENT.
func TestSMTPStartTLS(t *testing.T) {
	pki := writePKI(t)
	pfTLS := harness.StartPostfix(t, "smtpd_tls_cert_file = "+pki+"/server.pem", "smtpd_tls_key_file = "+pki+"/server.key",
		"smtpd_tls_security_level = encrypt", "smtpd_tls_loglevel = 1")
	pfPlain := harness.StartPostfix(t)
	as := harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{"alice": {Password: pw}},
		Handler: func(r *authserver.Request) *authserver.Behavior {
			addr := pfTLS.Addr
			if r.Get("X-Upstream") == "plain" {
				addr = pfPlain.Addr
			}
			host, port, _ := net.SplitHostPort(addr)
			return &authserver.Behavior{Server: host, Port: port}
		},
	})
	verify := "proxy_starttls on; proxy_ssl_verify on; proxy_ssl_trusted_certificate " + pki + "/ca.pem; proxy_ssl_name mail.test;"
	p := harness.StartMailgate(t, harness.Config{Vars: map[string]string{"auth": as.URL()}, Mail: `
    auth_http {{auth}};
    xclient on;
    smtp_auth plain login;
    server { listen 127.0.0.1:{{port smtp_tls}}; protocol smtp; auth_http_header X-Upstream tls; ` + verify + ` }
    server { listen 127.0.0.1:{{port smtp_plain}}; protocol smtp; auth_http_header X-Upstream plain; ` + verify + ` }`})

	t.Run("STARTTLS", func(t *testing.T) {
		got := smtpSession(t, p.Addr("smtp_tls"))
		if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "221") {
			t.Fatalf("client read %q\nerror.log:\n%s\nmaillog:\n%s", got, p.ErrorLog(), pfTLS.Log())
		}
		msgs := pfTLS.WaitMessages(1, 10*time.Second)
		if len(msgs) != 1 || !strings.Contains(msgs[0], "hello") {
			t.Fatalf("delivered %q", msgs)
		}
		if log := pfTLS.Log(); !strings.Contains(log, "TLS connection established from") {
			t.Errorf("Postfix logged no TLS connection:\n%s", log)
		}
	})
	t.Run("STARTTLS not offered", func(t *testing.T) {
		got := smtpSession(t, p.Addr("smtp_plain"))
		if len(got) == 0 || got[len(got)-1] != "451 4.3.2 Internal server error\r\n" {
			t.Errorf("client read %q", got)
		}
		waitLog(t, p, `\[error\] .*upstream does not support STARTTLS while sending STARTTLS to upstream, client: 127\.0\.0\.1, server: [0-9.:]+, login: "alice", upstream: 127\.0\.0\.1:\d+`)
		time.Sleep(300 * time.Millisecond)
		if log := pfPlain.Log(); strings.Contains(log, "XCLIENT") || strings.Contains(log, "sasl") {
			t.Errorf("the plain upstream saw more than EHLO:\n%s", log)
		}
	})
}
