package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// httpAuth is an HTTP/1.1-capable fake auth server: it reads requests
// one after another on each connection and answers each with answer(req).
// The answer's status line decides: "HTTP/1.1" keeps the connection
// unless close is set; anything else closes after the answer.
type httpAuth struct {
	ln    net.Listener
	conns atomic.Int64
	reqs  atomic.Int64

	mu     sync.Mutex
	answer func(req string) (resp string, closeAfter bool)
	heads  []string
	open   []net.Conn
}

func startHTTPAuth(t *testing.T, tlsConf *tls.Config, answer func(string) (string, bool)) *httpAuth {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	s := &httpAuth{ln: ln, answer: answer}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					s.reqs.Add(1)
					s.mu.Lock()
					s.heads = append(s.heads, head.String())
					f := s.answer
					s.mu.Unlock()
					resp, closeAfter := f(head.String())
					if resp == "#hang" {
						time.Sleep(3 * time.Second)
						return
					}
					if _, err := c.Write([]byte(resp)); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *httpAuth) addr() string { return s.ln.Addr().String() }

func (s *httpAuth) setAnswer(f func(string) (string, bool)) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

func (s *httpAuth) lastHead() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heads) == 0 {
		return ""
	}
	return s.heads[len(s.heads)-1]
}

const okKeep = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"

// okIfSecret answers OK to password "secret", a failure otherwise.
func okIfSecret(req string) (string, bool) {
	if strings.Contains(req, "Auth-Pass: secret\r\n") {
		return okKeep, false
	}
	return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: Invalid login or password\r\n\r\n", false
}

func targetConf(addr string) confparse.AuthHTTPConf {
	return confparse.AuthHTTPConf{URL: addr + "/auth", Network: "tcp", Addr: addr, Peer: addr, Host: "127.0.0.1", URI: "/auth", Timeout: 5 * time.Second}
}

func loginReq(user, pass string) *Request {
	return &Request{Method: MethodPlain, User: []byte(user), Pass: []byte(pass), Protocol: "imap", LoginAttempt: 1, ClientIP: "192.0.2.7"}
}

// logRec collects the lines Do logs through the context.
type logRec struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRec) ctx() context.Context {
	return WithLog(context.Background(), func(l errlog.Level, format string, args ...any) {
		r.mu.Lock()
		r.lines = append(r.lines, "["+l.String()+"] "+fmt.Sprintf(format, args...))
		r.mu.Unlock()
	})
}

func (r *logRec) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func TestKeepalive(t *testing.T) {
	for _, tt := range []struct {
		name      string
		keepalive int
		answer    string
		closeIt   bool
		wantConns int64
	}{
		{"off: a connection per request, HTTP/1.0", 0, okKeep, false, 5},
		{"on: one connection", 2, okKeep, false, 1},
		{"on, chunked body", 2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, 1},
		{"on, body with length", 2, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\nhello", false, 1},
		{"on, server answers HTTP/1.0", 2, strings.Replace(okKeep, "HTTP/1.1", "HTTP/1.0", 1), false, 5},
		{"on, Connection: close", 2, strings.Replace(okKeep, "Content-Length: 0\r\n", "Connection: close\r\n", 1), false, 5},
		{"on, no length: close-delimited", 2, strings.Replace(okKeep, "Content-Length: 0\r\n", "", 1), false, 5},
		{"on, server closes after each answer: retried", 2, okKeep, true, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startHTTPAuth(t, nil, func(string) (string, bool) { return tt.answer, tt.closeIt })
			conf := targetConf(srv.addr())
			conf.Keepalive, conf.KeepaliveTimeout = tt.keepalive, time.Minute
			c := NewClient(&conf)
			for i := 0; i < 5; i++ {
				res, err := c.Do(context.Background(), loginReq("alice", "secret"))
				if err != nil || res.Kind != OK || res.ServerText != "127.0.0.1:143" {
					t.Fatalf("login %d: %+v %v", i, res, err)
				}
				if tt.closeIt {
					time.Sleep(20 * time.Millisecond) // let the close arrive
				}
			}
			if got := srv.conns.Load(); got != tt.wantConns {
				t.Errorf("%d connections for 5 logins, want %d", got, tt.wantConns)
			}
			// The request is nginx's, only the version differs.
			want := string(c.Request(loginReq("alice", "secret")))
			if tt.keepalive == 0 && !strings.HasPrefix(want, "GET /auth HTTP/1.0\r\n") {
				t.Errorf("request line %q", want)
			}
			if tt.keepalive > 0 {
				plain := NewClient(&confparse.AuthHTTPConf{Network: "tcp", Addr: srv.addr(), Host: "127.0.0.1", URI: "/auth"})
				nginx := string(plain.Request(loginReq("alice", "secret")))
				if want != strings.Replace(nginx, "GET /auth HTTP/1.0\r\n", "GET /auth HTTP/1.1\r\n", 1) || want == nginx {
					t.Errorf("keepalive request:\n%q\nnginx's:\n%q", want, nginx)
				}
			}
			if srv.lastHead() != want {
				t.Errorf("server saw %q, want %q", srv.lastHead(), want)
			}
		})
	}
}

// A pooled connection the server closed while idle is replaced without the
// caller seeing an error; the pool stays bounded.
func TestKeepaliveIdleClosedAndBounded(t *testing.T) {
	srv := startHTTPAuth(t, nil, func(string) (string, bool) { return okKeep, false })
	conf := targetConf(srv.addr())
	conf.Keepalive, conf.KeepaliveTimeout = 2, 50*time.Millisecond
	c := NewClient(&conf)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Do(context.Background(), loginReq("a", "b")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := len(c.targets[0].pool.idle); n > 2 {
		t.Errorf("%d idle connections, max 2", n)
	}
	// keepalive timeout passes: the idle ones are not reused
	time.Sleep(80 * time.Millisecond)
	before := srv.conns.Load()
	if _, err := c.Do(context.Background(), loginReq("a", "b")); err != nil {
		t.Fatal(err)
	}
	if srv.conns.Load() != before+1 {
		t.Errorf("expired idle connection reused")
	}
}

func TestFailover(t *testing.T) {
	// a port with nothing listening
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()

	for _, tt := range []struct {
		name       string
		primary    func(string) (string, bool) // nil: connection refused
		wantLog    string
		minElapsed time.Duration
		maxElapsed time.Duration
	}{
		{"refused", nil, `[error] recv() failed (111: Connection refused)
[warn] auth http server ` + dead + ` temporarily disabled, trying auth http server BACKUP`, 0, time.Second},
		{"5xx", func(string) (string, bool) { return "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", false },
			`[error] auth http server PRIMARY sent status 503
[warn] auth http server PRIMARY temporarily disabled, trying auth http server BACKUP`, 0, time.Second},
		// timeout 2s, two servers: the primary gets half
		{"timeout", func(string) (string, bool) { return "#hang", false },
			`[error] auth http server PRIMARY timed out (110: Connection timed out)
[warn] auth http server PRIMARY temporarily disabled, trying auth http server BACKUP`, 900 * time.Millisecond, 1500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			backup := startHTTPAuth(t, nil, okIfSecret)
			primaryAddr := dead
			var primary *httpAuth
			if tt.primary != nil {
				primary = startHTTPAuth(t, nil, tt.primary)
				primaryAddr = primary.addr()
			}
			conf := targetConf(primaryAddr)
			conf.Timeout = 2 * time.Second
			conf.FailTimeout = 300 * time.Millisecond
			conf.Backups = []confparse.AuthHTTPTarget{{Network: "tcp", Addr: backup.addr(), Peer: backup.addr(), Host: "127.0.0.1", URI: "/auth"}}
			c := NewClient(&conf)
			var rec logRec
			start := time.Now()
			res, err := c.Do(rec.ctx(), loginReq("alice", "secret"))
			el := time.Since(start)
			if err != nil || res.Kind != OK {
				t.Fatalf("%+v %v", res, err)
			}
			if el < tt.minElapsed || el > tt.maxElapsed {
				t.Errorf("took %v, want %v..%v", el, tt.minElapsed, tt.maxElapsed)
			}
			want := strings.NewReplacer("PRIMARY", primaryAddr, "BACKUP", backup.addr()).Replace(tt.wantLog)
			if rec.all() != want {
				t.Errorf("log:\n%s\nwant:\n%s", rec.all(), want)
			}
			// marked down: the next login goes straight to the backup
			var rec2 logRec
			start = time.Now()
			if res, err := c.Do(rec2.ctx(), loginReq("alice", "secret")); err != nil || res.Kind != OK {
				t.Fatalf("%+v %v", res, err)
			}
			if time.Since(start) > 200*time.Millisecond || rec2.all() != "" {
				t.Errorf("down primary asked again: %v, log %q", time.Since(start), rec2.all())
			}
			if backup.reqs.Load() != 2 {
				t.Errorf("backup saw %d requests", backup.reqs.Load())
			}
			// the mark expires: the primary is asked first again
			time.Sleep(350 * time.Millisecond)
			if primary != nil {
				primary.setAnswer(okIfSecret)
				before := primary.reqs.Load()
				if res, err := c.Do(context.Background(), loginReq("alice", "secret")); err != nil || res.Kind != OK {
					t.Fatalf("%+v %v", res, err)
				}
				if primary.reqs.Load() != before+1 || backup.reqs.Load() != 2 {
					t.Errorf("after fail_timeout: primary %d, backup %d requests", primary.reqs.Load()-before, backup.reqs.Load())
				}
			}
		})
	}
}

// An ordinary failure answer is no reason to fail over, and without
// backups nothing is logged by the client.
func TestNoFailoverOnAnswer(t *testing.T) {
	primary := startHTTPAuth(t, nil, okIfSecret)
	backup := startHTTPAuth(t, nil, okIfSecret)
	conf := targetConf(primary.addr())
	conf.Backups = []confparse.AuthHTTPTarget{{Network: "tcp", Addr: backup.addr(), Peer: backup.addr(), Host: "127.0.0.1", URI: "/auth"}}
	c := NewClient(&conf)
	res, err := c.Do(context.Background(), loginReq("alice", "wrong"))
	if err != nil || res.Kind != Fail || backup.reqs.Load() != 0 {
		t.Fatalf("%+v %v, backup %d", res, err, backup.reqs.Load())
	}
	// all servers down: the last error is returned as with one server
	primary.ln.Close()
	backup.ln.Close()
	_, err = c.Do(context.Background(), loginReq("alice", "secret"))
	if ae, ok := err.(*Error); !ok || ae.Log != "recv() failed (111: Connection refused)" {
		t.Errorf("all down: %v", err)
	}
}

func cacheConf(addr, cache string) confparse.AuthHTTPConf {
	c := targetConf(addr)
	c.Cache, c.CacheSize, c.CacheValid, c.CacheValidFail = cache, 1<<20, 300*time.Millisecond, 0
	return c
}

func TestLoginCache(t *testing.T) {
	srv := startHTTPAuth(t, nil, okIfSecret)
	c := NewClient(ptr(cacheConf(srv.addr(), "memory")))
	c.cache.st = newMemStore(1 << 20) // not shared with other tests
	do := func(r *Request) *Result {
		t.Helper()
		res, err := c.Do(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	steps := []struct {
		name     string
		req      *Request
		wantKind Kind
		wantReqs int64 // auth server requests so far
	}{
		{"first login asks", loginReq("alice", "secret"), OK, 1},
		{"second is a hit", loginReq("alice", "secret"), OK, 1},
		{"wrong password asks", loginReq("alice", "wrong"), Fail, 2},
		{"failures are not cached by default", loginReq("alice", "wrong"), Fail, 3},
		{"other protocol asks", &Request{Method: MethodPlain, User: []byte("alice"), Pass: []byte("secret"), Protocol: "pop3", LoginAttempt: 1}, OK, 4},
		{"apop is never cached", &Request{Method: MethodAPOP, User: []byte("alice"), Pass: []byte("d1"), Salt: []byte("<1@x>"), Protocol: "pop3"}, Fail, 5},
		{"apop again", &Request{Method: MethodAPOP, User: []byte("alice"), Pass: []byte("d1"), Salt: []byte("<1@x>"), Protocol: "pop3"}, Fail, 6},
		{"hit after a failure for another password", loginReq("alice", "secret"), OK, 6},
	}
	for _, st := range steps {
		res := do(st.req)
		if res.Kind != st.wantKind || srv.reqs.Load() != st.wantReqs {
			t.Fatalf("%s: kind %v, %d requests; want %v, %d", st.name, res.Kind, srv.reqs.Load(), st.wantKind, st.wantReqs)
		}
		if res.Kind == OK && (res.ServerText != "127.0.0.1:143" || res.Server.String() != "127.0.0.1:143") {
			t.Fatalf("%s: server %q %v", st.name, res.ServerText, res.Server)
		}
	}
	// nothing stored holds the password or the login
	ms := c.cache.st.(*memStore)
	for el := ms.ll.Front(); el != nil; el = el.Next() {
		e := el.Value.(*memEntry)
		if strings.Contains(e.key+string(e.val), "secret") || strings.Contains(e.key+string(e.val), "alice") {
			t.Errorf("entry holds a credential: %q %q", e.key, e.val)
		}
	}
	// the TTL passes: asked again
	time.Sleep(350 * time.Millisecond)
	do(loginReq("alice", "secret"))
	if srv.reqs.Load() != 7 {
		t.Errorf("expired entry used: %d requests", srv.reqs.Load())
	}
}

func ptr[T any](v T) *T { return &v }

func TestCacheWhatIsStored(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer string
		failOK time.Duration
		stored bool
	}{
		{"ok", okKeep, 0, true},
		{"ok with user override", strings.Replace(okKeep, "\r\n\r\n", "\r\nAuth-User: bob\r\n\r\n", 1), 0, true},
		{"ok with Auth-SSL (mailgate-only upstream TLS)", strings.Replace(okKeep, "\r\n\r\n", "\r\nAuth-SSL: starttls\r\n\r\n", 1), 0, true},
		{"ok with pass override: a password, never stored", strings.Replace(okKeep, "\r\n\r\n", "\r\nAuth-Pass: master\r\n\r\n", 1), 0, false},
		{"wait", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n", 0, false},
		{"failure, failures cached", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: Bad\r\n\r\n", time.Minute, true},
		{"failure, failures not cached", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: Bad\r\n\r\n", 0, false},
		{"failure with Auth-Wait: temporary", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: Bad\r\nAuth-Wait: 3\r\n\r\n", time.Minute, false},
		{"smtp 4xx failure: temporary", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: Later\r\nAuth-Error-Code: 451 4.3.0\r\n\r\n", time.Minute, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startHTTPAuth(t, nil, func(string) (string, bool) { return tt.answer, false })
			conf := cacheConf(srv.addr(), "memory")
			conf.CacheValid, conf.CacheValidFail = time.Minute, tt.failOK
			c := NewClient(&conf)
			c.cache.st = newMemStore(1 << 20)
			var first *Result
			for i := 0; i < 2; i++ {
				req := loginReq("alice", "secret")
				req.Protocol = "smtp"
				res, err := c.Do(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = res
					if strings.Contains(tt.answer, "Auth-SSL") && res.UpstreamSSL != "starttls" {
						t.Errorf("Auth-SSL read as %q", res.UpstreamSSL)
					}
				} else if res.Kind != first.Kind || res.Message != first.Message || res.ErrorCode != first.ErrorCode ||
					string(res.User) != string(first.User) || res.ServerText != first.ServerText || res.UpstreamSSL != first.UpstreamSSL {
					t.Errorf("second answer %+v, first %+v", res, first)
				}
			}
			want := int64(2)
			if tt.stored {
				want = 1
			}
			if srv.reqs.Load() != want {
				t.Errorf("%d requests, want %d", srv.reqs.Load(), want)
			}
		})
	}
}

func TestMemStoreLRU(t *testing.T) {
	m := newMemStore(3 * (entryOverhead + 2 + 1))
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	for _, k := range []string{"k1", "k2", "k3"} {
		m.set(ctx, k, []byte("v"), time.Minute) //nolint:errcheck
	}
	m.get(ctx, "k1")                           //nolint:errcheck // k1 is now the newest
	m.set(ctx, "k4", []byte("v"), time.Minute) //nolint:errcheck
	for k, want := range map[string]bool{"k1": true, "k2": false, "k3": true, "k4": true} {
		v, _ := m.get(ctx, k)
		if (v != nil) != want {
			t.Errorf("%s present %v, want %v", k, v != nil, want)
		}
	}
	if m.len() != 3 {
		t.Errorf("%d entries", m.len())
	}
	now = now.Add(time.Minute)
	if v, _ := m.get(ctx, "k4"); v != nil {
		t.Error("entry outlived its TTL")
	}
}

func TestThrottle(t *testing.T) {
	srv := startHTTPAuth(t, nil, okIfSecret)
	conf := targetConf(srv.addr())
	conf.ThrottleIP, conf.ThrottleLogin, conf.ThrottleWait = 3, 2, 2*time.Second
	c := NewClient(&conf)
	c.throttle.st = newMemStore(1 << 20)
	do := func(user, pass, ip string) *Result {
		t.Helper()
		r := loginReq(user, pass)
		r.ClientIP = ip
		res, err := c.Do(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	steps := []struct {
		user, pass, ip string
		want           string // "ok", "fail", "throttled"
		reqs           int64
	}{
		{"alice", "x", "192.0.2.1", "fail", 1},
		{"alice", "x", "192.0.2.2", "fail", 2},
		{"alice", "secret", "192.0.2.3", "throttled", 2}, // login limit 2 reached
		{"bob", "x", "192.0.2.1", "fail", 3},
		{"carol", "x", "192.0.2.1", "fail", 4},
		{"dave", "secret", "192.0.2.1", "throttled", 4}, // ip limit 3 reached
		{"dave", "secret", "192.0.2.9", "ok", 5},
	}
	for i, st := range steps {
		res := do(st.user, st.pass, st.ip)
		got := "ok"
		switch {
		case res.Kind == Fail && res.Message == ThrottleMessage:
			got = "throttled"
			if !res.HasWait || res.WaitSeconds != 2 {
				t.Errorf("step %d: wait %v %d", i, res.HasWait, res.WaitSeconds)
			}
		case res.Kind == Fail:
			got = "fail"
		}
		if got != st.want || srv.reqs.Load() != st.reqs {
			t.Fatalf("step %d: %s with %d requests, want %s with %d", i, got, srv.reqs.Load(), st.want, st.reqs)
		}
	}
}

// ---- Redis ----

type redisProc struct {
	addr string
	cmd  *exec.Cmd
	dir  string
	port int
}

// startRedis runs a private redis-server on a free loopback port, without
// persistence, in its own directory.
func startRedis(t *testing.T) *redisProc {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &redisProc{addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir(), port: port}

	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *redisProc) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
}

func (r *redisProc) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill() //nolint:errcheck
		r.cmd.Wait()         //nolint:errcheck
		r.cmd = nil
	}
}

// dump returns every key and value in Redis (via redis-cli-free RESP).
func (r *redisProc) dump(t *testing.T) string {
	t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "KEYS *\r\n")
	var keys []string
	line, _ := br.ReadString('\n')
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	for i := 0; i < n; i++ {
		br.ReadString('\n') //nolint:errcheck // $len
		k, _ := br.ReadString('\n')
		keys = append(keys, strings.TrimSpace(k))
	}
	var out bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(c, "DUMP %s\r\n", k)
		l, _ := br.ReadString('\n')
		ln, _ := strconv.Atoi(strings.TrimSpace(l[1:]))
		v := make([]byte, ln+2)
		if ln >= 0 {
			if _, err := io.ReadFull(br, v); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&out, "%s %q\n", k, v)
	}
	return out.String()
}

func TestLoginCacheRedis(t *testing.T) {
	rd := startRedis(t)
	srv := startHTTPAuth(t, nil, okIfSecret)
	mk := func() *Client {
		conf := cacheConf(srv.addr(), "redis")
		conf.CacheAddr, conf.CacheValid, conf.CacheSecret = rd.addr, 2*time.Second, "shared-secret"
		c := NewClient(&conf)
		c.cache.st = newRedisStore(rd.addr, 0) // a fresh client: as another instance
		return c
	}
	a, b := mk(), mk()
	var rec logRec
	login := func(c *Client, pass string, want Kind, wantReqs int64) {
		t.Helper()
		res, err := c.Do(rec.ctx(), loginReq("alice", pass))
		if err != nil || res.Kind != want || srv.reqs.Load() != wantReqs {
			t.Fatalf("pass %q: %+v %v, %d requests (want %v, %d)", pass, res, err, srv.reqs.Load(), want, wantReqs)
		}
	}
	login(a, "secret", OK, 1)
	login(b, "secret", OK, 1) // the other instance hits a's entry
	login(b, "wrong", Fail, 2)
	login(a, "secret", OK, 2)
	d := rd.dump(t)
	if !strings.Contains(d, "mailgate:auth:v1:") || strings.Contains(d, "secret") || strings.Contains(d, "alice") {
		t.Errorf("redis holds:\n%s", d)
	}
	// Redis goes away: logins go to the auth server, logged once
	rd.stop()
	login(a, "secret", OK, 3)
	login(a, "secret", OK, 4)
	if l := rec.all(); strings.Count(l, "auth_http_cache redis://"+rd.addr+" failed") != 1 || strings.Contains(l, "secret") {
		t.Errorf("log:\n%s", l)
	}
	// back (empty): used again after the backoff
	rd.start(t)
	time.Sleep(redisBackoff + 100*time.Millisecond)
	login(a, "secret", OK, 5)
	login(b, "secret", OK, 5)
	if !strings.Contains(rec.all(), "works again") {
		t.Errorf("no recovery line:\n%s", rec.all())
	}
}

// ---- https ----

func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)  //nolint:errcheck
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600) //nolint:errcheck
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	srvCrt, _, srvCert := selfSigned(t, dir, "auth.example")
	cliCrt, cliKey, _ := selfSigned(t, dir, "mailgate.example")
	cliPool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(cliCrt)
	cliPool.AppendCertsFromPEM(pemBytes)
	srv := startHTTPAuth(t, &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: cliPool}, okIfSecret)
	for _, tt := range []struct {
		name    string
		ssl     confparse.AuthHTTPSSL
		wantErr string
	}{
		{"trusted, name", confparse.AuthHTTPSSL{Enabled: true, Verify: true, TrustedCertificate: srvCrt, Name: "auth.example"}, ""},
		{"client certificate", confparse.AuthHTTPSSL{Enabled: true, Verify: true, TrustedCertificate: srvCrt, Name: "auth.example", Certificate: cliCrt, Key: cliKey}, ""},
		{"wrong name", confparse.AuthHTTPSSL{Enabled: true, Verify: true, TrustedCertificate: srvCrt, Name: "other.example"}, "SSL handshake failed"},
		{"untrusted", confparse.AuthHTTPSSL{Enabled: true, Verify: true}, "SSL handshake failed"},
		{"verify off", confparse.AuthHTTPSSL{Enabled: true, Verify: false}, ""},
		{"missing file", confparse.AuthHTTPSSL{Enabled: true, Verify: true, TrustedCertificate: filepath.Join(dir, "nope")}, "cannot load auth_http_ssl_trusted_certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conf := targetConf(srv.addr())
			conf.TLS, conf.SSL = true, tt.ssl
			c := NewClient(&conf)
			res, err := c.Do(context.Background(), loginReq("alice", "secret"))
			if tt.wantErr == "" {
				if err != nil || res.Kind != OK {
					t.Fatalf("%+v %v", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}
