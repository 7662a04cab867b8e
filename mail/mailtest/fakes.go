package mailtest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
)

// AuthServer is a scripted auth_http server on a unix socket, for the real
// auth_http client. Each request gets the next of its responses (raw HTTP
// bytes, written as they are, then the connection is closed); once they
// are used up, every request gets Fallback.
type AuthServer struct {
	// Path is the socket; auth_http unix:PATH:/auth reaches it (URL).
	Path string

	ln       net.Listener
	mu       sync.Mutex
	script   [][]byte
	fallback []byte
	requests [][]byte
	wg       sync.WaitGroup
}

// StartAuthServer listens on a new socket in a temporary directory; the
// test's cleanup stops it.
func StartAuthServer(t testing.TB) *AuthServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	a := &AuthServer{Path: path, ln: ln,
		fallback: []byte("HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n\r\n")}
	a.wg.Add(1)
	go a.serve()
	t.Cleanup(func() { ln.Close(); a.wg.Wait() })
	return a
}

// URL is the auth_http value that reaches the server.
func (a *AuthServer) URL() string { return "unix:" + a.Path + ":/auth" }

// Script sets the responses for the next requests and forgets the
// requests recorded so far.
func (a *AuthServer) Script(fallback []byte, responses ...[]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.script = responses
	if fallback != nil {
		a.fallback = fallback
	}
	a.requests = nil
}

// Requests are the request heads received since the last Script.
func (a *AuthServer) Requests() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.requests...)
}

func (a *AuthServer) serve() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer c.Close()
			head := readHead(c)
			a.mu.Lock()
			a.requests = append(a.requests, head)
			resp := a.fallback
			if len(a.script) > 0 {
				resp, a.script = a.script[0], a.script[1:]
			}
			a.mu.Unlock()
			c.Write(resp) //nolint:errcheck
		}()
	}
}

// readHead reads an HTTP request head (through the empty line), or what
// came before the client stopped sending.
func readHead(c net.Conn) []byte {
	var b bytes.Buffer
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		b.Write(line)
		if err != nil || string(line) == "\r\n" || string(line) == "\n" {
			return b.Bytes()
		}
	}
}

// Upstream is a scripted upstream server for Options.DialUpstream. On each
// connection it sends Replies[0] at once (the greeting) and Replies[i]
// after reading its i-th line from mailgate; with the last reply it sends
// Tail (what a logged-in session would send), then it closes. What each
// connection received is kept.
type Upstream struct {
	Replies []string
	Tail    string

	mu    sync.Mutex
	got   []*bytes.Buffer
	dials []netip.AddrPort
	wg    sync.WaitGroup
}

// Dial implements mail.DialFunc over a socket pair.
func (u *Upstream) Dial(ctx context.Context, addr netip.AddrPort, _ int) (net.Conn, error) {
	mine, theirs, err := unixPair()
	if err != nil {
		return nil, err
	}
	buf := &bytes.Buffer{}
	u.mu.Lock()
	u.got = append(u.got, buf)
	u.dials = append(u.dials, addr)
	replies, tail := append([]string(nil), u.Replies...), u.Tail
	u.mu.Unlock()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer mine.Close()
		u.serve(mine, buf, replies, tail)
	}()
	return theirs, nil
}

func (u *Upstream) serve(c net.Conn, got *bytes.Buffer, replies []string, tail string) {
	r := bufio.NewReader(c)
	for i, reply := range replies {
		if i > 0 {
			line, err := r.ReadBytes('\n')
			u.mu.Lock()
			got.Write(line)
			u.mu.Unlock()
			if err != nil {
				return
			}
		}
		if i == len(replies)-1 {
			reply += tail
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// Received is what connection i received from mailgate.
func (u *Upstream) Received(i int) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if i >= len(u.got) {
		return ""
	}
	return u.got[i].String()
}

// Dials is how many connections were opened.
func (u *Upstream) Dials() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.dials)
}

// Wait waits for every connection's server goroutine to end.
func (u *Upstream) Wait() { u.wg.Wait() }
