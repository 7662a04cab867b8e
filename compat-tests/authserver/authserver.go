// Package authserver is a scriptable nginx auth_http server for tests.
//
// It records every raw request in arrival order and answers from a Script:
// a user table (user -> password -> upstream) with real APOP and CRAM-MD5
// verification, plus injectable behaviours keyed by user name or set for
// every request (raw bytes, delays, early close, oversize or garbage
// answers, WAIT, bad Auth-Server values, Auth-Error-Code, Auth-User and
// Auth-Pass overrides). See README.md.
package authserver

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultFailMessage is the Auth-Status sent for a wrong password.
const DefaultFailMessage = "Invalid login or password"

// maxRequest bounds one recorded request (nginx's are far smaller).
const maxRequest = 64 << 10

// User is one entry of the user table.
type User struct {
	Password string
	// Upstream is the backend "ip:port" sent as Auth-Server/Auth-Port.
	Upstream string
	// Behavior, when non-nil, replaces the normal answer for this user
	// (checked before the password).
	Behavior *Behavior
	// Token is the user's OAuth bearer token (mailgate's oauthbearer and
	// xoauth2 methods): a request with it in Auth-Pass is answered OK
	// with Auth-Pass: Password, unless TokenNoPass, which leaves Auth-Pass
	// out (the proxy then logs in upstream with the token).
	Token       string
	TokenNoPass bool
}

// Behavior is an injected answer. Fields combine: Delay happens first, then
// Close, Raw, Oversize or Garbage if set (in that order), else a response
// built from the remaining fields on top of the user-table answer.
type Behavior struct {
	Delay    time.Duration // sleep before answering (or closing)
	Close    bool          // close without answering
	Hang     bool          // never answer; keep the connection open until Close
	Raw      []byte        // written verbatim, then close
	Oversize bool          // a header block longer than 1024 bytes
	Garbage  bool          // "garbage line\r\n\r\n"

	// Fields below edit the normal answer. Empty strings leave the header
	// as the user table would send it.
	Status       string // Auth-Status value, e.g. "WAIT" or a failure text
	Wait         string // Auth-Wait value ("" = none)
	Server       string // Auth-Server value, e.g. "localhost"
	Port         string // Auth-Port value
	NoServer     bool   // leave out Auth-Server
	NoPort       bool   // leave out Auth-Port
	ErrorCode    string // Auth-Error-Code value
	User         string // Auth-User override sent in the answer
	Pass         string // Auth-Pass override sent in the answer
	NoPass       bool   // never send Auth-Pass, even for apop/cram-md5/external
	ExtraHeaders [][2]string
	// StatusLine replaces "HTTP/1.0 200 OK"; "-" sends no status line.
	StatusLine string
}

// Script drives the answers.
type Script struct {
	// Users maps the login (Auth-User, %-unescaped) to its entry.
	Users map[string]User
	// FailMessage is the Auth-Status for a wrong password or unknown user
	// (default DefaultFailMessage); FailWait, if non-empty, is sent as
	// Auth-Wait with it; FailErrorCode as Auth-Error-Code.
	FailMessage   string
	FailWait      string
	FailErrorCode string
	// NoneUpstream is the backend for Auth-Method: none (SMTP without
	// auth). Empty: such requests fail like a wrong password.
	NoneUpstream string
	// Handler, if set, is asked first for every request (return nil to
	// fall back to the user table). It may be called concurrently.
	Handler func(r *Request) *Behavior
	// KeepAlive answers an HTTP/1.1 request with "HTTP/1.1 200 OK" and
	// "Content-Length: 0" and reads the next request on the same
	// connection (for mailgate's auth_http_keepalive). HTTP/1.0 requests
	// (nginx's) are answered and closed as without it.
	KeepAlive bool
}

// Request is one recorded request.
type Request struct {
	Raw     []byte
	Line    string      // "GET /auth HTTP/1.0"
	Headers [][2]string // in order, values as sent (escaped)
}

// Get returns the first value of header name (case-insensitive) as sent.
func (r *Request) Get(name string) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// Has reports whether header name is present.
func (r *Request) Has(name string) bool {
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			return true
		}
	}
	return false
}

// User is Auth-User with nginx's %XX escaping undone.
func (r *Request) User() string { return Unescape(r.Get("Auth-User")) }

// Pass is Auth-Pass with nginx's %XX escaping undone.
func (r *Request) Pass() string { return Unescape(r.Get("Auth-Pass")) }

// Server is a running auth server.
type Server struct {
	ln     net.Listener
	script Script

	mu       sync.Mutex
	reqs     []*Request
	override *Behavior
	conns    map[net.Conn]struct{}
	accepted int
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
}

// Start listens on addr ("127.0.0.1:0", "127.0.0.1:22001" or
// "unix:/path") and serves script until Close.
func Start(addr string, script Script) (*Server, error) {
	network := "tcp"
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", p
		_ = os.Remove(p)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, script: script, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the listening address ("127.0.0.1:port" or a socket path).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the value for nginx's auth_http directive ("127.0.0.1:port/auth"
// or "unix:/path:/auth").
func (s *Server) URL() string {
	if s.ln.Addr().Network() == "unix" {
		return "unix:" + s.Addr() + ":/auth"
	}
	return s.Addr() + "/auth"
}

// Requests returns copies of all raw requests received so far, in order.
func (s *Server) Requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = bytes.Clone(r.Raw)
	}
	return out
}

// Parsed returns the parsed requests received so far, in order.
func (s *Server) Parsed() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.reqs...)
}

// Reset forgets the recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	s.reqs = nil
	s.mu.Unlock()
}

// SetOverride makes b the answer to every following request (nil restores
// the script).
func (s *Server) SetOverride(b *Behavior) {
	s.mu.Lock()
	s.override = b
	s.mu.Unlock()
}

// Close stops the server and closes open connections (including Hang ones).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.accepted++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// ReadRequest reads one request head (through the blank line).
func ReadRequest(r io.Reader) (*Request, error) {
	br := bufio.NewReader(io.LimitReader(r, maxRequest))
	var raw []byte
	req := &Request{}
	first := true
	for {
		line, err := br.ReadBytes('\n')
		raw = append(raw, line...)
		if err != nil {
			if len(raw) > 0 {
				req.Raw = raw
				return req, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		text := strings.TrimRight(string(line), "\r\n")
		if first {
			req.Line = text
			first = false
			continue
		}
		if text == "" {
			req.Raw = raw
			return req, nil
		}
		name, value, _ := strings.Cut(text, ":")
		req.Headers = append(req.Headers, [2]string{name, strings.TrimPrefix(value, " ")})
	}
}

// Conns is the number of connections accepted so far.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func (s *Server) handle(c net.Conn) {
	for s.handleOne(c) {
	}
}

// handleOne answers one request; true: read another on c (KeepAlive).
func (s *Server) handleOne(c net.Conn) bool {
	req, err := ReadRequest(c)
	if req == nil {
		return false
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	ov := s.override
	s.mu.Unlock()
	if err != nil {
		return false
	}
	b := ov
	if b == nil && s.script.Handler != nil {
		b = s.script.Handler(req)
	}
	if b == nil {
		if u, ok := s.script.Users[req.User()]; ok && u.Behavior != nil {
			b = u.Behavior
		}
	}
	if b == nil {
		b = &Behavior{}
	}
	if b.Delay > 0 {
		select {
		case <-time.After(b.Delay):
		case <-s.done:
			return false
		}
	}
	switch {
	case b.Hang:
		<-s.done
		return false
	case b.Close:
		return false
	case b.Raw != nil:
		c.Write(b.Raw)
		return false
	case b.Oversize:
		c.Write(OversizeResponse())
		return false
	case b.Garbage:
		io.WriteString(c, "garbage line\r\n\r\n")
		return false
	}
	ans := s.Answer(req, b)
	if s.script.KeepAlive && strings.HasSuffix(req.Line, " HTTP/1.1") && b.StatusLine == "" {
		ans = append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"), bytes.TrimPrefix(ans, []byte("HTTP/1.0 200 OK\r\n"))...)
		_, err := c.Write(ans)
		return err == nil
	}
	c.Write(ans)
	return false
}

// Sequence returns a Script.Handler that answers the i-th request (from 0,
// across all users) with bs[i], and with the script once bs runs out; a
// nil entry also means the script. Example: WAIT once, then the normal
// answer: Sequence(&Behavior{Status: "WAIT", Wait: "1"}).
func Sequence(bs ...*Behavior) func(*Request) *Behavior {
	var mu sync.Mutex
	i := 0
	return func(*Request) *Behavior {
		mu.Lock()
		defer mu.Unlock()
		if i >= len(bs) {
			return nil
		}
		i++
		return bs[i-1]
	}
}

// OversizeResponse is a well-formed OK answer whose header block exceeds
// nginx's 1024-byte buffer.
func OversizeResponse() []byte {
	return []byte("HTTP/1.0 200 OK\r\nX-Pad: " + strings.Repeat("x", 1100) +
		"\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 1\r\n\r\n")
}

// Answer builds the response for req from the user table, edited by b.
func (s *Server) Answer(req *Request, b *Behavior) []byte {
	if b == nil {
		b = &Behavior{}
	}
	var h [][2]string
	add := func(n, v string) { h = append(h, [2]string{n, v}) }

	method := req.Get("Auth-Method")
	user, pass, salt := req.User(), req.Pass(), req.Get("Auth-Salt")
	ok, upstream, sendPass := false, "", ""
	if method == "none" {
		ok, upstream = s.script.NoneUpstream != "", s.script.NoneUpstream
	} else if u, found := s.script.Users[user]; found {
		upstream = u.Upstream
		switch method {
		case "apop":
			ok = pass == APOPDigest(salt, u.Password)
			sendPass = u.Password
		case "cram-md5":
			ok = pass == CRAMMD5Digest(salt, u.Password)
			sendPass = u.Password
		case "external":
			ok = true
			sendPass = u.Password
		case "oauthbearer", "xoauth2":
			ok = u.Token != "" && pass == u.Token
			if !u.TokenNoPass {
				sendPass = u.Password
			}
		default:
			ok = pass == u.Password
		}
	}

	status := "OK"
	if !ok {
		status = s.script.FailMessage
		if status == "" {
			status = DefaultFailMessage
		}
	}
	if b.Status != "" {
		status = b.Status
	}
	add("Auth-Status", status)
	if status == "OK" {
		host, port, err := net.SplitHostPort(upstream)
		if err != nil {
			host, port = upstream, ""
		}
		if b.Server != "" {
			host = b.Server
		}
		if b.Port != "" {
			port = b.Port
		}
		if !b.NoServer {
			add("Auth-Server", host)
		}
		if !b.NoPort {
			add("Auth-Port", port)
		}
		if b.Pass == "" && sendPass != "" && !b.NoPass {
			add("Auth-Pass", sendPass)
		}
	} else if status != "WAIT" {
		if s.script.FailWait != "" && b.Wait == "" {
			add("Auth-Wait", s.script.FailWait)
		}
		if s.script.FailErrorCode != "" && b.ErrorCode == "" {
			add("Auth-Error-Code", s.script.FailErrorCode)
		}
	}
	if b.Wait != "" {
		add("Auth-Wait", b.Wait)
	}
	if b.ErrorCode != "" {
		add("Auth-Error-Code", b.ErrorCode)
	}
	if b.User != "" {
		add("Auth-User", b.User)
	}
	if b.Pass != "" && !b.NoPass {
		add("Auth-Pass", b.Pass)
	}
	h = append(h, b.ExtraHeaders...)

	var out bytes.Buffer
	switch b.StatusLine {
	case "":
		out.WriteString("HTTP/1.0 200 OK\r\n")
	case "-":
	default:
		out.WriteString(b.StatusLine + "\r\n")
	}
	for _, kv := range h {
		fmt.Fprintf(&out, "%s: %s\r\n", kv[0], kv[1])
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// APOPDigest is hex(md5(salt + password)), what an APOP client sends.
func APOPDigest(salt, password string) string {
	sum := md5.Sum([]byte(salt + password))
	return hex.EncodeToString(sum[:])
}

// CRAMMD5Digest is hex(hmac-md5(key=password, salt)), the digest part of a
// CRAM-MD5 answer.
func CRAMMD5Digest(salt, password string) string {
	m := hmac.New(md5.New, []byte(password))
	m.Write([]byte(salt))
	return hex.EncodeToString(m.Sum(nil))
}

// Unescape undoes nginx's %XX escaping of Auth-User/Auth-Pass. Invalid
// sequences are kept as they are.
func Unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
