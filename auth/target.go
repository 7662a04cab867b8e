package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"mailgate/confparse"
	"mailgate/mail/bufpool"
	"mailgate/mail/errlog"
)

// target is one auth server (auth_http or an auth_http_backup) with its
// idle connection pool (auth_http_keepalive) and its passive health mark.
type target struct {
	network, addr string
	peer          string
	host, uri     string
	tls           *tls.Config // non-nil for https://
	tlsErr        error       // the TLS settings could not be loaded

	pool *pool // nil: a new connection per request, as nginx

	mu        sync.Mutex
	downUntil time.Time
}

func newTarget(t confparse.AuthHTTPTarget, c *confparse.AuthHTTPConf, tlsConf *tls.Config, tlsErr error) *target {
	tg := &target{network: t.Network, addr: t.Addr, peer: t.Peer, host: t.Host, uri: t.URI}
	if tg.network == "" {
		tg.network = "tcp"
	}
	if tg.uri == "" {
		tg.uri = "/"
	}
	if tg.peer == "" {
		tg.peer = tg.addr
		if tg.network == "unix" {
			tg.peer = "unix:" + tg.addr
		}
	}
	if t.TLS {
		tg.tlsErr = tlsErr
		if tlsConf != nil {
			tg.tls = tlsConf.Clone()
			if tg.tls.ServerName == "" {
				tg.tls.ServerName = trimBrackets(t.Host)
			}
		}
	}
	if c.Keepalive > 0 {
		tg.pool = &pool{max: c.Keepalive, timeout: c.KeepaliveTimeout}
	}
	return tg
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

func (t *target) isDown(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return now.Before(t.downUntil)
}

func (t *target) markDown(until time.Time) {
	t.mu.Lock()
	t.downUntil = until
	t.mu.Unlock()
}

func (t *target) markUp() {
	t.mu.Lock()
	t.downUntil = time.Time{}
	t.mu.Unlock()
}

// tlsError marks a failed TLS handshake with an https:// auth server.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "SSL handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

func (t *target) dial(ctx context.Context, deadline time.Time) (net.Conn, error) {
	// KeepAlive -1: nginx sets no keepalive on its upstream sockets, and
	// Go's default would cost four setsockopt() calls per connection.
	d := net.Dialer{KeepAlive: -1}
	conn, err := d.DialContext(ctx, t.network, t.addr)
	if err != nil {
		return nil, err
	}
	if t.tls == nil {
		return conn, nil
	}
	conn.SetDeadline(deadline) //nolint:errcheck
	tc := tls.Client(conn, t.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if errlog.IsTimeout(err) || ctx.Err() != nil {
			return nil, err
		}
		return nil, &tlsError{err}
	}
	return tc, nil
}

// roundTrip sends msg on conn and reads the answer with nginx's rules. got
// is the number of answer bytes received (0: the connection failed before
// any, which on a reused connection means the server had closed it). keep
// tells whether conn may go back to the idle pool.
func (t *target) roundTrip(ctx context.Context, conn net.Conn, msg []byte, req *Request, deadline time.Time) (res *Result, status int, keep bool, got int, err error) {
	conn.SetDeadline(deadline) //nolint:errcheck // a closed conn fails the I/O below
	stop := context.AfterFunc(ctx, func() {
		conn.SetDeadline(time.Unix(1, 0)) //nolint:errcheck
	})
	defer stop()

	if _, err := conn.Write(msg); err != nil {
		return nil, 0, false, 0, t.ioError(ctx, "send", err)
	}

	// A buffer lent for the exchange: the answer's parts that outlive it
	// are copied (Decide, clone).
	bp := bufpool.Get(MaxResponse)
	defer bufpool.Put(bp)
	buf := *bp
	n := 0
	for {
		if n == len(buf) {
			// nginx's buffer is full: it gives up at the next read event
			// (more data or a close) without logging, or times out.
			var one [1]byte
			if _, err := conn.Read(one[:]); errlog.IsTimeout(err) {
				return nil, 0, false, n, t.ioError(ctx, "recv", err)
			}
			return nil, 0, false, n, &Error{Err: ErrTooLarge}
		}
		m, err := conn.Read(buf[n:])
		n += m
		if m > 0 {
			resp, end, perr := ParseResponse(buf[:n])
			switch {
			case perr == nil:
				status = statusCode(buf[:end])
				if t.pool != nil {
					keep = t.drainBody(conn, buf[:end], buf[end:n])
				}
				res, problem := Decide(resp, req)
				if problem != "" {
					return nil, status, keep, n, &Error{Log: t.logText(problem), Level: errlog.Error, Err: errors.New(problem), User: clone(resp.User)}
				}
				return res, status, keep, n, nil
			case errors.Is(perr, ErrInvalidResponse):
				return nil, 0, false, n, &Error{Log: t.logText("sent invalid response"), Level: errlog.Error, Err: perr}
			case errors.Is(perr, ErrInvalidHeader):
				return nil, 0, false, n, &Error{Log: t.logText("sent invalid header in response"), Level: errlog.Error, Err: perr}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// nginx logs nothing when the auth server closes early.
				return nil, 0, false, n, &Error{Err: io.ErrUnexpectedEOF}
			}
			return nil, 0, false, n, t.ioError(ctx, "recv", err)
		}
	}
}

// statusCode is the code of an "HTTP/x.y NNN ..." status line, else 0.
func statusCode(head []byte) int {
	if !bytes.HasPrefix(head, []byte("HTTP/")) {
		return 0
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0
	}
	c, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return 0
	}
	return c
}

// maxBody is the largest answer body read to keep a connection.
const maxBody = 64 << 10

// drainBody reads the answer's body so that the connection can carry the
// next request. It reports false (close the connection) for an HTTP/1.0
// answer, "Connection: close", a body without a length, or a body over
// maxBody.
func (t *target) drainBody(conn net.Conn, head, rest []byte) bool {
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 ")) {
		return false
	}
	length, chunked := -1, false
	for _, line := range bytes.Split(head, []byte("\n"))[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				return false
			}
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")):
			v, err := strconv.Atoi(string(value))
			if err != nil || v < 0 || (length >= 0 && v != length) {
				return false
			}
			length = v
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return false
			}
			chunked = true
		}
	}
	r := io.MultiReader(bytes.NewReader(rest), conn)
	switch {
	case chunked:
		br := bufio.NewReaderSize(r, 512)
		if _, err := io.Copy(io.Discard, io.LimitReader(httputil.NewChunkedReader(br), maxBody)); err != nil {
			return false
		}
		// trailers end with an empty line
		line, err := br.ReadString('\n')
		if err != nil || (line != "\r\n" && line != "\n") {
			return false
		}
		return br.Buffered() == 0
	case length >= 0 && length <= maxBody:
		if len(rest) > length {
			return false // bytes past the answer: not a clean connection
		}
		_, err := io.CopyN(io.Discard, r, int64(length))
		return err == nil
	}
	return false
}

// pool keeps idle connections to one auth server, newest first.
type pool struct {
	max     int
	timeout time.Duration

	mu   sync.Mutex
	idle []idleConn
}

type idleConn struct {
	c     net.Conn
	since time.Time
}

// get returns an idle connection, or nil. Connections idle for longer
// than the keepalive timeout are closed.
func (t *target) get() (net.Conn, bool) {
	p := t.pool
	if p == nil {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for len(p.idle) > 0 {
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(ic.since) < p.timeout {
			return ic.c, true
		}
		ic.c.Close()
	}
	return nil, false
}

func (t *target) put(c net.Conn) {
	p := t.pool
	c.SetDeadline(time.Time{}) //nolint:errcheck
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= p.max {
		old := p.idle[0]
		copy(p.idle, p.idle[1:])
		p.idle = p.idle[:len(p.idle)-1]
		old.c.Close()
	}
	p.idle = append(p.idle, idleConn{c, time.Now()})
}

// dropIdle closes every idle connection (after one was found closed by
// the server, the older ones likely are too).
func (t *target) dropIdle() {
	p := t.pool
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, ic := range idle {
		ic.c.Close()
	}
}

// setHTTP11 changes the request line's "HTTP/1.0" to "HTTP/1.1".
func setHTTP11(b []byte) []byte {
	i := bytes.Index(b, []byte("\r\n"))
	if i >= 8 && string(b[i-8:i]) == "HTTP/1.0" {
		b[i-1] = '1'
	}
	return b
}
