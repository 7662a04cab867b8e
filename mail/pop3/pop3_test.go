package pop3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
	"mailgate/mail/pop3"
)

// fakeUpstream is a POP3 server accepting USER u / PASS secret.
type fakeUpstream struct {
	ln  net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func startUpstream(t *testing.T) *fakeUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *fakeUpstream) serve(c net.Conn) {
	defer c.Close()
	io.WriteString(c, "+OK fake ready\r\n") //nolint:errcheck
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		u.mu.Lock()
		u.got.WriteString(line)
		u.mu.Unlock()
		if err != nil {
			return
		}
		var reply string
		switch {
		case strings.HasPrefix(line, "USER "):
			reply = "+OK\r\n"
		case strings.HasPrefix(line, "PASS "):
			if line == "PASS secret\r\n" {
				reply = "+OK maildrop ready\r\n"
			} else {
				reply = "-ERR [AUTH] upstream says no\r\n"
			}
		case line == "STAT\r\n":
			reply = "+OK 0 0\r\n"
		case line == "QUIT\r\n":
			io.WriteString(c, "+OK bye\r\n") //nolint:errcheck
			return
		default:
			reply = "-ERR unknown\r\n"
		}
		io.WriteString(c, reply) //nolint:errcheck
	}
}

func (u *fakeUpstream) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got.String()
}

// fakeAuth answers like an auth_http server with the users below, and
// records the requests.
type fakeAuth struct {
	up   netip.AddrPort
	mu   sync.Mutex
	reqs []auth.Request
}

var users = map[string]string{"u": "secret", "wait": "secret"}

func (f *fakeAuth) Do(_ context.Context, r *auth.Request) (*auth.Result, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, *r)
	f.mu.Unlock()
	ok := &auth.Result{Kind: auth.OK, Server: f.up, ServerText: f.up.String()}
	pw, known := users[string(r.User)]
	fail := &auth.Result{Kind: auth.Fail, Message: "Invalid login or password"}
	if string(r.User) == "wait" && r.LoginAttempt == 1 {
		fail.HasWait, fail.WaitSeconds = true, 1
		return fail, nil
	}
	if !known {
		return fail, nil
	}
	switch r.Method {
	case auth.MethodPlain:
		if string(r.Pass) == pw {
			return ok, nil
		}
	case auth.MethodAPOP:
		d := md5.Sum(append(append([]byte{}, r.Salt...), pw...))
		if hex.EncodeToString(d[:]) == string(r.Pass) {
			ok.Pass = []byte(pw)
			return ok, nil
		}
	case auth.MethodCRAMMD5:
		m := hmac.New(md5.New, []byte(pw))
		m.Write(r.Salt)
		if hex.EncodeToString(m.Sum(nil)) == string(r.Pass) {
			ok.Pass = []byte(pw)
			return ok, nil
		}
	case auth.MethodExternal:
		ok.Pass = []byte(pw)
		return ok, nil
	}
	return fail, nil
}

func (f *fakeAuth) requests() []auth.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]auth.Request(nil), f.reqs...)
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	addr string
	auth *fakeAuth
	up   *fakeUpstream
	log  *logBuf
	srv  *mail.Server
}

func newConf() *confparse.Server {
	sc := &confparse.Server{Protocol: "pop3"}
	sc.Core.Timeout = 5 * time.Second
	sc.Core.MaxErrors = 3
	sc.Core.ServerName = "mx.test"
	sc.POP3.Auth = confparse.AuthPlain
	sc.POP3.Capabilities = []string{"TOP", "USER", "UIDL"}
	sc.AuthHTTP.Timeout = 5 * time.Second
	sc.AuthHTTP.Peer = "127.0.0.1:9"
	sc.Proxy.Buffer = 4096
	sc.Proxy.Timeout = time.Hour
	return sc
}

func start(t *testing.T, sc *confparse.Server) *env {
	t.Helper()
	e := &env{up: startUpstream(t), log: &logBuf{}}
	e.auth = &fakeAuth{up: e.up.ln.Addr().(*net.TCPAddr).AddrPort()}
	l := &confparse.Listen{Server: sc, Network: "tcp", Addr: netip.MustParseAddrPort("127.0.0.1:0"),
		Text: "127.0.0.1:0", Backlog: 511, IPv6Only: true}
	sc.Listens = []*confparse.Listen{l}
	cfg := &confparse.Config{Mail: &confparse.Mail{Servers: []*confparse.Server{sc}, Listens: sc.Listens}}
	lg := logrus.New()
	lg.SetOutput(e.log)
	lg.SetLevel(logrus.DebugLevel)
	lg.SetFormatter(&errlog.Formatter{Min: errlog.Info})
	srv, err := mail.NewServer(cfg, mail.Options{
		Protocols: map[string]mail.Protocol{"pop3": pop3.Protocol{}},
		Log:       lg,
		NewAuth:   func(*confparse.AuthHTTPConf) mail.AuthClient { return e.auth },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve() //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	e.srv = srv
	for _, a := range srv.Addrs() {
		e.addr = a.String()
	}
	return e
}

// run plays a transcript: "C: bytes" is sent, "S: bytes" must be received
// exactly, "S~ regexp" must match the next line, "STARTTLS" switches the
// client to TLS, and a final "CLOSED" expects the server to close.
func (e *env) run(t *testing.T, steps []string) {
	t.Helper()
	var c net.Conn
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	r := bufio.NewReader(c)
	for i, st := range steps {
		switch {
		case strings.HasPrefix(st, "C: "):
			if _, err := io.WriteString(c, st[3:]); err != nil {
				t.Fatalf("step %d: write: %v", i, err)
			}
		case strings.HasPrefix(st, "S: "):
			want := st[3:]
			got := make([]byte, len(want))
			n, err := io.ReadFull(r, got)
			if string(got[:n]) != want {
				t.Fatalf("step %d: got %q (%v), want %q", i, got[:n], err, want)
			}
		case strings.HasPrefix(st, "S~ "):
			line, err := r.ReadString('\n')
			if !regexp.MustCompile(st[3:]).MatchString(line) {
				t.Fatalf("step %d: got %q (%v), want /%s/", i, line, err, st[3:])
			}
		case st == "STARTTLS":
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"pop3"}}) //nolint:gosec // test
			if err := tc.Handshake(); err != nil {
				t.Fatalf("step %d: handshake: %v", i, err)
			}
			c = tc
			r = bufio.NewReader(c)
		case st == "CLOSED":
			// A close with unread client bytes is a reset, as with nginx.
			rest, err := io.ReadAll(r)
			if len(rest) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("step %d: expected close, got %q %v", i, rest, err)
			}
		default:
			t.Fatalf("bad step %q", st)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	capaDefault = "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n"
	greet       = "+OK POP3 ready\r\n"
	invalid     = "-ERR invalid command\r\n"
	refused     = "-ERR Invalid login or password\r\n"
)

func TestTranscripts(t *testing.T) {
	tests := []struct {
		name   string
		conf   func(*confparse.Server)
		steps  []string
		up     string // what the upstream must have received
		logs   []string
		nologs []string
	}{
		{name: "capa quit", steps: []string{"S: " + greet, "C: CAPA\r\n", "S: " + capaDefault, "C: QUIT\r\n", "S: +OK\r\n", "CLOSED"}},
		{name: "noop with arguments", steps: []string{"S: " + greet, "C: noop a b c\r\n", "S: +OK\r\n", "C: QUIT extra\r\n", "S: +OK\r\n", "CLOSED"}},
		{name: "auth list", steps: []string{"S: " + greet, "C: AUTH\r\n", "S: +OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n"}},
		{name: "apop only", conf: func(c *confparse.Server) { c.POP3.Auth = confparse.AuthAPOP },
			steps: []string{`S~ ^\+OK POP3 ready <\d+\.\d+@mx\.test>\r\n$`, "C: AUTH\r\n", "S: +OK methods supported:\r\n.\r\n",
				"C: CAPA\r\n", "S: +OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL\r\n.\r\n"}},
		{name: "all methods capa", conf: func(c *confparse.Server) {
			c.POP3.Auth = confparse.AuthPlain | confparse.AuthAPOP | confparse.AuthCRAMMD5 | confparse.AuthExternal
			c.POP3.Capabilities = []string{"X-ONE", "user"}
		}, steps: []string{`S~ <`, "C: CAPA\r\n", "S: +OK Capability list follows\r\nX-ONE\r\nuser\r\nSASL PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n.\r\n"}},
		{name: "user pass relays", steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: PASS secret\r\n",
			"S: +OK maildrop ready\r\n", "C: STAT\r\n", "S: +OK 0 0\r\n", "C: QUIT\r\n", "S: +OK bye\r\n", "CLOSED"},
			up:     "USER u\r\nPASS secret\r\nSTAT\r\nQUIT\r\n",
			logs:   []string{`client logged in, client: 127.0.0.1, server: 127.0.0.1:0, login: "u", upstream: 127.0.0.1:`, `proxied session done, client: 127.0.0.1, server: 127.0.0.1:0, login: "u", upstream: 127.0.0.1:`},
			nologs: []string{"secret"}},
		{name: "pipelined after pass goes upstream", steps: []string{"S: " + greet, "C: USER u\r\nPASS secret\r\nSTAT\r\n",
			"S: +OK\r\n+OK maildrop ready\r\n+OK 0 0\r\n"}, up: "USER u\r\nPASS secret\r\nSTAT\r\n"},
		{name: "bad password closes", steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: PASS bad\r\n", "S: " + refused, "CLOSED"},
			logs: []string{`client login failed: "Invalid login or password" while in http auth state, client: 127.0.0.1, server: 127.0.0.1:0, login: "u"`}},
		{name: "auth wait then retry", steps: []string{"S: " + greet, "C: USER wait\r\n", "S: +OK\r\n", "C: PASS secret\r\nNOOP\r\n",
			"S: " + refused + "+OK\r\n", "C: PASS secret\r\n", "S: " + invalid, "C: USER wait\r\nPASS secret\r\n", "S: +OK\r\n+OK maildrop ready\r\n"}},
		{name: "pass first is handler-level", steps: []string{"S: " + greet, "C: PASS x\r\n", "S: " + invalid, "C: PASS x\r\n", "S: " + invalid,
			"C: PASS x\r\n", "S: " + invalid, "C: PASS x\r\n", "S: " + invalid, "C: QUIT\r\n", "S: +OK\r\n", "CLOSED"}},
		{name: "max errors", steps: []string{"S: " + greet, "C: STAT\r\n", "S: " + invalid, "C: PASS x\r\n", "S: " + invalid, "C: LIST\r\n", "S: " + invalid,
			"C: RETR 1\r\n", "S: " + invalid, "CLOSED"}, logs: []string{"client sent too many invalid commands while in auth state"}},
		{name: "user state refusals go back to start", steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: USER v\r\n", "S: " + invalid,
			"C: PASS secret\r\n", "S: " + invalid, "C: USER u\r\n", "S: +OK\r\n", "C: CAPA\r\n", "S: " + capaDefault}},
		{name: "user keeps spaces", steps: []string{"S: " + greet, "C: USER   a b  \r\n", "S: +OK\r\n", "C: PASS p w \r\n", "S: " + refused}},
		{name: "line of 128 bytes", steps: []string{"S: " + greet, "C: NOOP " + strings.Repeat("x", 121) + "\r\n", "S: +OK\r\n"}},
		{name: "line of 129 bytes", steps: []string{"S: " + greet, "C: NOOP " + strings.Repeat("x", 122) + "\r\n", "S: " + invalid, "CLOSED"},
			logs: []string{`client sent too long command "NOOP xxx`}},
		{name: "too long password is not logged", steps: []string{"S: " + greet, "C: USER u\r\nPASS " + strings.Repeat("s", 130) + "\r\n", "S: +OK\r\n" + invalid, "CLOSED"},
			logs: []string{`client sent too long command "USER u` + "\r\n" + `PASS ***" while in auth state`}, nologs: []string{"ssssssss"}},
		{name: "too long sasl response is not logged", steps: []string{"S: " + greet, "C: AUTH PLAIN\r\n", "S: + \r\n", "C: " + strings.Repeat("QUFB", 40) + "\r\n", "S: " + invalid, "CLOSED"},
			logs: []string{`client sent too long command "***" while in auth state`}, nologs: []string{"QUFBQUFB"}},
		// The SASL response stays in the buffer (no compaction) after the
		// Auth-Wait failure, ahead of the over-long line that is logged.
		{name: "pipelined sasl response is not logged", steps: []string{"S: " + greet,
			"C: AUTH PLAIN\r\n" + b64("\x00wait\x00secret") + "\r\nNOOP " + strings.Repeat("x", 100),
			"S: + \r\n" + refused + invalid, "CLOSED"},
			logs: []string{`client sent too long command "AUTH PLAIN` + "\r\n***\r\n" + `NOOP xxx`}, nologs: []string{b64("\x00wait\x00secret")}},
		{name: "too long auth initial response is not logged", steps: []string{"S: " + greet, "C: AUTH PLAIN " + strings.Repeat("QUFB", 40) + "\r\n", "S: " + invalid, "CLOSED"},
			logs: []string{`client sent too long command "AUTH PLAIN ***" while in auth state`}, nologs: []string{"QUFBQUFB"}},
		{name: "no compaction", steps: []string{"S: " + greet, "C: " + strings.Repeat("NOOP\r\n", 21) + "NO",
			"S: " + strings.Repeat("+OK\r\n", 21) + invalid, "CLOSED"}},
		{name: "auth plain initial response", steps: []string{"S: " + greet, "C: AUTH PLAIN " + b64("z\x00u\x00secret") + "\r\n", "S: +OK maildrop ready\r\n"},
			up: "USER u\r\nPASS secret\r\n"},
		{name: "auth plain continuation", steps: []string{"S: " + greet, "C: AUTH PLAIN\r\n", "S: + \r\n", "C: " + b64("\x00u\x00secret") + "\r\n", "S: +OK maildrop ready\r\n"}},
		{name: "auth plain bad base64", steps: []string{"S: " + greet, "C: AUTH PLAIN\r\n", "S: + \r\n", "C: ***\r\n", "S: " + invalid, "C: NOOP\r\n", "S: +OK\r\n"},
			logs: []string{"client sent invalid base64 encoding in AUTH PLAIN command while in auth state"}},
		{name: "auth login", steps: []string{"S: " + greet, "C: AUTH LOGIN\r\n", "S: + VXNlcm5hbWU6\r\n", "C: " + b64("u") + "\r\n", "S: + UGFzc3dvcmQ6\r\n",
			"C: " + b64("secret") + "\r\n", "S: +OK maildrop ready\r\n"}},
		{name: "auth login with user", steps: []string{"S: " + greet, "C: auth login " + b64("u") + "\r\n", "S: + UGFzc3dvcmQ6\r\n",
			"C: " + b64("secret") + "\r\n", "S: +OK maildrop ready\r\n"}},
		{name: "auth login empty lines go to auth", steps: []string{"S: " + greet, "C: AUTH LOGIN\r\n", "S: + VXNlcm5hbWU6\r\n", "C: \r\n", "S: + UGFzc3dvcmQ6\r\n",
			"C: \r\n", "S: " + refused, "CLOSED"}},
		{name: "auth login too many args", steps: []string{"S: " + greet, "C: AUTH LOGIN a b\r\n", "S: " + invalid}},
		{name: "auth unknown mechanism", steps: []string{"S: " + greet, "C: AUTH GSSAPI\r\n", "S: " + invalid, "C: AUTH CRAM-MD5\r\n", "S: " + invalid,
			"C: AUTH EXTERNAL\r\n", "S: " + invalid, "C: APOP u d\r\n", "S: " + invalid, "C: NOOP\r\n", "S: +OK\r\n"}},
		{name: "cram-md5", conf: func(c *confparse.Server) { c.POP3.Auth |= confparse.AuthCRAMMD5 },
			steps: []string{`S~ <`, "C: AUTH CRAM-MD5\r\n", `S~ ^\+ [A-Za-z0-9+/=]+\r\n$`}},
		{name: "external", conf: func(c *confparse.Server) { c.POP3.Auth |= confparse.AuthExternal },
			steps: []string{"S: " + greet, "C: AUTH EXTERNAL\r\n", "S: + VXNlcm5hbWU6\r\n", "C: " + b64("u") + "\r\n", "S: +OK maildrop ready\r\n"}},
		{name: "external initial response unchecked", steps: []string{"S: " + greet, "C: AUTH EXTERNAL " + b64("u") + "\r\n", "S: +OK maildrop ready\r\n"}},
		{name: "upstream refuses", steps: []string{"S: " + greet, "C: USER u\r\n", "S: +OK\r\n", "C: PASS secret\r\n", "S: +OK maildrop ready\r\n"}},
		{name: "stls without tls", steps: []string{"S: " + greet, "C: STLS\r\n", "S: " + invalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newConf()
			if tt.conf != nil {
				tt.conf(sc)
			}
			e := start(t, sc)
			e.run(t, tt.steps)
			if tt.up != "" {
				waitFor(t, func() bool { return e.up.String() == tt.up }, func() string { return "upstream got " + e.up.String() })
			}
			for _, l := range tt.logs {
				waitFor(t, func() bool { return strings.Contains(e.log.String(), l) }, func() string { return "log lacks " + l + ":\n" + e.log.String() })
			}
			for _, l := range tt.nologs {
				if strings.Contains(e.log.String(), l) {
					t.Errorf("log has %q:\n%s", l, e.log.String())
				}
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Error(msg())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAPOPAndCRAMRequests(t *testing.T) {
	sc := newConf()
	sc.POP3.Auth = confparse.AuthPlain | confparse.AuthAPOP | confparse.AuthCRAMMD5
	e := start(t, sc)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	r := bufio.NewReader(c)
	g, _ := r.ReadString('\n')
	salt := regexp.MustCompile(`<[^>]+>`).FindString(g)
	if salt == "" {
		t.Fatalf("greeting %q", g)
	}
	d := md5.Sum([]byte(salt + "secret"))
	io.WriteString(c, "APOP u "+hex.EncodeToString(d[:])+"\r\n") //nolint:errcheck
	if l, _ := r.ReadString('\n'); l != "+OK maildrop ready\r\n" {
		t.Fatalf("APOP reply %q", l)
	}
	reqs := e.auth.requests()
	if len(reqs) != 1 || reqs[0].Method != auth.MethodAPOP || string(reqs[0].Salt) != salt {
		t.Fatalf("requests %+v", reqs)
	}
	waitFor(t, func() bool { return e.up.String() == "USER u\r\nPASS secret\r\n" }, func() string { return e.up.String() })

	// CRAM-MD5 uses the greeting's salt.
	c2, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	r2 := bufio.NewReader(c2)
	g, _ = r2.ReadString('\n')
	salt = regexp.MustCompile(`<[^>]+>`).FindString(g)
	io.WriteString(c2, "AUTH CRAM-MD5\r\n") //nolint:errcheck
	ch, _ := r2.ReadString('\n')
	if ch != "+ "+b64(salt)+"\r\n" {
		t.Fatalf("challenge %q for salt %q", ch, salt)
	}
	m := hmac.New(md5.New, []byte("secret"))
	m.Write([]byte(salt))
	io.WriteString(c2, b64("u "+hex.EncodeToString(m.Sum(nil)))+"\r\n") //nolint:errcheck
	if l, _ := r2.ReadString('\n'); l != "+OK maildrop ready\r\n" {
		t.Fatalf("CRAM-MD5 reply %q", l)
	}
}

func TestTimeoutIsOneDeadline(t *testing.T) {
	sc := newConf()
	sc.Core.Timeout = 600 * time.Millisecond
	e := start(t, sc)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	begin := time.Now()
	r := bufio.NewReader(c)
	r.ReadString('\n') //nolint:errcheck
	// Activity does not re-arm the timer.
	for i := 0; i < 4; i++ {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, "NOOP\r\n") //nolint:errcheck
		r.ReadString('\n')            //nolint:errcheck
	}
	rest, _ := io.ReadAll(r)
	if took := time.Since(begin); len(rest) != 0 || took > 900*time.Millisecond || took < 550*time.Millisecond {
		t.Errorf("closed after %v with %q; want about 600ms and nothing", took, rest)
	}
	waitFor(t, func() bool {
		return strings.Contains(e.log.String(), "client timed out (110: Connection timed out) while in auth state, client: 127.0.0.1, server: 127.0.0.1:0\n")
	}, e.log.String)
}

func TestStartTLS(t *testing.T) {
	for _, mode := range []confparse.StartTLS{confparse.StartTLSOn, confparse.StartTLSOnly} {
		sc := newConf()
		sc.SSL.StartTLS = mode
		sc.SSL.Certificates, sc.SSL.CertificateKeys = selfSigned(t)
		e := start(t, sc)
		var steps []string
		if mode == confparse.StartTLSOn {
			steps = []string{"S: " + greet, "C: CAPA\r\n", "S: +OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n",
				"C: USER u\r\n", "S: +OK\r\n", "C: CAPA\r\n", "S: " + capaDefault, "C: QUIT\r\n", "S: +OK\r\n"}
		} else {
			steps = []string{"S: " + greet, "C: CAPA\r\n", "S: +OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n",
				"C: USER u\r\n", "S: " + invalid, "C: AUTH\r\n", "S: " + invalid,
				"C: STLS\r\n", "S: +OK\r\n", "STARTTLS", "C: CAPA\r\n", "S: " + capaDefault, "C: STLS\r\n", "S: " + invalid,
				"C: USER u\r\n", "S: +OK\r\n", "C: PASS secret\r\n", "S: +OK maildrop ready\r\n"}
		}
		e.run(t, steps)
		if mode == confparse.StartTLSOnly {
			waitFor(t, func() bool {
				return strings.Contains(e.log.String(), `client logged in, client: 127.0.0.1 using starttls, server: 127.0.0.1:0, login: "u"`)
			}, e.log.String)
			reqs := e.auth.requests()
			if len(reqs) != 1 || reqs[0].TLS == nil || reqs[0].TLS.Protocol != "TLSv1.3" {
				t.Errorf("auth request TLS info: %+v", reqs)
			}
		}
	}
}

// selfSigned writes a throw-away certificate and key.
func selfSigned(t *testing.T) ([]string, []string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"mx.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)   //nolint:errcheck
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600) //nolint:errcheck
	return []string{cf}, []string{kf}
}
