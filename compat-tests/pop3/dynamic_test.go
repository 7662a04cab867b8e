package pop3

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
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

// client is a small scripted POP3 client that renders what it saw.
type client struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	out strings.Builder
}

func dial(t *testing.T, addr string) *client {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) { c.sendAs(s, s) }

// sendAs sends s but renders shown (for salt-dependent digests).
func (c *client) sendAs(s, shown string) {
	fmt.Fprintf(&c.out, "C: %s\n", harness.Escape([]byte(shown)))
	io.WriteString(c.c, s) //nolint:errcheck
}

// line reads one line (the salt greeting too).
func (c *client) line() string {
	l, err := c.r.ReadString('\n')
	fmt.Fprintf(&c.out, "S: %s\n", harness.Escape([]byte(l)))
	if err != nil {
		fmt.Fprintf(&c.out, "[%v]\n", err)
	}
	return l
}

// until reads lines through the one equal to end.
func (c *client) until(end string) {
	for {
		l := c.line()
		if l == end || l == "" {
			return
		}
	}
}

func (c *client) closed() {
	rest, err := io.ReadAll(c.r)
	fmt.Fprintf(&c.out, "S: %s\n[closed %v]\n", harness.Escape(rest), err != nil)
	c.c.Close()
}

func (c *client) starttls() { c.starttlsCert(nil) }

func (c *client) starttlsCert(cert *tls.Certificate) {
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"pop3"}} //nolint:gosec // test
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tc := tls.Client(c.c, cfg)
	if err := tc.Handshake(); err != nil {
		fmt.Fprintf(&c.out, "[handshake: %v]\n", err)
		return
	}
	st := tc.ConnectionState()
	fmt.Fprintf(&c.out, "[tls %x alpn %q]\n", st.Version, st.NegotiatedProtocol)
	c.c = tc
	c.r = bufio.NewReader(tc)
}

var saltRe = regexp.MustCompile(`<[^>]+>`)

// compareBoth runs script against nginx and mailgate with conf and compares
// the client renderings, the auth_http requests and the connection lines
// of error.log after the harness's normalisers.
func compareBoth(t *testing.T, conf harness.Config, auth *authserver.Server, script func(t *testing.T, p *harness.Proxy) string, differ string) {
	t.Helper()
	var renders []string
	for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
		p := harness.Start(t, impl, conf)
		auth.Reset()
		out := script(t, p)
		time.Sleep(300 * time.Millisecond)
		p.Stop()
		var b strings.Builder
		b.WriteString("== client\n" + out)
		for i, r := range auth.Requests() {
			fmt.Fprintf(&b, "== auth request %d\n%s", i+1, harness.Escape(r))
			b.WriteString("\n")
		}
		b.WriteString("== error.log\n" + harness.ConnLogLines(p.ErrorLog()))
		s := b.String()
		for name, port := range p.Ports {
			s = strings.ReplaceAll(s, fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1:{{port "+name+"}}")
		}
		for _, n := range append(harness.DefaultNormalizers(), harness.Replace(`Auth-Pass: [0-9a-f]{32}\\r`, `Auth-Pass: <DIGEST>\r`)) {
			s = n(s)
		}
		renders = append(renders, s)
	}
	if renders[0] != renders[1] {
		if differ != "" {
			t.Logf("declared difference (%s):\nnginx:\n%s\nmailgate:\n%s", differ, renders[0], renders[1])
			return
		}
		t.Errorf("nginx and mailgate differ:\nnginx:\n%s\nmailgate:\n%s", renders[0], renders[1])
	} else if testing.Verbose() {
		t.Logf("identical:\n%s", renders[0])
	}
}

func TestPOP3Dynamic(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.POP3Addr},
	}})
	cert, key := harness.SelfSigned("mx.test")
	ccert, ckey := harness.SelfSigned("mx.test")
	clientCert, err := tls.X509KeyPair([]byte(ccert), []byte(ckey))
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := tls.X509KeyPair([]byte(cert), []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	conf := harness.Config{Mail: `
    server_name mx.test;
    auth_http ` + auth.URL() + `;
    pop3_auth plain apop cram-md5;
    ssl_certificate {{prefix}}cert.pem;
    ssl_certificate_key {{prefix}}key.pem;
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;
    }
    server {
        listen 127.0.0.1:{{port stls}};
        protocol pop3;
        starttls on;
    }
    server {
        listen 127.0.0.1:{{port ssl}} ssl;
        protocol pop3;
    }
    server {
        listen 127.0.0.1:{{port ssl12}} ssl;
        protocol pop3;
        ssl_protocols TLSv1.2;
    }
    server {
        listen 127.0.0.1:{{port verify}} ssl;
        protocol pop3;
        ssl_protocols TLSv1.2;
        ssl_verify_client optional;
        ssl_client_certificate {{prefix}}client.pem;
    }
    server {
        listen 127.0.0.1:{{port verifyon}} ssl;
        protocol pop3;
        ssl_protocols TLSv1.2;
        ssl_verify_client on;
        ssl_client_certificate {{prefix}}client.pem;
    }`, Files: map[string]string{"cert.pem": cert, "key.pem": key, "client.pem": ccert}}
	dc.SetMailbox("alice", "Subject: hi\n\nhello\n")

	t.Run("apop", func(t *testing.T) {
		compareBoth(t, conf, auth, func(t *testing.T, p *harness.Proxy) string {
			c := dial(t, p.Addr("pop3"))
			salt := saltRe.FindString(c.line())
			d := md5.Sum([]byte(salt + "secret"))
			c.sendAs("APOP alice "+hex.EncodeToString(d[:])+"\r\n", "APOP alice <DIGEST>\r\n")
			c.line()
			c.send("STAT\r\nQUIT\r\n")
			c.closed()
			return c.out.String()
		}, "")
	})
	t.Run("cram-md5", func(t *testing.T) {
		compareBoth(t, conf, auth, func(t *testing.T, p *harness.Proxy) string {
			c := dial(t, p.Addr("pop3"))
			salt := saltRe.FindString(c.line())
			c.send("AUTH CRAM-MD5\r\n")
			c.line()
			m := hmac.New(md5.New, []byte("secret"))
			m.Write([]byte(salt))
			c.sendAs(b64("alice "+hex.EncodeToString(m.Sum(nil)))+"\r\n", "<RESPONSE>\r\n")
			c.line()
			c.send("QUIT\r\n")
			c.closed()
			return c.out.String()
		}, "")
	})
	t.Run("cram-md5 after failed apop keeps the salt", func(t *testing.T) {
		compareBoth(t, conf, auth, func(t *testing.T, p *harness.Proxy) string {
			c := dial(t, p.Addr("pop3"))
			g := c.line()
			salt := saltRe.FindString(g)
			c.send("AUTH CRAM-MD5\r\n")
			ch := c.line()
			if ch != "+ "+b64(salt)+"\r\n" {
				fmt.Fprintf(&c.out, "[challenge is not the greeting salt]\n")
			}
			c.send("*\r\n")
			c.line()
			c.send("QUIT\r\n")
			c.closed()
			return c.out.String()
		}, "")
	})
	t.Run("connection numbers", func(t *testing.T) {
		compareBoth(t, conf, auth, func(t *testing.T, p *harness.Proxy) string {
			var all strings.Builder
			c := dial(t, p.Addr("pop3"))
			c.line()
			c.send("USER alice\r\nPASS wrong\r\n")
			c.closed()
			all.WriteString(c.out.String())
			// Let the previous session log its end first.
			time.Sleep(200 * time.Millisecond)
			c = dial(t, p.Addr("pop3"))
			c.line()
			c.send("USER alice\r\nPASS secret\r\n")
			c.line()
			c.line()
			c.send("QUIT\r\n")
			c.closed()
			all.WriteString(c.out.String())
			// Let the previous session log its end first.
			time.Sleep(200 * time.Millisecond)
			c = dial(t, p.Addr("pop3"))
			c.line()
			c.send("QUIT\r\n")
			c.closed()
			all.WriteString(c.out.String())
			return all.String()
		}, "")
	})
	t.Run("starttls", func(t *testing.T) {
		compareBoth(t, conf, auth, func(t *testing.T, p *harness.Proxy) string {
			c := dial(t, p.Addr("stls"))
			c.line()
			c.send("CAPA\r\n")
			c.until(".\r\n")
			c.send("STLS\r\nNOOP\r\n")
			c.line()
			c.starttls()
			c.send("CAPA\r\n")
			c.until(".\r\n")
			c.send("STLS\r\n")
			c.line()
			c.send("USER alice\r\nPASS secret\r\n")
			c.line()
			c.line()
			c.send("RETR 1\r\n")
			c.until(".\r\n")
			c.send("QUIT\r\n")
			c.closed()
			return c.out.String()
		}, tlsDiffer)
	})
	implicit := func(port string) func(t *testing.T, p *harness.Proxy) string {
		return func(t *testing.T, p *harness.Proxy) string {
			c := dial(t, p.Addr(port))
			c.starttls()
			c.line()
			c.send("CAPA\r\n")
			c.until(".\r\n")
			c.send("STLS\r\n")
			c.line()
			c.send("USER alice\r\nPASS wrong\r\n")
			c.line()
			c.closed()
			return c.out.String()
		}
	}
	t.Run("implicit tls 1.2", func(t *testing.T) { compareBoth(t, conf, auth, implicit("ssl12"), "") })
	verify := func(port string, cert *tls.Certificate) func(t *testing.T, p *harness.Proxy) string {
		return func(t *testing.T, p *harness.Proxy) string {
			c := dial(t, p.Addr(port))
			c.starttlsCert(cert)
			if strings.HasPrefix(c.line(), "+OK") {
				c.send("USER alice\r\nPASS wrong\r\n")
				c.line()
			}
			c.closed()
			return c.out.String()
		}
	}
	t.Run("client certificate trusted", func(t *testing.T) { compareBoth(t, conf, auth, verify("verify", &clientCert), "") })
	t.Run("client certificate untrusted", func(t *testing.T) { compareBoth(t, conf, auth, verify("verify", &otherCert), "") })
	t.Run("client certificate missing optional", func(t *testing.T) { compareBoth(t, conf, auth, verify("verify", nil), "") })
	t.Run("client certificate missing required", func(t *testing.T) { compareBoth(t, conf, auth, verify("verifyon", nil), "") })
	t.Run("implicit tls", func(t *testing.T) {
		compareBoth(t, conf, auth, func(t *testing.T, p *harness.Proxy) string {
			c := dial(t, p.Addr("ssl"))
			c.starttls()
			c.line()
			c.send("CAPA\r\n")
			c.until(".\r\n")
			c.send("STLS\r\n")
			c.line()
			c.send("USER alice\r\nPASS wrong\r\n")
			c.line()
			c.closed()
			return c.out.String()
		}, tlsDiffer)
	})
}

// tlsDiffer: confparse's default ssl_protocols is newer nginx's "TLSv1.2
// TLSv1.3"; 1.22.1's is "TLSv1 TLSv1.1 TLSv1.2", so it negotiates 1.2.
const tlsDiffer = "default ssl_protocols include TLSv1.3 (newer nginx); 1.22.1 negotiates TLSv1.2"
