package auth

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// Client sends auth_http requests for one server{} block. It is safe for
// concurrent use; every request uses a new connection, as in nginx.
type Client struct {
	network, addr  string
	peer           string // nginx's name for the auth server in logs
	host, uri      string
	timeout        time.Duration
	headers        [][2]string
	passClientCert bool
}

// NewClient makes a client from the merged auth_http settings.
func NewClient(c *confparse.AuthHTTPConf) *Client {
	cl := &Client{
		network:        c.Network,
		addr:           c.Addr,
		peer:           c.Peer,
		host:           c.Host,
		uri:            c.URI,
		timeout:        c.Timeout,
		headers:        c.Headers,
		passClientCert: c.PassClientCert,
	}
	if cl.network == "" {
		cl.network = "tcp"
	}
	if cl.uri == "" {
		cl.uri = "/"
	}
	if cl.timeout <= 0 {
		cl.timeout = 60 * time.Second
	}
	if cl.peer == "" {
		cl.peer = cl.addr
		if cl.network == "unix" {
			cl.peer = "unix:" + cl.addr
		}
	}
	return cl
}

// Peer is the auth server's name as nginx logs it ("127.0.0.1:9901",
// "unix:/path").
func (c *Client) Peer() string { return c.peer }

// Request returns the bytes Do would send for req.
func (c *Client) Request(req *Request) []byte {
	r := *req
	if r.TLS != nil && r.TLS.Cert != "" && !c.passClientCert {
		t := *r.TLS
		t.Cert = ""
		r.TLS = &t
	}
	return AppendRequest(nil, c.host, c.uri, &r, c.headers)
}

// Do sends one request and returns the validated outcome (spec 4.7), or an
// *Error when the exchange fails. The exchange is bounded by
// auth_http_timeout (one timer for connect, send and the whole answer) and
// by ctx. A cancelled ctx gives an *Error with an empty Log wrapping
// context.Canceled.
func (c *Client) Do(ctx context.Context, req *Request) (*Result, error) {
	msg := c.Request(req)

	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(dctx, c.network, c.addr)
	if err != nil {
		return nil, c.connectError(ctx, err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline) //nolint:errcheck // a closed conn fails the I/O below
	stop := context.AfterFunc(ctx, func() {
		conn.SetDeadline(time.Unix(1, 0)) //nolint:errcheck
	})
	defer stop()

	if _, err := conn.Write(msg); err != nil {
		return nil, c.ioError(ctx, "send", err)
	}

	buf := make([]byte, MaxResponse)
	n := 0
	for {
		if n == len(buf) {
			// nginx's buffer is full: it gives up at the next read event
			// (more data or a close) without logging, or times out.
			var one [1]byte
			if _, err := conn.Read(one[:]); isTimeout(err) {
				return nil, c.ioError(ctx, "recv", err)
			}
			return nil, &Error{Err: ErrTooLarge}
		}
		m, err := conn.Read(buf[n:])
		n += m
		if m > 0 {
			resp, _, perr := ParseResponse(buf[:n])
			switch {
			case perr == nil:
				conn.Close()
				res, problem := Decide(resp, req)
				if problem != "" {
					return nil, &Error{Log: c.logText(problem), Level: "error", Err: errors.New(problem), User: clone(resp.User)}
				}
				return res, nil
			case errors.Is(perr, ErrInvalidResponse):
				return nil, &Error{Log: c.logText("sent invalid response"), Level: "error", Err: perr}
			case errors.Is(perr, ErrInvalidHeader):
				return nil, &Error{Log: c.logText("sent invalid header in response"), Level: "error", Err: perr}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// nginx logs nothing when the auth server closes early.
				return nil, &Error{Err: io.ErrUnexpectedEOF}
			}
			return nil, c.ioError(ctx, "recv", err)
		}
	}
}

// Requery returns the request nginx sends again after res: an Again
// result, or a Fail with Requery. It is req with the answer's Auth-User
// and Auth-Pass overrides applied. For apop and cram-md5 without an
// Auth-Pass override, Auth-Pass is empty, because nginx forgets the digest
// once it has sent it. AuthWait is set as nginx's flag would be: only when
// the request goes out again at once (WaitSeconds 0). The attempt number
// does not change. Everything here was checked against 1.22.1 (testdata
// requery-*, sticky-*).
func Requery(req *Request, res *Result) *Request {
	next := *req
	if res.User != nil {
		next.User = res.User
	}
	switch {
	case res.Pass != nil:
		next.Pass = res.Pass
	case req.Method == MethodAPOP || req.Method == MethodCRAMMD5:
		next.Pass = []byte{}
	}
	next.AuthWait = res.Kind == Again && res.WaitSeconds == 0
	return &next
}

func (c *Client) logText(s string) string { return "auth http server " + c.peer + " " + s }

func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// timedOut is nginx's "auth http server X timed out (110: Connection timed
// out)".
func (c *Client) timedOut(err error) *Error {
	return &Error{
		Log:   c.logText("timed out " + errlog.ErrnoText(syscall.ETIMEDOUT)),
		Level: "error",
		Err:   err,
	}
}

func (c *Client) connectError(ctx context.Context, err error) error {
	if ctx.Err() == context.Canceled {
		return &Error{Err: ctx.Err()}
	}
	if isTimeout(err) {
		return c.timedOut(err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return &Error{Log: "connect() to " + c.peer + " failed", Level: "crit", Err: err}
	}
	if c.network != "unix" {
		switch errno {
		case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ECONNRESET, syscall.ETIMEDOUT:
			// A TCP connect fails asynchronously; nginx sees the error
			// on its first recv().
			return &Error{Log: "recv() failed " + errlog.ErrnoText(errno), Level: "error", Err: err}
		}
	}
	level := "crit"
	switch errno {
	case syscall.ECONNREFUSED, syscall.EAGAIN, syscall.ECONNRESET, syscall.ENETDOWN,
		syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EHOSTUNREACH:
		level = "error"
	}
	return &Error{Log: "connect() to " + c.peer + " failed " + errlog.ErrnoText(errno), Level: level, Err: err}
}

// ioError maps a send()/recv() failure to nginx's log line.
func (c *Client) ioError(ctx context.Context, op string, err error) error {
	if ctx.Err() == context.Canceled {
		return &Error{Err: ctx.Err()}
	}
	if isTimeout(err) {
		return c.timedOut(err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return &Error{Log: op + "() failed", Level: "error", Err: err}
	}
	level := "alert"
	switch errno {
	case syscall.ECONNRESET, syscall.EPIPE, syscall.ENOTCONN, syscall.ETIMEDOUT, syscall.ECONNREFUSED,
		syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EHOSTUNREACH:
		level = "error"
	}
	return &Error{Log: op + "() failed " + errlog.ErrnoText(errno), Level: level, Err: err}
}
