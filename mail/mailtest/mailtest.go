// Package mailtest runs the real session engine (package mail) with a real
// protocol module over in-process connections, against a scripted
// auth_http server and a scripted upstream. Protocol tests, engine tests
// and the session fuzzers all use it, so that none of them needs a copy of
// the engine: what they see is what a client of mailgate sees.
package mailtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
)

// Config loads an nginx.conf whose mail{} block has body, with nginx's
// defaults and main→server merging, as mailgate would load it. Use
// "{{auth}}" in body for the scripted auth server's URL (see AuthServer).
func Config(t testing.TB, body string) *confparse.Config {
	t.Helper()
	dir := t.TempDir()
	conf := "error_log stderr;\nevents {}\nmail {\n" + body + "\n}\n"
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := confparse.Load(confparse.Options{Prefix: dir + "/", ConfFile: path, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, conf)
	}
	return cfg
}

// Env is one mail.Server built from a configuration, whose sessions run
// over connection pairs made by Dial.
type Env struct {
	T      testing.TB
	Config *confparse.Config
	Server *mail.Server
	Log    *Log

	wg sync.WaitGroup
}

// Options for Start. Zero fields get working defaults.
type Options struct {
	// Protocols: the real modules, by name (required).
	Protocols map[string]mail.Protocol
	// NewAuth fakes the auth_http client (nil: the real client, which
	// talks to whatever auth_http names, e.g. an AuthServer).
	NewAuth func(*confparse.AuthHTTPConf) mail.AuthClient
	// DialUpstream fakes the upstream (nil: the real dialer).
	DialUpstream mail.DialFunc
	// Sleep replaces Auth-Wait pauses (nil: instant).
	Sleep func(ctx context.Context, d time.Duration) bool
	// LogLevel is the lowest level written to Log (zero: info).
	LogLevel errlog.Level
	// Observer and Registry go to mail.Options (metrics hooks and the
	// live-session registry; nil: none, and the server's own).
	Observer mail.Observer
	Registry *mail.Registry
	// AccessLog goes to mail.Options (the access log; nil: none).
	AccessLog mail.SessionLogger
	// ParkAfter goes to mail.Options: above 0, sessions on TCP pairs are
	// parked once their client has been quiet that long (zero: never).
	ParkAfter time.Duration
}

// Start builds the server. Nothing listens: Dial makes each session.
func Start(t testing.TB, cfg *confparse.Config, o Options) *Env {
	t.Helper()
	lb := &Log{}
	lg := logrus.New()
	lg.SetOutput(lb)
	lg.SetLevel(logrus.TraceLevel)
	min := o.LogLevel
	if min == 0 {
		min = errlog.Info
	}
	lg.SetFormatter(&errlog.Formatter{Min: min})
	sleep := o.Sleep
	if sleep == nil {
		sleep = func(ctx context.Context, _ time.Duration) bool { return ctx.Err() == nil }
	}
	srv, err := mail.NewServer(cfg, mail.Options{
		Protocols:    o.Protocols,
		Log:          lg,
		NewAuth:      o.NewAuth,
		DialUpstream: o.DialUpstream,
		Sleep:        sleep,
		Debug:        min == errlog.Debug,
		Observer:     o.Observer,
		Registry:     o.Registry,
		AccessLog:    o.AccessLog,
		ParkAfter:    o.ParkAfter,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Config: cfg, Server: srv, Log: lb}
	t.Cleanup(func() {
		srv.Close()
		e.wg.Wait()
	})
	return e
}

// Pair kinds for Dial.
const (
	// TCP is a loopback TCP connection: everything the engine does on a
	// real socket, the recv() before each pipelined command included.
	TCP = "tcp"
	// Unix is a socketpair(2): like TCP, but the engine does not look
	// for a close before each pipelined command, so what the client
	// receives does not depend on timing.
	Unix = "unix"
)

// Dial starts a session on the server block of the listen entry numbered
// listen (0 for the first) over a new connection pair of the given kind,
// and returns the client's end. t is the running test (inside a fuzz
// target, its *testing.T).
func (e *Env) Dial(t testing.TB, kind string, listen int) *Client {
	t.Helper()
	client, server := Pair(t, kind)
	return e.Serve(client, server, listen)
}

// Serve starts a session over server, whose other end is client, on the
// server block of listen entry number listen.
func (e *Env) Serve(client, server net.Conn, listen int) *Client {
	l := e.Config.Mail.Listens[listen]
	c := &Client{Conn: client, done: make(chan struct{})}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(c.done)
		e.Server.ServeConn(server, l)
	}()
	return c
}

// Client is the client's end of a session.
type Client struct {
	net.Conn
	done chan struct{}
}

// Send writes s.
func (c *Client) Send(s string) error {
	_, err := io.WriteString(c.Conn, s)
	return err
}

// ReadAll reads until the server closes, or until d passes.
func (c *Client) ReadAll(d time.Duration) string {
	c.SetReadDeadline(time.Now().Add(d)) //nolint:errcheck
	b, _ := io.ReadAll(c.Conn)
	return string(b)
}

// ReadLine reads one line (up to LF), or what came before d passed.
func (c *Client) ReadLine(d time.Duration) string {
	c.SetReadDeadline(time.Now().Add(d)) //nolint:errcheck
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := c.Conn.Read(one)
		if n > 0 {
			b = append(b, one[0])
			if one[0] == '\n' {
				return string(b)
			}
		}
		if err != nil {
			return string(b)
		}
	}
}

// Done is closed when the engine has ended the session (relay included).
func (c *Client) Done() <-chan struct{} { return c.done }

// Pair returns both ends of a new connection of the given kind (TCP or
// Unix). The test's cleanup closes them.
func Pair(t testing.TB, kind string) (client, server net.Conn) {
	t.Helper()
	var err error
	switch kind {
	case TCP:
		client, server, err = tcpPair()
	case Unix:
		client, server, err = unixPair()
	default:
		t.Fatalf("mailtest: pair kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

var (
	lnOnce sync.Once
	ln     net.Listener
	lnErr  error
)

// tcpPair connects through one loopback listener shared by the process.
func tcpPair() (net.Conn, net.Conn, error) {
	lnOnce.Do(func() { ln, lnErr = net.Listen("tcp", "127.0.0.1:0") })
	if lnErr != nil {
		return nil, nil, lnErr
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	a := <-ch
	if a.err != nil {
		d.Close()
		return nil, nil, a.err
	}
	return d, a.c, nil
}

func unixPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			} else {
				syscall.Close(fds[1])
			}
			return nil, nil, err
		}
		conns[i] = c
	}
	return conns[0], conns[1], nil
}

// Log collects the error_log lines the server writes.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Reset forgets what was logged.
func (l *Log) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// String is everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Wait polls until the log holds every one of want, or d passes; it
// returns the first missing string ("" when all are there).
func (l *Log) Wait(d time.Duration, want ...string) string {
	deadline := time.Now().Add(d)
	for _, w := range want {
		for !strings.Contains(l.String(), w) {
			if time.Now().After(deadline) {
				return w
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return ""
}
