package proxy

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA, a server certificate for mail.test and 127.0.0.1
// signed by it, a self-signed server certificate, and a client
// certificate signed by the CA.
type testPKI struct {
	ca         *x509.Certificate
	server     tls.Certificate
	selfSigned tls.Certificate
	client     tls.Certificate
}

func newCert(t testing.TB, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func getPKI(t testing.TB) *testPKI {
	pkiOnce.Do(func() {
		ca, caKey, _ := newCert(t, &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}, nil, nil)
		_, _, server := newCert(t, &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mail.test"},
			DNSNames: []string{"mail.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}, ca, caKey)
		_, _, self := newCert(t, &x509.Certificate{
			SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "mail.test"}, DNSNames: []string{"mail.test"},
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		}, nil, nil)
		_, _, client := newCert(t, &x509.Certificate{
			SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "mailgate"},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, ca, caKey)
		pki = &testPKI{ca: ca, server: server, selfSigned: self, client: client}
	})
	return pki
}

// tlsUpstream is a scripted upstream speaking TLS from the first byte
// (implicit) or after a STARTTLS command: it records what it received in
// clear (plain) and inside TLS (secure) separately.
type tlsUpstream struct {
	l        net.Listener
	cfg      *tls.Config
	implicit bool
	ppLine   bool // a PROXY protocol line comes first, in clear
	greeting string
	// plainReply answers a line received in clear; upgrade starts TLS
	// after the reply.
	plainReply func(line string) (reply string, upgrade bool)
	replies    []string // answers inside TLS, one per line

	mu            sync.Mutex
	plain, secure bytes.Buffer
	hsErr         error
	done          chan struct{}
}

func (u *tlsUpstream) start(t *testing.T) *tlsUpstream {
	u.l = listenLocal(t)
	u.done = make(chan struct{})
	go u.serve()
	t.Cleanup(func() { u.l.Close() })
	return u
}

func (u *tlsUpstream) serve() {
	defer close(u.done)
	c, err := u.l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var conn net.Conn = c
	upgrade := func() bool {
		tc := tls.Server(c, u.cfg)
		if err := tc.Handshake(); err != nil {
			u.mu.Lock()
			u.hsErr = err
			u.mu.Unlock()
			return false
		}
		conn = tc
		return true
	}
	if u.ppLine {
		var line []byte
		one := make([]byte, 1)
		for len(line) == 0 || line[len(line)-1] != '\n' {
			if _, err := c.Read(one); err != nil {
				return
			}
			line = append(line, one[0])
		}
		u.mu.Lock()
		u.plain.Write(line)
		u.mu.Unlock()
	}
	if u.implicit && !upgrade() {
		return
	}
	conn.Write([]byte(u.greeting))
	br := bufio.NewReader(conn)
	secure := u.implicit
	replies := u.replies
	for {
		line, err := br.ReadString('\n')
		u.mu.Lock()
		if secure {
			u.secure.WriteString(line)
		} else {
			u.plain.WriteString(line)
		}
		u.mu.Unlock()
		if err != nil {
			return
		}
		if !secure {
			r, up := u.plainReply(line)
			conn.Write([]byte(r))
			if up {
				if !upgrade() {
					return
				}
				secure = true
				br = bufio.NewReader(conn)
			}
			continue
		}
		if len(replies) == 0 {
			continue
		}
		conn.Write([]byte(replies[0]))
		replies = replies[1:]
	}
}

func (u *tlsUpstream) result() (plain, secure string, hsErr error) {
	select {
	case <-u.done:
	case <-time.After(3 * time.Second):
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.plain.String(), u.secure.String(), u.hsErr
}

func serverCfg(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// clientTLS is what mail builds for proxy_ssl_verify on with the test CA
// (the chain judged as OpenSSL would, here simply by crypto/x509).
func clientTLS(t testing.TB, verify bool, name string) *UpstreamTLS {
	p := getPKI(t)
	u := &UpstreamTLS{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, Name: name}
	if verify {
		roots := x509.NewCertPool()
		roots.AddCert(p.ca)
		u.Verify = func(chain []*x509.Certificate) (int, string) {
			if len(chain) == 0 {
				return 20, "unable to get local issuer certificate"
			}
			_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots})
			var ua x509.UnknownAuthorityError
			switch {
			case err == nil:
				return 0, "ok"
			case errors.As(err, &ua) && bytes.Equal(chain[0].RawIssuer, chain[0].RawSubject):
				return 18, "self-signed certificate"
			}
			return 20, "unable to get local issuer certificate"
		}
	}
	return u
}

func TestUpstreamTLS(t *testing.T) {
	p := getPKI(t)
	imapOK := []string{"+ go\r\n", "+ go\r\n", "a2 OK logged in\r\n"}
	cases := []struct {
		name     string
		params   *LoginParams
		tls      *UpstreamTLS
		up       *tlsUpstream
		wantSec  string // bytes the upstream got inside TLS
		wantPln  string // bytes it got in clear
		wantLog  string // "" : the login succeeds
		wantAct  string
		wantLvl  string
		wantHand string
	}{
		{
			name: "imaps verified", params: imapParams(), tls: clientTLS(t, true, "mail.test"),
			up:      &tlsUpstream{cfg: serverCfg(p.server), implicit: true, greeting: "* OK ready\r\n", replies: imapOK},
			wantSec: "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantHand: "a2 OK logged in\r\n",
		},
		{
			name: "imaps verified by IP address", params: imapParams(), tls: clientTLS(t, true, "127.0.0.1"),
			up:      &tlsUpstream{cfg: serverCfg(p.server), implicit: true, greeting: "* OK ready\r\n", replies: imapOK},
			wantSec: "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantHand: "a2 OK logged in\r\n",
		},
		{
			name: "imaps unverified self-signed", params: imapParams(), tls: clientTLS(t, false, "127.0.0.1"),
			up:      &tlsUpstream{cfg: serverCfg(p.selfSigned), implicit: true, greeting: "* OK ready\r\n", replies: imapOK},
			wantSec: "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantHand: "a2 OK logged in\r\n",
		},
		{
			name: "imaps self-signed refused", params: imapParams(), tls: clientTLS(t, true, "mail.test"),
			up:      &tlsUpstream{cfg: serverCfg(p.selfSigned), implicit: true, greeting: "* OK ready\r\n", replies: imapOK},
			wantLog: "upstream SSL certificate verify error: (18:self-signed certificate)", wantAct: ActionSSLHandshake, wantLvl: "error",
		},
		{
			name: "PROXY header in clear, then TLS",
			params: with(imapParams(), func(p *LoginParams) {
				p.ProxyProtocol = 1
				p.Source, p.Dest = netip.MustParseAddrPort("192.0.2.1:5555"), netip.MustParseAddrPort("127.0.0.1:993")
			}),
			tls:     clientTLS(t, true, "mail.test"),
			up:      &tlsUpstream{cfg: serverCfg(p.server), implicit: true, ppLine: true, greeting: "* OK ready\r\n", replies: imapOK},
			wantPln: "PROXY TCP4 192.0.2.1 127.0.0.1 5555 993\r\n",
			wantSec: "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantHand: "a2 OK logged in\r\n",
		},
		{
			name: "pop3s wrong name", params: pop3Params(), tls: clientTLS(t, true, "other.test"),
			up:      &tlsUpstream{cfg: serverCfg(p.server), implicit: true, greeting: "+OK ready\r\n", replies: []string{"+OK\r\n", "+OK\r\n"}},
			wantLog: `upstream SSL certificate does not match "other.test"`, wantAct: ActionSSLHandshake, wantLvl: "error",
		},
		{
			name: "client certificate required, none sent (TLS 1.3)", params: pop3Params(), tls: clientTLS(t, false, "mail.test"),
			up: &tlsUpstream{cfg: &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAnyClientCert},
				implicit: true, greeting: "+OK ready\r\n", replies: []string{"+OK\r\n", "+OK\r\n"}},
			wantLog: "SSL_read() failed (SSL: error:0A00045C:SSL routines::tlsv13 alert certificate required:SSL alert number 116)",
			wantAct: ActionReading, wantLvl: "error",
		},
		{
			name: "client certificate required, none sent (TLS 1.2)", params: pop3Params(),
			tls: func() *UpstreamTLS {
				u := clientTLS(t, false, "mail.test")
				u.Config.MaxVersion = tls.VersionTLS12
				return u
			}(),
			up: &tlsUpstream{cfg: &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAnyClientCert},
				implicit: true, greeting: "+OK ready\r\n"},
			wantLog: "SSL_do_handshake() failed (SSL: error:0A000410:SSL routines::sslv3 alert handshake failure:SSL alert number 40)",
			wantAct: ActionSSLHandshake, wantLvl: "error",
		},
		{
			name: "client certificate required and sent", params: pop3Params(),
			tls: func() *UpstreamTLS {
				u := clientTLS(t, true, "mail.test")
				c := p.client
				u.Config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
				return u
			}(),
			up: &tlsUpstream{cfg: func() *tls.Config {
				pool := x509.NewCertPool()
				pool.AddCert(p.ca)
				return &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
			}(), implicit: true, greeting: "+OK ready\r\n", replies: []string{"+OK\r\n", "+OK in\r\n"}},
			wantSec: "USER test@example.com\r\nPASS secret\r\n", wantHand: "+OK in\r\n",
		},
		{
			name: "pop3 STLS", params: pop3Params(), tls: startTLS(clientTLS(t, true, "mail.test")),
			up: &tlsUpstream{cfg: serverCfg(p.server), greeting: "+OK ready\r\n", replies: []string{"+OK\r\n", "+OK in\r\n"},
				plainReply: func(l string) (string, bool) { return "+OK Begin TLS\r\n", l == "STLS\r\n" }},
			wantPln: "STLS\r\n", wantSec: "USER test@example.com\r\nPASS secret\r\n", wantHand: "+OK in\r\n",
		},
		{
			name: "pop3 STLS refused: no credentials", params: pop3Params(), tls: startTLS(clientTLS(t, true, "mail.test")),
			up: &tlsUpstream{cfg: serverCfg(p.server), greeting: "+OK ready\r\n",
				plainReply: func(string) (string, bool) { return "-ERR unknown command\r\n", false }},
			wantPln: "STLS\r\n", wantLog: `upstream sent invalid response: "-ERR unknown command"`, wantAct: ActionReading, wantLvl: "error",
		},
		{
			name: "imap STARTTLS", params: imapParams(), tls: startTLS(clientTLS(t, true, "mail.test")),
			up: &tlsUpstream{cfg: serverCfg(p.server), greeting: "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n", replies: imapOK,
				plainReply: func(l string) (string, bool) { return "a2 OK Begin TLS negotiation now.\r\n", l == "a2 STARTTLS\r\n" }},
			wantPln: "a2 STARTTLS\r\n", wantSec: "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantHand: "a2 OK logged in\r\n",
		},
		{
			name:   "imap STARTTLS refused with pass_error_message: no credentials, nothing relayed",
			params: with(imapParams(), func(p *LoginParams) { p.PassErrorMessage = true }), tls: startTLS(clientTLS(t, true, "mail.test")),
			up: &tlsUpstream{cfg: serverCfg(p.server), greeting: "* OK ready\r\n",
				plainReply: func(string) (string, bool) { return "a2 BAD Unknown command\r\n", false }},
			wantPln: "a2 STARTTLS\r\n", wantLog: `upstream sent invalid response: "BAD Unknown command"`, wantAct: ActionReading, wantLvl: "error",
		},
		{
			name: "imap STARTTLS, wrong name: no credentials", params: imapParams(), tls: startTLS(clientTLS(t, true, "wrong.test")),
			up: &tlsUpstream{cfg: serverCfg(p.server), greeting: "* OK ready\r\n", replies: imapOK,
				plainReply: func(string) (string, bool) { return "a2 OK go\r\n", true }},
			wantPln: "a2 STARTTLS\r\n", wantLog: `upstream SSL certificate does not match "wrong.test"`, wantAct: ActionSSLHandshake, wantLvl: "error",
		},
		{
			name: "smtp STARTTLS", params: with(smtpParams(), func(p *LoginParams) { p.SMTPAuth = true; p.XClient = false }),
			tls: startTLS(clientTLS(t, true, "mail.test")),
			up: &tlsUpstream{cfg: serverCfg(p.server), greeting: "220 mx ESMTP\r\n", replies: []string{"250 mx\r\n", "235 ok\r\n"},
				plainReply: func(l string) (string, bool) {
					if strings.HasPrefix(l, "EHLO") {
						return "250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n", false
					}
					return "220 2.0.0 Ready to start TLS\r\n", l == "STARTTLS\r\n"
				}},
			wantPln: "EHLO mx.example.test\r\nSTARTTLS\r\n",
			wantSec: "HELO mx.example.test\r\nAUTH PLAIN AHRlc3RAZXhhbXBsZS5jb20Ac2VjcmV0\r\n",
		},
		{
			name: "smtp STARTTLS not offered: no credentials", params: with(smtpParams(), func(p *LoginParams) { p.SMTPAuth = true }),
			tls: startTLS(clientTLS(t, true, "mail.test")),
			up: &tlsUpstream{cfg: serverCfg(p.server), greeting: "220 mx ESMTP\r\n",
				plainReply: func(string) (string, bool) { return "250-mx\r\n250-XCLIENT ADDR NAME\r\n250 8BITMIME\r\n", false }},
			wantPln: "EHLO mx.example.test\r\n", wantLog: "upstream does not support STARTTLS", wantAct: ActionSendStartTLS, wantLvl: "error",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.up.start(t)
			conn, err := net.Dial("tcp", tc.up.l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tc.params.TLS = tc.tls
			tc.params.Deadline = time.Now().Add(3 * time.Second)
			rl, handoff, err := LoginConn(conn, tc.params)
			if tc.wantLog == "" {
				if err != nil {
					t.Fatalf("login failed: %v", err)
				}
				if _, ok := rl.(*tls.Conn); !ok {
					t.Errorf("relay connection is %T, want *tls.Conn", rl)
				}
				if tc.wantHand != "" && string(handoff) != tc.wantHand {
					t.Errorf("handoff %q, want %q", handoff, tc.wantHand)
				}
				rl.Close()
			} else {
				var le *LoginError
				if !errors.As(err, &le) {
					t.Fatalf("err = %v, want a *LoginError", err)
				}
				if le.Log != tc.wantLog || le.Action != tc.wantAct || le.Level.String() != tc.wantLvl || le.Reply != nil {
					t.Errorf("got log %q action %q level %q reply %q,\nwant %q %q %q no reply", le.Log, le.Action, le.Level, le.Reply, tc.wantLog, tc.wantAct, tc.wantLvl)
				}
				conn.Close()
			}
			plain, secure, _ := tc.up.result()
			if plain != tc.wantPln {
				t.Errorf("upstream got in clear %q, want %q", plain, tc.wantPln)
			}
			if secure != tc.wantSec {
				t.Errorf("upstream got inside TLS %q, want %q", secure, tc.wantSec)
			}
			if strings.Contains(plain, "secret") {
				t.Errorf("the password went out in clear: %q", plain)
			}
		})
	}
}

func startTLS(u *UpstreamTLS) *UpstreamTLS { u.StartTLS = true; return u }

// TestUpstreamTLSRelay: after a TLS login the relay copies both ways over
// the TLS connection (no splice).
func TestUpstreamTLSRelay(t *testing.T) {
	p := getPKI(t)
	up := (&tlsUpstream{cfg: serverCfg(p.server), implicit: true, greeting: "+OK ready\r\n",
		replies: []string{"+OK\r\n", "+OK in\r\n", "+OK 1 10\r\n"}}).start(t)
	conn, err := net.Dial("tcp", up.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	params := pop3Params()
	params.TLS = clientTLS(t, true, "mail.test")
	rl, _, err := LoginConn(conn, params)
	if err != nil {
		t.Fatal(err)
	}
	cl := listenLocal(t)
	defer cl.Close()
	client, err := net.Dial("tcp", cl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := cl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan RelayResult, 1)
	go func() { done <- Relay(server, rl, RelayOptions{Timeout: 5 * time.Second}) }()
	client.Write([]byte("STAT\r\n"))
	client.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := bufio.NewReader(client).ReadString('\n')
	if err != nil || got != "+OK 1 10\r\n" {
		t.Fatalf("client got %q, %v", got, err)
	}
	client.Close()
	select {
	case rr := <-done:
		if rr.BytesUp != 6 || rr.BytesDown != 10 {
			t.Errorf("relay counted %d up, %d down; want 6, 10", rr.BytesUp, rr.BytesDown)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not end")
	}
	_, secure, _ := up.result()
	if secure != "USER test@example.com\r\nPASS secret\r\nSTAT\r\n" {
		t.Errorf("upstream got %q inside TLS", secure)
	}
}

func TestEhloHas(t *testing.T) {
	cases := []struct {
		reply string
		want  bool
	}{
		{"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n", true},
		{"250-mx\r\n250-starttls\r\n250 8BITMIME\r\n", true},
		{"250-mx\r\n250-XSTARTTLS\r\n250 8BITMIME\r\n", false},
		{"250 mx says STARTTLS\r\n", false},
		{"250 STARTTLS\r\n", false}, // the server's name, not a keyword
	}
	for _, c := range cases {
		if got := ehloHas([]byte(c.reply), "STARTTLS"); got != c.want {
			t.Errorf("ehloHas(%q) = %v, want %v", c.reply, got, c.want)
		}
	}
}

// FuzzEhloHas: the EHLO reply scan never panics, and finds a keyword
// only on a line of its own after the first.
func FuzzEhloHas(f *testing.F) {
	f.Add([]byte("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"))
	f.Add([]byte("250 mx\r\n"))
	f.Add([]byte("250-\r\n250-\r\n250 \r\n"))
	f.Add([]byte("\r\n\r\n250-STARTTLS"))
	f.Fuzz(func(t *testing.T, reply []byte) {
		if ehloHas(reply, "STARTTLS") && !bytes.Contains(bytes.ToUpper(reply), []byte("\r\n")) {
			t.Errorf("keyword found in a one-line reply %q", reply)
		}
	})
}
