package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/mail/errlog"
	"mailgate/proxy"
)

// fakeProto is a line protocol for engine tests: NOOP, QUIT, REJ (handler
// refusal), BOOM (internal error), LOGIN u p (authenticate); anything else
// is a parse-level invalid command.
type fakeProto struct{ buf int }

func (fakeProto) Name() string                         { return "pop3" }
func (p fakeProto) ClientBuffer(*confparse.Server) int { return p.buf }
func (fakeProto) NewHandler(s *Session) Handler        { return &fakeHandler{s: s} }

type fakeHandler struct {
	s     *Session
	reset int
	keep  bool
}

// KeepBuffer makes fakeHandler a BufferKeeper (KEEP on, FREE off).
func (h *fakeHandler) KeepBuffer() bool { return h.keep }

func (h *fakeHandler) Greet() error { h.s.WriteString("+OK ready\r\n"); return nil }

func (h *fakeHandler) Parse(buf []byte) (Command, int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return nil, 0, ErrNeedMore
	}
	line := strings.TrimRight(string(buf[:i]), "\r")
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil, i + 1, ErrInvalid
	}
	switch f[0] {
	case "NOOP", "QUIT", "REJ", "BOOM", "LOGIN", "CERR", "KEEP", "FREE", "BIG":
		return f, i + 1, nil
	case "PANIC":
		var none []byte
		_ = none[len(f)] // the kind of bug the engine must contain
	}
	return nil, i + 1, ErrInvalid
}

func (h *fakeHandler) Exec(c Command) (Next, error) {
	f := c.([]string)
	switch f[0] {
	case "NOOP":
		h.s.WriteString("+OK\r\n")
		return Continue, nil
	case "BIG":
		h.s.WriteString(strings.Repeat("x", 1<<16) + "\r\n")
		return Continue, nil
	case "QUIT":
		h.s.WriteString("+OK bye\r\n")
		return Close, nil
	case "REJ":
		return Continue, ErrRejected
	case "KEEP", "FREE":
		h.keep = f[0] == "KEEP"
		h.s.WriteString("+OK\r\n")
		return Continue, nil
	case "CERR":
		return Continue, &CommandError{Reply: []byte("-ERR custom\r\n"), Counted: true, Log: "custom refusal"}
	case "BOOM":
		return Continue, errors.New("boom")
	case "LOGIN":
		if len(f) != 3 {
			return Continue, ErrRejected
		}
		h.s.Login = []byte(f[1])
		h.s.Passwd = []byte(f[2])
		h.s.AuthMethod = auth.MethodPlain
		return Authenticate, nil
	}
	return Continue, ErrInvalid
}

func (h *fakeHandler) ErrorReply(err error) []byte {
	if errors.Is(err, ErrRejected) {
		return []byte("-ERR rejected\r\n")
	}
	return []byte("-ERR invalid command\r\n")
}
func (h *fakeHandler) InternalError() []byte { return []byte("-ERR internal server error\r\n") }
func (h *fakeHandler) AuthFailed(msg, code string) []byte {
	return []byte("-ERR " + msg + "\r\n")
}
func (h *fakeHandler) AuthReset()            { h.reset++ }
func (h *fakeHandler) CertError(bool) []byte { return []byte("-ERR cert\r\n") }
func (h *fakeHandler) LoggedIn() []byte      { return []byte("+OK in\r\n") }

type authFunc func(ctx context.Context, r *auth.Request) (*auth.Result, error)

func (f authFunc) Do(ctx context.Context, r *auth.Request) (*auth.Result, error) { return f(ctx, r) }

// logBuf collects formatted log lines.
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

type testEnv struct {
	t     *testing.T
	srv   *Server
	addr  string
	log   *logBuf
	conf  *confparse.Server
	reqs  chan *auth.Request
	upstr *upstream

	mu     sync.Mutex
	states []string
}

type upstream struct {
	ln   net.Listener
	mu   sync.Mutex
	got  bytes.Buffer
	done chan struct{}
}

// startUpstream is a POP3 upstream for the real upstream login: a
// greeting, +OK to USER, "+OK logged in" to PASS ("-ERR no" when the
// password is "upfail"), then it records what the relay sends and answers
// ECHO with "echo".
func startUpstream(t *testing.T) *upstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, done: make(chan struct{})}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer close(u.done)
		defer c.Close()
		io.WriteString(c, "+OK upstream ready\r\n") //nolint:errcheck
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			u.mu.Lock()
			u.got.WriteString(line)
			u.mu.Unlock()
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "USER "):
				io.WriteString(c, "+OK\r\n") //nolint:errcheck
			case line == "PASS upfail\r\n":
				io.WriteString(c, "-ERR no\r\n") //nolint:errcheck
			case strings.HasPrefix(line, "PASS "):
				io.WriteString(c, "+OK logged in\r\n") //nolint:errcheck
			case strings.Contains(line, "ECHO"):
				io.WriteString(c, "echo\r\n") //nolint:errcheck
			}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return u
}

func (u *upstream) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got.String()
}

func newTestConf(timeout time.Duration) (*confparse.Config, *confparse.Server) {
	sc := &confparse.Server{Protocol: "pop3"}
	sc.Core.Timeout = timeout
	sc.Core.MaxErrors = 3
	sc.Core.ServerName = "mx.test"
	sc.AuthHTTP.Timeout = 2 * time.Second
	sc.AuthHTTP.Peer = "127.0.0.1:9"
	sc.Proxy.Buffer = 4096
	sc.Proxy.Timeout = time.Hour
	l := &confparse.Listen{Server: sc, Network: "tcp",
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Text: "127.0.0.1:0", Backlog: 511, IPv6Only: true}
	sc.Listens = []*confparse.Listen{l}
	return &confparse.Config{Mail: &confparse.Mail{Servers: []*confparse.Server{sc}, Listens: sc.Listens}}, sc
}

func startEnv(t *testing.T, bufSize int, timeout time.Duration, af authFunc) *testEnv {
	t.Helper()
	return startEnvConf(t, bufSize, timeout, af, nil)
}

// startEnvConf is startEnv with a change to the server block before the
// server starts.
func startEnvConf(t *testing.T, bufSize int, timeout time.Duration, af authFunc, mod func(*confparse.Server)) *testEnv {
	return startEnvDial(t, bufSize, timeout, af, mod, nil)
}

// startEnvDial is startEnvConf with an upstream dialer (nil: the real one).
func startEnvDial(t *testing.T, bufSize int, timeout time.Duration, af authFunc, mod func(*confparse.Server), dial DialFunc) *testEnv {
	t.Helper()
	env := &testEnv{t: t, log: &logBuf{}, reqs: make(chan *auth.Request, 16)}
	env.upstr = startUpstream(t)
	newAuth := func(*confparse.AuthHTTPConf) AuthClient {
		return authFunc(func(ctx context.Context, r *auth.Request) (*auth.Result, error) {
			cp := *r
			env.reqs <- &cp
			return af(ctx, r)
		})
	}
	cfg, sc := newTestConf(timeout)
	if mod != nil {
		mod(sc)
	}
	env.conf = sc
	lg := logrus.New()
	lg.SetOutput(env.log)
	lg.SetLevel(logrus.DebugLevel)
	lg.SetFormatter(&errlog.Formatter{Min: errlog.Info})
	srv, err := NewServer(cfg, Options{Protocols: map[string]Protocol{"pop3": fakeProto{buf: bufSize}}, Log: lg,
		NewAuth: newAuth, DialUpstream: dial,
		// Auth-Wait pauses are instant.
		Sleep: func(ctx context.Context, _ time.Duration) bool { return ctx.Err() == nil },
		ConnState: func(_ *Session, st State) {
			env.mu.Lock()
			env.states = append(env.states, st.String())
			env.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve() //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	env.srv = srv
	for _, a := range srv.Addrs() {
		env.addr = a.String()
	}
	return env
}

func (env *testEnv) upstreamResult() *auth.Result {
	return &auth.Result{Kind: auth.OK, Server: addrPortOf(env.upstr.ln.Addr()),
		ServerText: env.upstr.ln.Addr().String()}
}

// exchange writes in and reads everything until the server closes.
func (env *testEnv) exchange(in string) string {
	env.t.Helper()
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		env.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if in != "" {
		if _, err := io.WriteString(c, in); err != nil {
			env.t.Fatal(err)
		}
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

func okAuth(env **testEnv) authFunc {
	return func(ctx context.Context, r *auth.Request) (*auth.Result, error) {
		switch string(r.Pass) {
		case "good", "upfail":
			return (*env).upstreamResult(), nil
		case "wait":
			if r.LoginAttempt == 1 {
				return &auth.Result{Kind: auth.Fail, Message: "try later", HasWait: true, WaitSeconds: 1}, nil
			}
			return (*env).upstreamResult(), nil
		case "again":
			// WAIT with Auth-Wait 1, then OK.
			if string(r.User) == "a" {
				return &auth.Result{Kind: auth.Again, HasWait: true, WaitSeconds: 1, User: []byte("b")}, nil
			}
			return (*env).upstreamResult(), nil
		case "again0":
			// WAIT without a wait, then OK: nginx keeps asking until a
			// failure comes.
			switch string(r.User) {
			case "a":
				return &auth.Result{Kind: auth.Again, User: []byte("b")}, nil
			case "b":
				// The server says OK, but the request repeats a WAIT
				// without a wait, so the real client (auth.Decide) reads
				// it as another WAIT. The engine must say so in AuthWait.
				if !r.AuthWait {
					return &auth.Result{Kind: auth.Fail, Message: "engine lost the auth_wait flag"}, nil
				}
				return &auth.Result{Kind: auth.Again, User: []byte("c")}, nil
			}
			return &auth.Result{Kind: auth.Fail, Message: "enough"}, nil
		case "broken":
			return nil, &auth.Error{Log: "auth http server 127.0.0.1:9 sent invalid header in response", Level: errlog.Error}
		}
		return &auth.Result{Kind: auth.Fail, Message: "Invalid login or password"}, nil
	}
}

func TestEngineTranscripts(t *testing.T) {
	tests := []struct {
		name    string
		buf     int
		in      string
		want    string
		logs    []string
		nologs  []string
		upWant  string
		timeout time.Duration
		step    []string // sent one by one after in, each after its reply
	}{
		{name: "quit", buf: 32, in: "NOOP\r\nQUIT\r\nNOOP\r\n", want: "+OK ready\r\n+OK\r\n+OK bye\r\n",
			logs: []string{"client 127.0.0.1:", " connected to 127.0.0.1:0\n"}},
		{name: "pipelined in order", buf: 64, in: "NOOP\r\nREJ\r\nNOOP\nQUIT\r\n",
			want: "+OK ready\r\n+OK\r\n-ERR rejected\r\n+OK\r\n+OK bye\r\n"},
		{name: "max errors", buf: 64, in: "X\r\nREJ\r\nY\r\nZ\r\nNOOP\r\n",
			want: "+OK ready\r\n-ERR invalid command\r\n-ERR rejected\r\n-ERR invalid command\r\n-ERR invalid command\r\n",
			logs: []string{"client sent too many invalid commands while in auth state, client: 127.0.0.1, server: 127.0.0.1:0\n"}},
		{name: "command error counted", buf: 64, in: "CERR\r\nCERR\r\nCERR\r\nNOOP\r\n",
			want: "+OK ready\r\n-ERR custom\r\n-ERR custom\r\n-ERR custom\r\n",
			logs: []string{"custom refusal while in auth state"}},
		{name: "too long", buf: 16, in: "NOOP\r\nNOOP\r\nNOOP", want: "+OK ready\r\n+OK\r\n+OK\r\n-ERR invalid command\r\n",
			logs: []string{`client sent too long command "NOOP` + "\r\n" + `NOOP` + "\r\n" + `NOOP" while in auth state`}},
		{name: "kept buffer fills up", buf: 16, in: "KEEP\r\n", want: "+OK ready\r\n+OK\r\n+OK\r\n-ERR invalid command\r\n",
			step: []string{"NOOP\r\n", "NOOP\r\n"}},
		{name: "freed buffer is reused", buf: 16, in: "KEEP\r\n", want: "+OK ready\r\n+OK\r\n+OK\r\n+OK\r\n+OK bye\r\n",
			step: []string{"FREE\r\n", "NOOP\r\n", "QUIT\r\n"}},
		{name: "exactly full buffer works", buf: 12, in: "NOOP\r\nNOOP\r\nQUIT\r\n", want: "+OK ready\r\n+OK\r\n+OK\r\n+OK bye\r\n"},
		{name: "internal error", buf: 32, in: "BOOM\r\nNOOP\r\n", want: "+OK ready\r\n-ERR internal server error\r\n"},
		{name: "timeout", buf: 32, timeout: 300 * time.Millisecond, in: "NOOP\r\n", want: "+OK ready\r\n+OK\r\n",
			logs: []string{"client timed out (110: Connection timed out) while in auth state, client: 127.0.0.1, server: 127.0.0.1:0\n"}},
		{name: "auth fail", buf: 32, in: "LOGIN u bad\r\nNOOP\r\n", want: "+OK ready\r\n-ERR Invalid login or password\r\n",
			logs:   []string{`client login failed: "Invalid login or password" while in http auth state, client: 127.0.0.1, server: 127.0.0.1:0, login: "u"` + "\n"},
			nologs: []string{"bad"}},
		{name: "auth error", buf: 32, in: "LOGIN u broken\r\n", want: "+OK ready\r\n-ERR internal server error\r\n",
			logs: []string{"[error]", "auth http server 127.0.0.1:9 sent invalid header in response while in http auth state, client: 127.0.0.1, server: 127.0.0.1:0, login: \"u\"\n"}},
		{name: "auth ok relays", buf: 64, in: "LOGIN u good\r\nECHO\r\n",
			want:   "+OK ready\r\n+OK logged in\r\necho\r\n",
			upWant: "USER u\r\nPASS good\r\nECHO\r\n",
			logs:   []string{"client logged in, client: 127.0.0.1, server: 127.0.0.1:0, login: \"u\", upstream: 127.0.0.1:"}},
		{name: "auth wait then ok", buf: 64, in: "LOGIN u wait\r\nNOOP\r\nLOGIN v wait\r\n",
			want:   "+OK ready\r\n-ERR try later\r\n+OK\r\n+OK logged in\r\n",
			upWant: "USER v\r\nPASS wait\r\n"},
		{name: "upstream login error", buf: 64, in: "LOGIN u upfail\r\n",
			want: "+OK ready\r\n-ERR internal server error\r\n",
			logs: []string{"[error]", `upstream sent invalid response: "-ERR no" while reading response from upstream, client: 127.0.0.1, server: 127.0.0.1:0, login: "u", upstream: 127.0.0.1:`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env *testEnv
			to := tt.timeout
			if to == 0 {
				to = 5 * time.Second
			}
			env = startEnv(t, tt.buf, to, okAuth(&env))
			var got string
			if tt.step != nil {
				got = env.stepExchange(tt.in, tt.step)
			} else if tt.upWant != "" {
				got = env.relayExchange(tt.in, len(tt.want))
			} else {
				got = env.exchange(tt.in)
			}
			if got != tt.want {
				t.Errorf("client got %q, want %q", got, tt.want)
			}
			if tt.upWant != "" {
				deadline := time.Now().Add(5 * time.Second)
				for env.upstr.String() != tt.upWant && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if g := env.upstr.String(); g != tt.upWant {
					t.Errorf("upstream got %q, want %q", g, tt.upWant)
				}
			}
			waitLogs(t, env.log, tt.logs)
			for _, nl := range tt.nologs {
				if strings.Contains(env.log.String(), nl) {
					t.Errorf("log contains %q:\n%s", nl, env.log.String())
				}
			}
		})
	}
}

func waitLogs(t *testing.T, lb *logBuf, want []string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for _, w := range want {
		for !strings.Contains(lb.String(), w) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(lb.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, lb.String())
		}
	}
}

// stepExchange sends in, then each step after the previous reply, and
// reads until the server closes.
func (env *testEnv) stepExchange(in string, steps []string) string {
	env.t.Helper()
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		env.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	r := bufio.NewReader(c)
	var out strings.Builder
	l, _ := r.ReadString('\n')
	out.WriteString(l)
	for _, st := range append([]string{in}, steps...) {
		io.WriteString(c, st) //nolint:errcheck
		l, _ := r.ReadString('\n')
		out.WriteString(l)
	}
	rest, _ := io.ReadAll(r)
	out.Write(rest)
	return out.String()
}

// relayExchange writes in and reads n bytes (the session stays open).
func (env *testEnv) relayExchange(in string, n int) string {
	env.t.Helper()
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		env.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	io.WriteString(c, in)                           //nolint:errcheck
	buf := make([]byte, n)
	m, _ := io.ReadFull(bufio.NewReader(c), buf)
	return string(buf[:m])
}

func TestEngineWaitRequeries(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 5*time.Second, okAuth(&env))
	got := env.relayExchange("LOGIN a again\r\n", len("+OK ready\r\n+OK logged in\r\n"))
	if got != "+OK ready\r\n+OK logged in\r\n" {
		t.Fatalf("got %q", got)
	}
	r1, r2 := <-env.reqs, <-env.reqs
	if r1.LoginAttempt != 1 || r2.LoginAttempt != 1 || string(r2.User) != "b" || string(r2.Pass) != string(r1.Pass) {
		t.Errorf("WAIT must resend the request (with the Auth-User override) and the same attempt: %v %q", r2.LoginAttempt, r2.User)
	}
	got = env.exchange("LOGIN a again0\r\n")
	if got != "+OK ready\r\n-ERR enough\r\n" {
		t.Fatalf("WAIT without wait: got %q", got)
	}
	for i, want := range []string{"a", "b", "c"} {
		if r := <-env.reqs; string(r.User) != want {
			t.Errorf("request %d for %q, want %q", i, r.User, want)
		}
	}
}

func TestEngineAuthRequestFields(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 5*time.Second, okAuth(&env))
	env.exchange("LOGIN u bad\r\n")
	r := <-env.reqs
	if r.Method != auth.MethodPlain || string(r.User) != "u" || string(r.Pass) != "bad" ||
		r.Protocol != "pop3" || r.LoginAttempt != 1 || r.ClientIP != "127.0.0.1" || r.Salt != nil {
		t.Errorf("request = %+v", r)
	}
}

func TestConnectionNumbers(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 5*time.Second, okAuth(&env))
	before := connCounter.Load()
	env.exchange("LOGIN u bad\r\n")
	env.exchange("QUIT\r\n")
	// client, auth, then the next client.
	if got := connCounter.Load() - before; got != 3 {
		t.Errorf("counter advanced by %d, want 3", got)
	}
}

func TestShutdownKeepsPreAuthSessions(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 5*time.Second, okAuth(&env))
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if l, _ := r.ReadString('\n'); l != "+OK ready\r\n" {
		t.Fatalf("greeting %q", l)
	}
	done := make(chan error)
	go func() { done <- env.srv.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	if _, err := net.Dial("tcp", env.addr); err == nil {
		t.Error("new connections accepted after Shutdown")
	}
	io.WriteString(c, "NOOP\r\nQUIT\r\n") //nolint:errcheck
	if l, _ := r.ReadString('\n'); l != "+OK\r\n" {
		t.Errorf("pre-auth session after Shutdown: %q", l)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Shutdown did not return after the session ended")
	}
}

func TestShutdownDeadlineCloses(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 30*time.Second, okAuth(&env))
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bufio.NewReader(c).ReadString('\n') //nolint:errcheck
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := env.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v", err)
	}
}

func TestConnStateHook(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 5*time.Second, okAuth(&env))
	env.exchange("LOGIN u wait\r\nQUIT\r\n")
	deadline := time.Now().Add(3 * time.Second)
	want := "new pre-auth auth pre-auth closed"
	for {
		env.mu.Lock()
		got := strings.Join(env.states, " ")
		env.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("states %q, want %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// preparingProto is fakeProto with a Preparer that counts its calls.
type preparingProto struct {
	fakeProto
	calls *atomic.Int32
}

func (p preparingProto) Prepare(c *confparse.Server) any {
	p.calls.Add(1)
	return c
}

// TestPrepareOncePerServer: a Preparer runs once per server block when the
// server is built, and every session of that block gets its result.
func TestPrepareOncePerServer(t *testing.T) {
	cfg, sc := newTestConf(5 * time.Second)
	var calls atomic.Int32
	prepared := make(chan any, 4)
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	srv, err := NewServer(cfg, Options{
		Protocols: map[string]Protocol{"pop3": preparingProto{fakeProto{buf: 64}, &calls}},
		Log:       lg,
		ConnState: func(s *Session, st State) {
			if st == StateNew {
				prepared <- s.Prepared
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve() //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	var addr string
	for _, a := range srv.Addrs() {
		addr = a.String()
	}
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := <-prepared; got != sc {
			t.Errorf("session %d got Prepared %v, want its server's", i, got)
		}
		c.Close()
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("Prepare ran %d times for one server block, want 1", n)
	}
}

func TestPanicEndsOnlyItsSession(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 5*time.Second, okAuth(&env))
	before := PanicsRecovered()

	// A session that stays open through another's panic.
	bystander, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close()
	br := bufio.NewReader(bystander)
	if l, _ := br.ReadString('\n'); l != "+OK ready\r\n" {
		t.Fatalf("greeting %q", l)
	}

	if got := env.exchange("NOOP\r\nPANIC\r\nNOOP\r\n"); got != "+OK ready\r\n+OK\r\n" {
		t.Fatalf("panicking session got %q", got)
	}
	if n := PanicsRecovered() - before; n != 1 {
		t.Fatalf("%d panics counted, want 1", n)
	}
	waitLogs(t, env.log, []string{"[alert]", "panic: runtime error: index out of range [1] with length 0 (mail.(*fakeHandler).Parse engine_test.go:",
		"while in auth state, client: 127.0.0.1, server: 127.0.0.1:0"})

	bystander.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	io.WriteString(bystander, "NOOP\r\n")                  //nolint:errcheck
	if l, _ := br.ReadString('\n'); l != "+OK\r\n" {
		t.Fatalf("the other session got %q after the panic", l)
	}
	if got := env.exchange("QUIT\r\n"); got != "+OK ready\r\n+OK bye\r\n" {
		t.Fatalf("a new session got %q", got)
	}
}

// panicUpstream is an upstream connection whose Read panics once the
// client has sent PANIC through the relay.
type panicUpstream struct {
	net.Conn
	armed atomic.Bool
}

func (p *panicUpstream) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("PANIC")) {
		p.armed.Store(true)
	}
	return p.Conn.Write(b)
}

func (p *panicUpstream) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if p.armed.Load() {
		var m map[string]int
		m["x"]++ // assignment to entry in nil map
	}
	return n, err
}

func TestRelayPanicEndsOnlyItsSession(t *testing.T) {
	dial := func(ctx context.Context, a netip.AddrPort, pp int) (net.Conn, error) {
		c, err := proxy.DialProxy(ctx, a, pp)
		if err != nil {
			return nil, err
		}
		return &panicUpstream{Conn: c}, nil
	}
	var env *testEnv
	env = startEnvDial(t, 64, 5*time.Second, okAuth(&env), nil, dial)
	before := PanicsRecovered()
	got := env.exchange("LOGIN alice good\r\nPANIC ECHO\r\n")
	if got != "+OK ready\r\n+OK logged in\r\n" {
		t.Fatalf("client got %q", got)
	}
	// Counted when the relay's end is handled, which may come just after
	// the client saw the close.
	waitLogs(t, env.log, []string{"[alert]", "panic: assignment to entry in nil map (mail.(*panicUpstream).Read engine_test.go:", `login: "alice"`})
	if n := PanicsRecovered() - before; n != 1 {
		t.Fatalf("%d panics counted, want 1", n)
	}
	if got := env.exchange("QUIT\r\n"); got != "+OK ready\r\n+OK bye\r\n" {
		t.Fatalf("a new session got %q", got)
	}
}

// At the worker_connections limit nginx closes the connection it accepted
// before any greeting and logs an alert; a freed connection is reused.
func TestWorkerConnectionsLimit(t *testing.T) {
	var env *testEnv
	env = startEnvConf(t, 64, 5*time.Second, okAuth(&env), nil)
	env.srv.mu.Lock()
	env.srv.connLimit = connectionLimit(&confparse.Config{Core: confparse.Core{WorkerConnections: 3, WorkerProcesses: 1}}, 1)
	env.srv.workerConns = 3
	env.srv.mu.Unlock()
	if limit := connectionLimit(&confparse.Config{Core: confparse.Core{WorkerConnections: 3, WorkerProcesses: 1}}, 1); limit != 2 {
		t.Fatalf("limit %d, want 2", limit)
	}
	refused := ConnectionsRefused()
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if l, _ := bufio.NewReader(c).ReadString('\n'); l != "+OK ready\r\n" {
			t.Fatalf("session %d greeting %q", i, l)
		}
		open = append(open, c)
	}
	if got := env.exchange(""); got != "" {
		t.Fatalf("a connection over the limit got %q", got)
	}
	waitLogs(t, env.log, []string{"[alert]", "3 worker_connections are not enough\n"})
	if n := ConnectionsRefused() - refused; n != 1 {
		t.Errorf("%d refusals counted, want 1 (mailgate_connections_refused_total)", n)
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := env.exchange("QUIT\r\n")
		if got == "+OK ready\r\n+OK bye\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a session ended, a new one got %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client that sends commands and never reads the replies is closed once
// the pre-auth timeout after the greeting has passed, even while the
// engine is blocked sending to it.
func TestFloodWithoutReadingEndsAtTheTimeout(t *testing.T) {
	var env *testEnv
	// Commands of 5 bytes in a 60-byte buffer: reads stay aligned, so the
	// flood is never a "too long command"; each reply is 64 KiB.
	env = startEnv(t, 60, time.Second, okAuth(&env))
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(1024) //nolint:errcheck
	flood := []byte(strings.Repeat("BIG\r\n", 1000))
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)) //nolint:errcheck
		if _, err := c.Write(flood); err != nil && !errlog.IsTimeout(err) {
			break
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("the flooding client was served for %v with a 1s timeout", d)
	}
	waitLogs(t, env.log, []string{"client timed out (110: Connection timed out) while in auth state"})
}

// When a graceful shutdown runs out of time (worker_shutdown_timeout), a
// relayed session ends with nginx's "shutdown timeout" line; a relayed
// session that ends on its own before that gets every byte (QUIT loses
// nothing).
func TestShutdownTimeoutEndsRelays(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 30*time.Second, okAuth(&env))
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "LOGIN u good\r\n") //nolint:errcheck
	for _, want := range []string{"+OK ready\r\n", "+OK logged in\r\n"} {
		if l, _ := r.ReadString('\n'); l != want {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// Until the deadline the relay still works.
	go func() {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, "ECHO\r\n") //nolint:errcheck
	}()
	done := make(chan error, 1)
	go func() { done <- env.srv.Shutdown(ctx) }()
	if l, _ := r.ReadString('\n'); l != "echo\r\n" {
		t.Fatalf("relay during the graceful shutdown got %q", l)
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v", err)
	}
	waitLogs(t, env.log, []string{"[info]", `shutdown timeout while proxying, client: 127.0.0.1, server: 127.0.0.1:0, login: "u"`})
}
