package auth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/mail/errlog"

	"mailgate/confparse"
)

// rawServer is a fake auth server speaking raw bytes: it records each
// request head and answers with answer(). Directives at the start of the
// answer, one per line: "#delay", "#close", "#rst" (close with a reset),
// "#hang", "#hangafter" (send the rest, then keep the connection open).
type rawServer struct {
	ln     net.Listener
	answer func(req []byte) []byte
	delay  time.Duration

	mu   sync.Mutex
	reqs [][]byte
	done chan struct{}
	wg   sync.WaitGroup
}

func startRaw(t *testing.T, network, addr string, answer func([]byte) []byte) *rawServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, answer: answer, delay: time.Second, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.done)
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) serve(c net.Conn) {
	br := bufio.NewReader(c)
	var req []byte
	for {
		line, err := br.ReadBytes('\n')
		req = append(req, line...)
		if err != nil || string(line) == "\r\n" {
			break
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	ans := s.answer(req)
	for bytes.HasPrefix(ans, []byte("#")) {
		line, rest, _ := bytes.Cut(ans, []byte("\n"))
		ans = rest
		switch string(bytes.Fields(line)[0]) {
		case "#delay":
			select {
			case <-time.After(s.delay):
			case <-s.done:
				return
			}
		case "#close":
			return
		case "#rst":
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			return
		case "#hang":
			<-s.done
			return
		case "#hangafter":
			c.Write(ans)
			<-s.done
			return
		}
	}
	c.Write(ans)
}

func (s *rawServer) requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.reqs...)
}

func tcpConf(addr string, timeout time.Duration) *confparse.AuthHTTPConf {
	return &confparse.AuthHTTPConf{Network: "tcp", Addr: addr, Peer: "127.0.0.1:22001", Host: "127.0.0.1", URI: "/auth", Timeout: timeout}
}

// observed is one answer run through real nginx 1.22.1
// (testdata/nginx-1.22.1/responses.jsonl, made by tools/resp_cases.py).
type observed struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Answer  string   `json:"answer"`
	Reply   string   `json:"reply"`
	After   string   `json:"after"`
	Seconds float64  `json:"seconds"`
	Log     []string `json:"log"`
}

var (
	upstreamLog = regexp.MustCompile(` while (?:reading response from|connecting to) upstream \[upstream: (.*)\]$`)
	failedLog   = regexp.MustCompile(`^info: client login failed: "(.*)" while in http auth state$`)
	authLog     = regexp.MustCompile(`^(\w+): (.*) while in http auth state$`)
)

// TestDoAgainstNginx replays every answer that was run through real nginx
// and checks that Do reaches the same outcome: the same upstream, the same
// failure text/code/wait, the same log line and level, or the same silent
// internal error.
func TestDoAgainstNginx(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "nginx-1.22.1", "responses.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []observed
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var o observed
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, o)
	}
	if len(cases) < 80 {
		t.Fatalf("%d observed cases, want at least 80", len(cases))
	}

	const timeout = 300 * time.Millisecond
	for _, o := range cases {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			proto, method := "pop3", MethodPlain
			switch o.Kind {
			case "apop":
				method = MethodAPOP
			case "smtp":
				proto = "smtp"
			}
			conf := tcpConf("", timeout)
			switch o.Kind {
			case "refused":
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				conf.Addr = ln.Addr().String()
				ln.Close()
			case "unix-nonexistent":
				conf.Network, conf.Addr = "unix", filepath.Join(t.TempDir(), "nonexist.sock")
				conf.Peer = "unix:" + conf.Addr
				o.Log[0] = strings.ReplaceAll(o.Log[0], "unix:/tmp/auth/nonexist.sock", conf.Peer)
			case "unix-stale":
				conf.Network, conf.Addr = "unix", filepath.Join(t.TempDir(), "stale.sock")
				conf.Peer = "unix:" + conf.Addr
				o.Log[0] = strings.ReplaceAll(o.Log[0], "unix:/tmp/auth/stale.sock", conf.Peer)
				staleSocket(t, conf.Addr)
			default:
				srv := startRaw(t, "tcp", "127.0.0.1:0", func([]byte) []byte { return []byte(o.Answer) })
				srv.delay = 3 * timeout
				conf.Addr = srv.ln.Addr().String()
			}
			c := NewClient(conf)
			start := time.Now()
			res, err := c.Do(context.Background(), &Request{Method: method, User: []byte("good"), Pass: []byte("pw"), Protocol: proto, LoginAttempt: 1, ClientIP: "127.0.0.1"})
			elapsed := time.Since(start)
			checkObserved(t, o, res, err)
			if strings.Contains(strings.Join(o.Log, ""), "timed out") && (elapsed < timeout || elapsed > timeout+time.Second) {
				t.Errorf("timed out after %v, want about %v", elapsed, timeout)
			}
		})
	}
}

func checkObserved(t *testing.T, o observed, res *Result, err error) {
	t.Helper()
	var ae *Error
	if err != nil && !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *auth.Error", err)
	}
	logLine := ""
	if len(o.Log) > 0 {
		logLine = o.Log[0]
	}
	switch {
	case upstreamLog.MatchString(logLine):
		want := upstreamLog.FindStringSubmatch(logLine)[1]
		if err != nil || res.Kind != OK || res.ServerText != want {
			t.Fatalf("nginx went to upstream %s; got %+v, %v", want, res, err)
		}
	case failedLog.MatchString(logLine):
		msg := failedLog.FindStringSubmatch(logLine)[1]
		if err != nil || res.Kind != Fail || res.Message != msg {
			t.Fatalf("nginx failed the login with %q; got %+v, %v", msg, res, err)
		}
		waits := res.HasWait && res.WaitSeconds > 0
		if waits != (o.After == "open") {
			t.Errorf("nginx kept the session %s; got wait %v %d", o.After, res.HasWait, res.WaitSeconds)
		}
		if waits && float64(res.WaitSeconds) != o.Seconds {
			t.Errorf("nginx waited %vs; got %d", o.Seconds, res.WaitSeconds)
		}
		if o.Kind == "smtp" {
			code := res.ErrorCode
			if code == "" {
				code = "535 5.7.0"
			}
			if want := code + " " + msg + "\r\n"; o.Reply != want {
				t.Errorf("nginx replied %q; we would reply %q", o.Reply, want)
			}
		}
	case authLog.MatchString(logLine):
		m := authLog.FindStringSubmatch(logLine)
		if ae == nil {
			t.Fatalf("nginx logged %q; got %+v", logLine, res)
		}
		if ae.Level.String() != m[1] || ae.Log != m[2] {
			t.Errorf("got log %s: %q\nwant %s: %q", ae.Level, ae.Log, m[1], m[2])
		}
	case logLine == "":
		if ae == nil || ae.Log != "" {
			t.Fatalf("nginx logged nothing; got %+v, %v", res, err)
		}
	default:
		t.Fatalf("unclassified nginx log line %q", logLine)
	}
}

// staleSocket leaves a socket file nobody listens on.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

func TestDoUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.sock")
	srv := startRaw(t, "unix", path, func([]byte) []byte {
		return []byte("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: ::1\r\nAuth-Port: 993\r\nAuth-Pass: secret\r\n\r\n")
	})
	c := NewClient(&confparse.AuthHTTPConf{Network: "unix", Addr: path, Host: "localhost", URI: "/u",
		Headers: [][2]string{{"X-Secret", "s3cr et"}}, Timeout: time.Second})
	if c.Peer() != "unix:"+path {
		t.Errorf("peer %q", c.Peer())
	}
	req := &Request{Method: MethodCRAMMD5, User: []byte("user"), Pass: []byte("0123"), Salt: []byte("<1.2@mx>\r\n"),
		Protocol: "imap", LoginAttempt: 1, ClientIP: "127.0.0.1"}
	res, err := c.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != OK || res.Server.String() != "[::1]:993" || res.ServerText != "::1:993" || string(res.Pass) != "secret" {
		t.Errorf("result %+v", res)
	}
	want := "GET /u HTTP/1.0\r\nHost: localhost\r\nAuth-Method: cram-md5\r\nAuth-User: user\r\nAuth-Pass: 0123\r\n" +
		"Auth-Salt: <1.2@mx>\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\nX-Secret: s3cr et\r\n\r\n"
	if got := srv.requests(); len(got) != 1 || string(got[0]) != want {
		t.Errorf("sent %q\nwant %q", got, want)
	}
}

// TestDoRefusalKeepsAuthUser: nginx applies Auth-User while reading, so a
// complete answer refused afterwards ("did not send password") is logged
// with the overridden login; the error carries it for the engine.
func TestDoRefusalKeepsAuthUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.sock")
	startRaw(t, "unix", path, func([]byte) []byte {
		return []byte("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\nAuth-User: other\r\n\r\n")
	})
	c := NewClient(&confparse.AuthHTTPConf{Network: "unix", Addr: path, Host: "localhost", URI: "/", Timeout: time.Second})
	_, err := c.Do(context.Background(), &Request{Method: MethodCRAMMD5, User: []byte("user"), Pass: []byte("0123"),
		Protocol: "imap", LoginAttempt: 1, ClientIP: "127.0.0.1"})
	var ae *Error
	if !errors.As(err, &ae) || !strings.HasSuffix(ae.Log, "did not send password") || string(ae.User) != "other" {
		t.Fatalf("err %#v", err)
	}
}

// TestWorkedExchanges runs worked auth_http exchanges (auth/testdata): request bytes as
// nginx sent them, answers as shown, outcome as nginx acted.
func TestWorkedExchanges(t *testing.T) {
	extra := [][2]string{{"X-Secret", "s3cr et"}, {"X-Two", "two"}}
	head := "GET /auth?x=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	tail := "X-Secret: s3cr et\r\nX-Two: two\r\n\r\n"
	tests := []struct {
		name   string
		req    Request
		sent   string
		answer string
		check  func(t *testing.T, r *Result, err error)
	}{
		{"pop3 user/pass",
			Request{Method: MethodPlain, User: []byte("good"), Pass: []byte("pass%word "), Salt: []byte("<850434897.1795661452@mx.test>\r\n"), Protocol: "pop3", LoginAttempt: 1, ClientIP: "127.0.0.1"},
			head + "Auth-Method: plain\r\nAuth-User: good\r\nAuth-Pass: pass%25word%20\r\nAuth-Protocol: pop3\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\n" + tail,
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 19110\r\n\r\n",
			func(t *testing.T, r *Result, err error) {
				if err != nil || r.Kind != OK || r.ServerText != "127.0.0.1:19110" || r.Pass != nil || r.User != nil {
					t.Errorf("%+v %v", r, err)
				}
			}},
		{"pop3 apop",
			Request{Method: MethodAPOP, User: []byte("user"), Pass: []byte("add82f03c99be85fefc6f322b9345a31"), Salt: []byte("<2019300792.1795661462@mx.test>\r\n"), Protocol: "pop3", LoginAttempt: 1, ClientIP: "127.0.0.1"},
			head + "Auth-Method: apop\r\nAuth-User: user\r\nAuth-Pass: add82f03c99be85fefc6f322b9345a31\r\nAuth-Salt: <2019300792.1795661462@mx.test>\r\nAuth-Protocol: pop3\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\n" + tail,
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 19110\r\nAuth-Pass: secret\r\n\r\n",
			func(t *testing.T, r *Result, err error) {
				if err != nil || r.Kind != OK || string(r.Pass) != "secret" {
					t.Errorf("%+v %v", r, err)
				}
			}},
		{"imap login, failure closes",
			Request{Method: MethodPlain, User: []byte("good@x.org"), Pass: []byte("p w"), Protocol: "imap", LoginAttempt: 1, ClientIP: "127.0.0.1"},
			head + "Auth-Method: plain\r\nAuth-User: good@x.org\r\nAuth-Pass: p%20w\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\n" + tail,
			"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n\r\n",
			func(t *testing.T, r *Result, err error) {
				if err != nil || r.Kind != Fail || r.Message != "Invalid login or password" || r.HasWait {
					t.Errorf("%+v %v", r, err)
				}
			}},
		{"imap login retry after wait",
			Request{Method: MethodPlain, User: []byte("good"), Pass: []byte("pw"), Protocol: "imap", LoginAttempt: 2, ClientIP: "127.0.0.1"},
			head + "Auth-Method: plain\r\nAuth-User: good\r\nAuth-Pass: pw\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 2\r\nClient-IP: 127.0.0.1\r\n" + tail,
			"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 1\r\n\r\n",
			func(t *testing.T, r *Result, err error) {
				if err != nil || r.Kind != Fail || !r.HasWait || r.WaitSeconds != 1 {
					t.Errorf("%+v %v", r, err)
				}
			}},
		{"smtp auth plain, error code",
			Request{Method: MethodPlain, User: []byte("good"), Pass: []byte("pw"), Protocol: "smtp", LoginAttempt: 1, ClientIP: "127.0.0.1", HasClientHost: true, ClientHost: "[UNAVAILABLE]"},
			head + "Auth-Method: plain\r\nAuth-User: good\r\nAuth-Pass: pw\r\nAuth-Protocol: smtp\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\nClient-Host: [UNAVAILABLE]\r\n" + tail,
			"HTTP/1.0 200 OK\r\nAuth-Status: Temporary server problem, try again later\r\nAuth-Error-Code: 451 4.3.0\r\n\r\n",
			func(t *testing.T, r *Result, err error) {
				if err != nil || r.Kind != Fail || r.ErrorCode != "451 4.3.0" || r.Message != "Temporary server problem, try again later" {
					t.Errorf("%+v %v", r, err)
				}
			}},
		{"smtp none",
			Request{Method: MethodNone, Protocol: "smtp", LoginAttempt: 1, ClientIP: "127.0.0.1", HasClientHost: true, ClientHost: "[UNAVAILABLE]",
				SMTPHelo: []byte("client.example"), SMTPFrom: []byte("MAIL FROM:<from@x.org> SIZE=100"), SMTPTo: []byte("RCPT TO:<to@y.org>")},
			head + "Auth-Method: none\r\nAuth-User: \r\nAuth-Pass: \r\nAuth-Protocol: smtp\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\nClient-Host: [UNAVAILABLE]\r\n" +
				"Auth-SMTP-Helo: client.example\r\nAuth-SMTP-From: MAIL FROM:<from@x.org> SIZE=100\r\nAuth-SMTP-To: RCPT TO:<to@y.org>\r\n" + tail,
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 19025\r\n\r\n",
			func(t *testing.T, r *Result, err error) {
				if err != nil || r.Kind != OK || r.ServerText != "127.0.0.1:19025" {
					t.Errorf("%+v %v", r, err)
				}
			}},
		{"proxy protocol",
			Request{Method: MethodPlain, User: []byte("u"), Pass: []byte("p"), Protocol: "imap", LoginAttempt: 1, ClientIP: "192.0.2.10",
				ProxyProtocol: &ProxyInfo{Addr: "192.0.2.10", Port: "40000", ServerAddr: "198.51.100.5", ServerPort: "993"}},
			head + "Auth-Method: plain\r\nAuth-User: u\r\nAuth-Pass: p\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\nClient-IP: 192.0.2.10\r\n" +
				"Proxy-Protocol-Addr: 192.0.2.10\r\nProxy-Protocol-Port: 40000\r\nProxy-Protocol-Server-Addr: 198.51.100.5\r\nProxy-Protocol-Server-Port: 993\r\n" + tail,
			"HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 3\r\n\r\n",
			func(t *testing.T, r *Result, err error) {
				if err != nil || r.Kind != Again || r.WaitSeconds != 3 {
					t.Errorf("%+v %v", r, err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRaw(t, "tcp", "127.0.0.1:0", func([]byte) []byte { return []byte(tc.answer) })
			c := NewClient(&confparse.AuthHTTPConf{Network: "tcp", Addr: srv.ln.Addr().String(), Peer: "127.0.0.1:9901",
				Host: "127.0.0.1", URI: "/auth?x=1", Headers: extra, Timeout: time.Second})
			res, err := c.Do(context.Background(), &tc.req)
			tc.check(t, res, err)
			if got := srv.requests(); len(got) != 1 || string(got[0]) != tc.sent {
				t.Errorf("sent %q\nwant %q", got, tc.sent)
			}
		})
	}
}

func TestDoCertOnlyWhenConfigured(t *testing.T) {
	srv := startRaw(t, "tcp", "127.0.0.1:0", func([]byte) []byte { return []byte("Auth-Status: no\r\n\r\n") })
	for _, pass := range []bool{false, true} {
		conf := tcpConf(srv.ln.Addr().String(), time.Second)
		conf.PassClientCert = pass
		req := &Request{Method: MethodPlain, Protocol: "imap", LoginAttempt: 1, ClientIP: "127.0.0.1",
			TLS: &TLSInfo{Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Verify: "SUCCESS", Cert: "PEM DATA\n"}}
		if _, err := NewClient(conf).Do(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if req.TLS.Cert != "PEM DATA\n" {
			t.Error("Do changed the caller's request")
		}
		reqs := srv.requests()
		sent := string(reqs[len(reqs)-1])
		if has := strings.Contains(sent, "Auth-SSL-Cert: PEM%20DATA%0A\r\n"); has != pass {
			t.Errorf("pass_client_cert %v: cert sent %v in %q", pass, has, sent)
		}
		if !strings.Contains(sent, "Auth-SSL: on\r\nAuth-SSL-Protocol: TLSv1.3\r\nAuth-SSL-Cipher: TLS_AES_128_GCM_SHA256\r\nAuth-SSL-Verify: SUCCESS\r\n") {
			t.Errorf("TLS headers missing in %q", sent)
		}
	}
}

func TestDoContext(t *testing.T) {
	srv := startRaw(t, "tcp", "127.0.0.1:0", func([]byte) []byte { return []byte("#hang\n") })
	c := NewClient(tcpConf(srv.ln.Addr().String(), 10*time.Second))
	req := &Request{Method: MethodPlain, Protocol: "imap", LoginAttempt: 1, ClientIP: "127.0.0.1"}

	// A ctx deadline shorter than auth_http_timeout is a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, req)
	var ae *Error
	if !errors.As(err, &ae) || ae.Log != "auth http server 127.0.0.1:22001 timed out (110: Connection timed out)" || ae.Level != errlog.Error {
		t.Errorf("deadline: %v", err)
	}

	// Cancellation is not logged.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	start := time.Now()
	_, err = c.Do(ctx2, req)
	if !errors.As(err, &ae) || ae.Log != "" || !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("cancel did not stop Do")
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		e    *Error
		want string
	}{
		{&Error{Log: "auth http server x sent invalid header in response", Err: ErrInvalidHeader}, "auth http server x sent invalid header in response"},
		{&Error{Err: ErrTooLarge}, ErrTooLarge.Error()},
		{&Error{}, "auth http error"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if !errors.Is(&Error{Err: ErrTooLarge}, ErrTooLarge) {
		t.Error("Unwrap")
	}
}

// TestNoPasswordInErrors: nothing a client sends ends up in an error text.
func TestNoPasswordInErrors(t *testing.T) {
	answers := []string{"garbage\r\n\r\n", "#close\n", "HTTP/1.0 200\rX", "Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n\r\n",
		"Auth-Server: 127.0.0.1\r\nAuth-Port: 1\r\n\r\n", "Auth-Server: h\r\nAuth-Port: 1\r\nAuth-Pass: x\r\n\r\n"}
	for _, a := range answers {
		srv := startRaw(t, "tcp", "127.0.0.1:0", func([]byte) []byte { return []byte(a) })
		_, err := NewClient(tcpConf(srv.ln.Addr().String(), time.Second)).Do(context.Background(),
			&Request{Method: MethodAPOP, User: []byte("u"), Pass: []byte("S3cretPassw0rd"), Protocol: "pop3", LoginAttempt: 1, ClientIP: "127.0.0.1"})
		if err == nil {
			t.Fatalf("answer %q: no error", a)
		}
		if strings.Contains(err.Error(), "S3cretPassw0rd") || strings.Contains(err.(*Error).Log, "S3cretPassw0rd") {
			t.Errorf("password in error %q", err)
		}
	}
}
