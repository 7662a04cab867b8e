package smtp

// STARTTLS end to end: the harness's client steps speak plain text only,
// so this test drives its own client through the TLS upgrade, once per
// implementation, and compares what the client, the auth server and
// Postfix saw.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// tlsClient is a line-level SMTP client that can switch to TLS.
type tlsClient struct {
	conn net.Conn
	r    *bufio.Reader
	log  strings.Builder
}

func (c *tlsClient) send(s string) {
	fmt.Fprintf(&c.log, "C: %q\n", s)
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	c.conn.Write([]byte(s))                                  //nolint:errcheck
}

// reply reads one complete SMTP reply.
func (c *tlsClient) reply() string {
	var all string
	for {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		line, err := c.r.ReadString('\n')
		all += line
		if err != nil {
			fmt.Fprintf(&c.log, "S: %q [%v]\n", all, err)
			return all
		}
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	fmt.Fprintf(&c.log, "S: %q\n", all)
	return all
}

func (c *tlsClient) closed() {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	b, err := io.ReadAll(c.r)
	fmt.Fprintf(&c.log, "S: %q [closed: %v]\n", b, err)
}

func TestSTARTTLS(t *testing.T) {
	pf := harness.StartPostfix(t)
	up, rec := harness.Record(t, pf.Addr)
	as := harness.StartAuth(t, authserver.Script{
		Users:        map[string]authserver.User{"good": {Password: "pw", Upstream: up}},
		NoneUpstream: up,
	})
	cert, key := harness.SelfSigned("mx.example.test")
	conf := harness.Config{
		Vars:  map[string]string{"auth": as.URL()},
		Files: map[string]string{"cert.pem": cert, "key.pem": key},
		Mail: `
    auth_http {{auth}};
    server_name mx.example.test;
    ssl_certificate {{prefix}}cert.pem;
    ssl_certificate_key {{prefix}}key.pem;
    server {
        listen 127.0.0.1:{{port on}};
        protocol smtp;
        starttls on;
        smtp_capabilities PIPELINING;
    }
    server {
        listen 127.0.0.1:{{port only}};
        protocol smtp;
        starttls only;
        smtp_auth plain login none;
        smtp_capabilities PIPELINING;
    }`,
	}

	type scenario struct {
		name   string
		listen string
		run    func(c *tlsClient) // after the greeting
	}
	upgrade := func(c *tlsClient) {
		tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"}) //nolint:gosec // self-signed test certificate
		tc.SetDeadline(time.Now().Add(5 * time.Second))                                                //nolint:errcheck
		if err := tc.Handshake(); err != nil {
			fmt.Fprintf(&c.log, "[handshake: %v]\n", err)
			return
		}
		tc.SetDeadline(time.Time{}) //nolint:errcheck
		c.conn = tc
		c.r = bufio.NewReader(tc)
		c.log.WriteString("[TLS]\n")
	}
	plain := "AUTH PLAIN " + b64("\x00good\x00pw") + "\r\n"
	scenarios := []scenario{
		{"starttls on, auth inside TLS", "on", func(c *tlsClient) {
			c.send("EHLO client.example\r\n")
			c.reply()
			c.send("STARTTLS\r\n")
			c.reply()
			upgrade(c)
			for _, l := range []string{"EHLO client.example\r\n", "STARTTLS\r\n", plain, "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", "DATA\r\n"} {
				c.send(l)
				c.reply()
			}
			c.send(message)
			c.reply()
			c.send("QUIT\r\n")
			c.reply()
			c.closed()
		}},
		{"starttls on, pipelined command dropped", "on", func(c *tlsClient) {
			c.send("STARTTLS\r\nNOOP\r\n")
			c.reply()
			upgrade(c)
			c.send("NOOP\r\n")
			c.reply()
			c.send("QUIT\r\n")
			c.reply()
			c.closed()
		}},
		{"starttls only", "only", func(c *tlsClient) {
			c.send("EHLO client.example\r\n")
			c.reply()
			c.send(plain)
			c.reply()
			c.send("STARTTLS\r\n")
			c.reply()
			upgrade(c)
			c.send("EHLO client.example\r\n")
			c.reply()
			c.send(plain)
			c.reply()
			c.send("QUIT\r\n")
			c.reply()
			c.closed()
		}},
		{"starttls only lets none through in plain text", "only", func(c *tlsClient) {
			c.send("EHLO client.example\r\n")
			c.reply()
			c.send("MAIL FROM:<a@example.org>\r\n")
			c.reply()
			c.send("RCPT TO:<b@example.com>\r\n")
			c.reply()
			c.send("QUIT\r\n")
			c.reply()
			c.closed()
		}},
	}

	norm := []*regexp.Regexp{
		regexp.MustCompile(`queued as [0-9A-F]+`),
		regexp.MustCompile(`Auth-SSL-Cipher: [^\r]*`),
		regexp.MustCompile(`Auth-SSL-Protocol: [^\r]*`),
		regexp.MustCompile(`id [0-9A-F]+`),
	}
	normalize := func(s string) string {
		for _, re := range norm {
			s = re.ReplaceAllStringFunc(s, func(m string) string { return strings.SplitN(m, " ", 2)[0] + " X" })
		}
		return s
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			results := map[harness.Impl]string{}
			for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
				p := harness.Start(t, impl, conf)
				as.Reset()
				mark := rec.Len()
				conn, err := net.DialTimeout("tcp", p.Addr(sc.listen), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				c := &tlsClient{conn: conn, r: bufio.NewReader(conn)}
				c.reply()
				sc.run(c)
				conn.Close()
				rec.WaitIdle(mark, 5*time.Second)
				var b strings.Builder
				b.WriteString(c.log.String())
				for i, r := range as.Requests() {
					fmt.Fprintf(&b, "== auth %d\n%s", i+1, r)
				}
				for i, rc := range rec.Since(mark) {
					fmt.Fprintf(&b, "== upstream %d\n>: %q\n<: %q\n", i+1, rc.Sent(), rc.Received())
				}
				p.Stop()
				results[impl] = normalize(b.String())
			}
			if results[harness.Nginx] != results[harness.Mailgate] {
				t.Errorf("nginx and mailgate differ:\n--- nginx\n%s\n--- mailgate\n%s", results[harness.Nginx], results[harness.Mailgate])
			} else if testing.Verbose() {
				t.Logf("transcript:\n%s", results[harness.Nginx])
			}
		})
	}
}
