package mailtest_test

// TLS to the upstream (mailgate-only proxy_ssl, proxy_starttls) through
// the real engine: the login goes inside TLS, client bytes pipelined
// behind the login and the relay use the TLS connection, and a failed
// check gives the client the internal error and the upstream nothing.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/mail/errlog"
	"mailgate/mail/mailtest"
)

func selfSignedTLS(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.test"}, DNSNames: []string{"mail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsUp serves one upstream connection: in clear, it answers a STARTTLS
// line when starttls is set, then inside TLS the greeting (implicit TLS
// only) and one reply per line; it records what it got inside TLS and
// in clear.
type tlsUp struct {
	t        *testing.T
	cert     tls.Certificate
	once     sync.Once
	cfg      *tls.Config // one for every connection: its ticket keys too
	starttls bool
	replies  []string

	mu            sync.Mutex
	plain, secure strings.Builder
	resumed       bool // the handshake resumed a session
	done          chan struct{}
}

func (u *tlsUp) dial(ctx context.Context, _ netip.AddrPort, _ int) (net.Conn, error) {
	mine, theirs := mailtest.Pair(u.t, mailtest.Unix)
	u.done = make(chan struct{})
	go func() {
		defer close(u.done)
		defer mine.Close()
		mine.SetDeadline(time.Now().Add(5 * time.Second))
		var c net.Conn = mine
		if u.starttls {
			mine.Write([]byte("* OK ready\r\n"))
			line, err := bufio.NewReader(mine).ReadString('\n')
			u.mu.Lock()
			u.plain.WriteString(line)
			u.mu.Unlock()
			if err != nil || !strings.HasSuffix(line, "STARTTLS\r\n") {
				mine.Write([]byte("a1 BAD no\r\n"))
				return
			}
			mine.Write([]byte(strings.TrimSuffix(line, "STARTTLS\r\n") + "OK go\r\n"))
		}
		u.once.Do(func() { u.cfg = &tls.Config{Certificates: []tls.Certificate{u.cert}} })
		tc := tls.Server(mine, u.cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		u.mu.Lock()
		u.resumed = tc.ConnectionState().DidResume
		u.mu.Unlock()
		c = tc
		if !u.starttls {
			c.Write([]byte("* OK ready\r\n"))
		}
		br := bufio.NewReader(c)
		for _, r := range u.replies {
			line, err := br.ReadString('\n')
			u.mu.Lock()
			u.secure.WriteString(line)
			u.mu.Unlock()
			if err != nil {
				return
			}
			c.Write([]byte(r))
		}
		c.Close()
	}()
	return theirs, nil
}

func TestUpstreamTLSThroughEngine(t *testing.T) {
	imapOK := []string{"+ go\r\n", "+ go\r\n", "a1 OK logged in\r\n", "a2 OK noop\r\n"}
	for _, c := range []struct {
		name, conf string
		starttls   bool
		want       string // what the client reads to the end
		secure     string
		plain      string
		log        string
	}{
		{name: "proxy_ssl", conf: "proxy_ssl on;",
			want:   "* OK IMAP4 ready\r\na1 OK logged in\r\na2 OK noop\r\n",
			secure: "a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\na2 NOOP\r\n"},
		{name: "proxy_starttls", conf: "proxy_starttls on;", starttls: true,
			want:   "* OK IMAP4 ready\r\na1 OK logged in\r\na2 OK noop\r\n",
			plain:  "a1 STARTTLS\r\n",
			secure: "a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\na2 NOOP\r\n"},
		{name: "verify fails: nothing sent", conf: "proxy_ssl on; proxy_ssl_verify on; proxy_ssl_trusted_certificate {{ca}};",
			want: "* OK IMAP4 ready\r\n* BAD internal server error\r\n",
			log:  "upstream SSL certificate verify error: (18:self-signed certificate) while SSL handshaking to upstream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := &tlsUp{t: t, cert: selfSignedTLS(t), starttls: c.starttls, replies: imapOK}
			as := mailtest.StartAuthServer(t)
			ca, err := filepath.Abs("../../confparse/testdata/sslfile/cert.pem")
			if err != nil {
				t.Fatal(err)
			}
			conf := strings.ReplaceAll(c.conf, "{{ca}}", ca)
			cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; "+conf+" }")
			env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.dial, LogLevel: errlog.Debug})
			as.Script([]byte("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 993\r\n\r\n"))
			cl := env.Dial(t, mailtest.Unix, 0)
			// The NOOP is pipelined behind the LOGIN: the engine forwards
			// it after the hand-off, through TLS.
			cl.Send("a1 LOGIN alice secret\r\na2 NOOP\r\n")
			if got := cl.ReadAll(5 * time.Second); got != c.want {
				t.Errorf("client read %q, want %q\n%s", got, c.want, env.Log.String())
			}
			select {
			case <-up.done:
			case <-time.After(5 * time.Second):
			}
			up.mu.Lock()
			plain, secure := up.plain.String(), up.secure.String()
			up.mu.Unlock()
			if plain != c.plain || secure != c.secure {
				t.Errorf("upstream got in clear %q, inside TLS %q; want %q, %q", plain, secure, c.plain, c.secure)
			}
			log := env.Log.String()
			if c.log != "" && !strings.Contains(log, c.log) {
				t.Errorf("log has no %q:\n%s", c.log, log)
			}
			if strings.Contains(log, "secret") {
				t.Errorf("the password is in the log:\n%s", log)
			}
		})
	}
}

// proxy_ssl_session_reuse (on by default): the second login to the same
// upstream resumes the first one's session; off: it does not.
func TestUpstreamTLSSessionReuse(t *testing.T) {
	cert := selfSignedTLS(t)
	for _, c := range []struct {
		conf string
		want bool
	}{{"", true}, {"proxy_ssl_session_reuse off;", false}} {
		as := mailtest.StartAuthServer(t)
		cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; proxy_ssl on; "+c.conf+" }")
		up := &tlsUp{t: t, cert: cert, replies: []string{"+ go\r\n", "+ go\r\n", "a1 OK logged in\r\n"}}
		env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.dial})
		as.Script([]byte("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 993\r\n\r\n"))
		var resumed []bool
		for range 2 {
			cl := env.Dial(t, mailtest.Unix, 0)
			cl.Send("a1 LOGIN alice secret\r\n")
			if got := cl.ReadAll(5 * time.Second); !strings.HasSuffix(got, "a1 OK logged in\r\n") {
				t.Fatalf("%q: client read %q\n%s", c.conf, got, env.Log.String())
			}
			<-up.done
			up.mu.Lock()
			resumed = append(resumed, up.resumed)
			up.mu.Unlock()
		}
		if resumed[0] || resumed[1] != c.want {
			t.Errorf("%q: resumed %v, want [false %v]", c.conf, resumed, c.want)
		}
	}
}
