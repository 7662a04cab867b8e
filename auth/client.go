package auth

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// Client sends auth_http requests for one server{} block. It is safe for
// concurrent use. Without mailgate's extension directives every request
// uses a new connection to the one auth server, as in nginx; see
// docs/auth_http.md for auth_http_keepalive, auth_http_backup,
// auth_http_cache and auth_http_throttle.
type Client struct {
	targets        []*target // auth_http, then the auth_http_backup servers
	peer           string    // nginx's name for the primary auth server in logs
	host, uri      string    // of the primary (Request)
	timeout        time.Duration
	headers        [][2]string
	passClientCert bool
	failTimeout    time.Duration

	cache    *cache    // nil: auth_http_cache off
	throttle *throttle // nil: auth_http_throttle off
}

// NewClient makes a client from the merged auth_http settings.
func NewClient(c *confparse.AuthHTTPConf) *Client {
	cl := &Client{
		host:           c.Host,
		uri:            c.URI,
		timeout:        c.Timeout,
		headers:        c.Headers,
		passClientCert: c.PassClientCert,
		failTimeout:    c.FailTimeout,
	}
	if cl.uri == "" {
		cl.uri = "/"
	}
	if cl.timeout <= 0 {
		cl.timeout = 60 * time.Second
	}
	if cl.failTimeout <= 0 {
		cl.failTimeout = 10 * time.Second
	}
	tlsConf, tlsErr := clientTLS(&c.SSL)
	primary := confparse.AuthHTTPTarget{URL: c.URL, Network: c.Network, Addr: c.Addr, Peer: c.Peer, Host: c.Host, URI: c.URI, TLS: c.TLS}
	for _, t := range append([]confparse.AuthHTTPTarget{primary}, c.Backups...) {
		cl.targets = append(cl.targets, newTarget(t, c, tlsConf, tlsErr))
	}
	cl.peer = cl.targets[0].peer
	cl.cache = newCache(&c.AuthHTTPExt, cl.scope())
	cl.throttle = newThrottle(&c.AuthHTTPExt)
	return cl
}

// Peer is the auth server's name as nginx logs it ("127.0.0.1:9901",
// "unix:/path").
func (c *Client) Peer() string { return c.peer }

// Request returns the bytes Do would send for req to the primary server.
func (c *Client) Request(req *Request) []byte {
	return c.request(c.targets[0], req)
}

func (c *Client) request(t *target, req *Request) []byte {
	r := *req
	if r.TLS != nil && r.TLS.Cert != "" && !c.passClientCert {
		tl := *r.TLS
		tl.Cert = ""
		r.TLS = &tl
	}
	b := AppendRequest(nil, t.host, t.uri, &r, c.headers)
	if t.pool != nil {
		// auth_http_keepalive: the only change is the version in the
		// request line; HTTP/1.1 connections persist by default.
		b = setHTTP11(b)
	}
	return b
}

// Do sends one request and returns the validated outcome (docs/auth_http.md, "Outcome"), or an
// *Error when the exchange fails. The exchange is bounded by
// auth_http_timeout (one timer for connect, send and the whole answer) and
// by ctx. A cancelled ctx gives an *Error with an empty Log wrapping
// context.Canceled.
//
// With the mailgate-only directives Do may also answer from the login
// cache, refuse a throttled client without asking the auth server, and try
// the auth_http_backup servers in order.
func (c *Client) Do(ctx context.Context, req *Request) (*Result, error) {
	if c.throttle != nil {
		if res := c.throttle.check(ctx, c, req); res != nil {
			return res, nil
		}
	}
	var key string
	if c.cache != nil {
		key = c.cache.key(req)
		if key != "" {
			if res := c.cache.get(ctx, key); res != nil && (res.ServerName == "" || req.AllowHostName) {
				c.noteResult(ctx, req, res)
				return res, nil
			}
		}
	}
	res, err := c.doServers(ctx, req)
	if err != nil {
		return nil, err
	}
	if key != "" {
		c.cache.put(ctx, key, req, res)
	}
	c.noteResult(ctx, req, res)
	return res, nil
}

func (c *Client) noteResult(ctx context.Context, req *Request, res *Result) {
	if c.throttle != nil && res.Kind == Fail {
		c.throttle.fail(ctx, c, req)
	}
}

// doServers asks the auth servers in order until one answers (failover
// on connect errors, timeouts and 5xx statuses, which mark the server down
// for auth_http_fail_timeout). Each attempt gets an equal share of the
// time left, so that the whole exchange still ends within
// auth_http_timeout; with one server nothing changes from nginx.
func (c *Client) doServers(ctx context.Context, req *Request) (*Result, error) {
	now := time.Now()
	deadline := now.Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cands := c.candidates(now)
	for i, t := range cands {
		left := len(cands) - i
		at := deadline
		if left > 1 {
			at = time.Now().Add(time.Until(deadline) / time.Duration(left))
		}
		res, status, err := c.exchange(ctx, t, req, at)
		if left == 1 || ctx.Err() != nil {
			if err == nil && status < 500 {
				t.markUp()
			}
			return res, err
		}
		var why string
		var lvl errlog.Level = errlog.Error
		switch {
		case status >= 500:
			why = fmt.Sprintf("auth http server %s sent status %d", t.peer, status)
		case err != nil:
			var ae *Error
			if !errors.As(err, &ae) || !ae.failover {
				return res, err
			}
			why = ae.Log
			lvl = ae.Level
		default:
			t.markUp()
			return res, nil
		}
		t.markDown(time.Now().Add(c.failTimeout))
		logf(ctx, lvl, "%s", why)
		logf(ctx, errlog.Warn, "auth http server %s temporarily disabled, trying auth http server %s", t.peer, cands[i+1].peer)
	}
	panic("auth: no auth server") // cands is never empty
}

// candidates are the servers that are not marked down, in order; when all
// are down, all of them (as nginx's upstreams do).
func (c *Client) candidates(now time.Time) []*target {
	if len(c.targets) == 1 {
		return c.targets
	}
	var up []*target
	for _, t := range c.targets {
		if !t.isDown(now) {
			up = append(up, t)
		}
	}
	if len(up) == 0 {
		return c.targets
	}
	return up
}

// exchange is one request to one server, ending at deadline. status is the
// HTTP status code of the answer (0 when it had no status line).
func (c *Client) exchange(ctx context.Context, t *target, req *Request, deadline time.Time) (*Result, int, error) {
	if t.tlsErr != nil {
		return nil, 0, &Error{Log: t.tlsErr.Error(), Level: errlog.Crit, Err: t.tlsErr}
	}
	msg := c.request(t, req)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for attempt := 0; ; attempt++ {
		conn, reused := t.get()
		if conn == nil {
			var err error
			conn, err = t.dial(dctx, deadline)
			if err != nil {
				return nil, 0, t.connectError(ctx, err)
			}
		}
		res, status, keep, got, err := t.roundTrip(ctx, conn, msg, req, deadline)
		if err != nil && reused && got == 0 && attempt == 0 && ctx.Err() == nil && !errlog.IsTimeout(err) {
			// The server closed an idle connection: once more on a new one.
			conn.Close()
			t.dropIdle()
			continue
		}
		if keep {
			t.put(conn)
		} else {
			conn.Close()
		}
		return res, status, err
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

func (t *target) logText(s string) string { return "auth http server " + t.peer + " " + s }

// timedOut is nginx's "auth http server X timed out (110: Connection timed
// out)".
func (t *target) timedOut(err error) *Error {
	return &Error{
		failover: true,
		Log:      t.logText("timed out " + errlog.ErrnoText(syscall.ETIMEDOUT)),
		Level:    errlog.Error,
		Err:      err,
	}
}

func (t *target) connectError(ctx context.Context, err error) error {
	if ctx.Err() == context.Canceled {
		return &Error{Err: ctx.Err()}
	}
	if errlog.IsTimeout(err) {
		return t.timedOut(err)
	}
	var te *tlsError
	if errors.As(err, &te) {
		return &Error{Log: t.logText("SSL handshake failed (" + te.err.Error() + ")"), Level: errlog.Error, Err: err, failover: true}
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return &Error{Log: "connect() to " + t.peer + " failed", Level: errlog.Crit, Err: err, failover: true}
	}
	if t.network != "unix" {
		switch errno {
		case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ECONNRESET, syscall.ETIMEDOUT:
			// A TCP connect fails asynchronously; nginx sees the error
			// on its first recv().
			return &Error{Log: "recv() failed " + errlog.ErrnoText(errno), Level: errlog.Error, Err: err, failover: true}
		}
	}
	level := errlog.Crit
	switch errno {
	case syscall.ECONNREFUSED, syscall.EAGAIN, syscall.ECONNRESET, syscall.ENETDOWN,
		syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EHOSTUNREACH:
		level = errlog.Error
	}
	return &Error{Log: "connect() to " + t.peer + " failed " + errlog.ErrnoText(errno), Level: level, Err: err, failover: true}
}

// ioError maps a send()/recv() failure to nginx's log line.
func (t *target) ioError(ctx context.Context, op string, err error) error {
	if ctx.Err() == context.Canceled {
		return &Error{Err: ctx.Err()}
	}
	if errlog.IsTimeout(err) {
		return t.timedOut(err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return &Error{Log: op + "() failed", Level: errlog.Error, Err: err}
	}
	level := errlog.Alert
	switch errno {
	case syscall.ECONNRESET, syscall.EPIPE, syscall.ENOTCONN, syscall.ETIMEDOUT, syscall.ECONNREFUSED,
		syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EHOSTUNREACH:
		level = errlog.Error
	}
	return &Error{Log: op + "() failed " + errlog.ErrnoText(errno), Level: level, Err: err}
}
