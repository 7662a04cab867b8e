package mail

// The session engine: one goroutine per client connection runs PROXY
// header, TLS, greeting, the pre-auth command loop over a fixed buffer, the
// auth_http exchange, the upstream login and the relay.

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // certificate fingerprints
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/mail/bufpool"
	"mailgate/mail/errlog"
	"mailgate/mail/park"
	"mailgate/mail/tlsconf"
	"mailgate/proxy"
)

// serveConn runs one client connection on its own goroutine, from accept
// to close. Nothing that happens in it may end more than this session.
func (srv *Server) serveConn(c net.Conn, so *socket) {
	e := &engine{srv: srv}
	srv.runSession(e, c, func() {
		l := so.spec.pick(addrPortOf(c.LocalAddr()).Addr())
		fixKeepalive(c, l, so.kd)
		e.start(c, l)
	})
}

// runSession runs f (the session from its start, or its command loop again
// after parking) and then whatever comes next: the relay, parking, or the
// end of the session.
func (srv *Server) runSession(e *engine, c net.Conn, f func()) {
	for {
		// e.relay is set as the last step of a successful login, so a
		// session whose run panicked never relays.
		ok := srv.guard(e, f)
		switch {
		case ok && e.relay != nil:
			// The relay runs on a fresh goroutine and this one ends: its
			// stack, grown by TLS, auth_http and the upstream login, would
			// otherwise stay with every idle relayed session for hours.
			go func() {
				ended := func() { srv.endSession(e, c) }
				if !srv.guard(e, func() { e.relay(ended) }) {
					ended() // a panic before the relay took the session over
				}
			}()
			return
		case ok && e.wantPark:
			e.wantPark = false
			resume := func() { srv.runSession(e, c, e.loop) }
			if srv.parkerOf().Park(e.rawConn(), e.s.Deadline, &e.parked, resume) != 0 {
				return // from here on, e belongs to the resumed goroutine
			}
			e.noPark = true
			f = e.loop
			continue
		}
		srv.endSession(e, c)
		return
	}
}

// ServeConn runs one session over c as if it had been accepted on listen
// entry l (which names the server block), up to its end, relay included.
// It is how tests and fuzzers run the real engine over a socket pair.
func (srv *Server) ServeConn(c net.Conn, l *confparse.Listen) {
	srv.mu.Lock()
	if srv.ctx.Err() != nil {
		srv.mu.Unlock()
		c.Close()
		return
	}
	srv.conns[c] = struct{}{}
	srv.sessions.Add(1)
	srv.mu.Unlock()
	// It returns at the session's end, parked or not on the way.
	e := &engine{srv: srv, noPark: srv.opts.ParkAfter <= 0, ended: make(chan struct{})}
	srv.runSession(e, c, func() { e.start(c, l) })
	<-e.ended
}

// start builds the session of a connection that arrived on listen entry l
// and runs it up to the hand-off to the relay.
func (e *engine) start(c net.Conn, l *confparse.Listen) {
	srv := e.srv
	local := addrPortOf(c.LocalAddr())
	sc := srv.servers[l.Server]
	if sc == nil {
		return
	}
	id := NextConnID()
	// ServerKey lets the command line route the line to the server's own
	// error_log, as nginx does with the connection's log.
	entry := srv.log.WithFields(logrus.Fields{errlog.ConnKey: id, errlog.ServerKey: sc.conf})
	peer := addrPortOf(c.RemoteAddr())
	errlog.Log(entry, errlog.Info, fmt.Sprintf("client %s connected to %s", clientTextPort(peer), l.Text))

	s := &Session{
		ID:        id,
		Conf:      sc.conf,
		Listen:    l,
		Conn:      c,
		Client:    peer,
		ClientIP:  clientText(peer),
		Local:     local,
		TLSConfig: sc.tls,
		Prepared:  sc.prepared,
		Log:       entry,
		Action:    "sending client greeting line",
		ctx:       srv.ctx,
		debug:     srv.opts.Debug,
	}
	s.out = newReplyWriter(countWriter{c, &e.sent}) // counted for the access log
	e.sc, e.s = sc, s
	e.state(StateNew)
	e.run()
}

// endSession closes the client connection and forgets the session.
func (srv *Server) endSession(e *engine, c net.Conn) {
	e.endOnce.Do(func() {
		e.releaseBuf()
		if e.s != nil {
			e.s.Conn.Close() // the TLS connection once there is one
			e.state(StateClosed)
		}
		c.Close()
		srv.untrack(c)
		srv.sessions.Done()
		if e.ended != nil {
			close(e.ended)
		}
	})
}

// state reports a session state change to Options.ConnState.
func (e *engine) state(st State) {
	e.st = st
	if e.s != nil {
		e.s.Debugf("mail session state: %s", st)
	}
	e.observeState(st) // mailgate-only: metrics and the session registry (observe.go)
	if f := e.srv.opts.ConnState; f != nil {
		f(e.s, st)
	}
}

type engine struct {
	srv *Server
	sc  *serverCtx
	s   *Session
	h   Handler

	buf       []byte
	pos, last int
	bufSize   int     // the protocol's client buffer, e.g. imap_client_buffer
	pooled    *[]byte // buf's entry in mail/bufpool; nil when buf is not pooled
	raw       syscall.RawConn
	rawOf     net.Conn // the connection raw belongs to

	// Parking (mail/park). wantPark: the loop returned to be parked;
	// noPark: wait on this goroutine (tests' ServeConn, or parking
	// failed); parked: the ticket, for whoever closes the connection.
	wantPark, noPark bool
	parked           park.Slot

	// sendFailed: a failed send was logged (once, as nginx ends there).
	sendFailed bool

	// relay, set once the upstream login succeeded, runs the rest of the
	// session (see runSession) and calls done when it is over; relayer is
	// the running relay, for whoever ends the session from outside.
	relay   func(done func())
	relayer atomic.Pointer[proxy.Relayer]
	endOnce sync.Once
	ended   chan struct{} // closed at the end, if set (ServeConn)

	st State // where the session is

	observed // mailgate-only: metrics and the admin API (observe.go)
}

func (e *engine) timeout() time.Duration {
	t := e.sc.conf.Core.Timeout
	if t <= 0 {
		t = 60 * time.Second
	}
	return t
}

// flush sends queued replies under the send timeout. A failed send on a
// plain connection is logged as nginx does ("send() failed (32: Broken
// pipe)"): at info for a peer gone away, else at alert.
func (e *engine) flush() error {
	if e.s.out.Buffered() == 0 {
		return nil
	}
	deadline := time.Now().Add(e.timeout())
	// Before login nginx's single read timer, armed at the greeting,
	// ends the session whatever it is doing: a client that sends
	// commands and never reads the replies blocks the send, and must
	// not outlive that timer because of it.
	if d := e.s.Deadline; e.st == StatePreAuth && !d.IsZero() && d.Before(deadline) {
		deadline = d
	}
	e.s.Conn.SetWriteDeadline(deadline) //nolint:errcheck
	err := e.s.out.Flush()
	if err != nil {
		e.ending(readEnd(err))
	}
	if err != nil && errlog.IsTimeout(err) && !e.sendFailed {
		// nginx's write timer, or its read timer while the send was
		// blocked: the same line either way.
		e.sendFailed = true
		e.s.Logf(errlog.Info, "client timed out (110: Connection timed out)")
	}
	if err != nil && e.s.TLS == nil && !e.sendFailed {
		e.sendFailed = true
		switch en := errlog.Errno(err); en {
		case 0, syscall.ETIMEDOUT:
		case syscall.ECONNRESET, syscall.EPIPE, syscall.ENOTCONN, syscall.ECONNREFUSED,
			syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EHOSTUNREACH:
			e.s.Logf(errlog.Info, "send() failed %s", errlog.ErrnoText(en))
		default:
			e.s.Logf(errlog.Alert, "send() failed %s", errlog.ErrnoText(en))
		}
	}
	return err
}

func (e *engine) run() {
	s := e.s
	conf := e.sc.conf
	// The handler exists before TLS: a refused client certificate gets
	// the protocol's reply.
	e.h = e.sc.proto.NewHandler(s)

	if s.Listen.ProxyProtocol {
		s.Action = "reading PROXY protocol"
		if !e.readProxyProtocol() {
			return
		}
	}
	if (s.Listen.SSL || conf.SSL.SSLOn) && s.TLSConfig != nil {
		s.Action = "SSL handshaking"
		if !e.handshake(time.Now().Add(e.timeout()), false) {
			return
		}
	}

	s.Action = "sending client greeting line"
	e.bufSize = e.sc.proto.ClientBuffer(conf)
	if err := e.h.Greet(); err != nil {
		e.flush() //nolint:errcheck
		return
	}
	s.Deadline = time.Now().Add(e.timeout())
	if err := e.flush(); err != nil {
		return
	}
	s.Action = "in auth state"
	e.state(StatePreAuth)
	e.loop()
}

// handshake runs the server side of TLS under deadline. starttls marks a
// STARTTLS upgrade (for the "using starttls" log suffix).
func (e *engine) handshake(deadline time.Time, starttls bool) bool {
	s := e.s
	// nginx marks the session "using starttls" when STARTTLS begins.
	s.startTLSUsed = starttls
	tc := tls.Server(s.Conn, s.TLSConfig)
	tc.SetDeadline(deadline) //nolint:errcheck
	if err := tc.HandshakeContext(s.Context()); err != nil {
		switch {
		case errlog.IsTimeout(err):
			// nginx closes a handshake that timed out without a line.
		case errors.Is(err, io.EOF):
			s.Logf(errlog.Info, "peer closed connection in SSL handshake")
		default:
			s.Logf(handshakeErrorLevel(err), "SSL_do_handshake() failed (SSL: %s)", handshakeErrorText(err))
		}
		e.obs().TLSHandshake(e.labels(), tlsFailure(err))
		return false
	}
	tc.SetDeadline(time.Time{}) //nolint:errcheck
	st := tc.ConnectionState()
	s.Conn = tc
	s.TLS = &st
	s.out.Reset(countWriter{tc, &e.sent})
	return e.tlsVerified(e.verifyCert())
}

// loop is the pre-auth command loop.
func (e *engine) loop() {
	s := e.s
	justRead := false
	for {
		needMore := false
		for e.pos < e.last {
			// nginx tries a recv before each further pipelined command.
			if !justRead && !e.recheck() {
				return
			}
			justRead = false
			cmd, n, err := e.h.Parse(e.buf[e.pos:e.last])
			if errors.Is(err, ErrNeedMore) {
				needMore = true
				break
			}
			if n <= 0 {
				// A parser must consume what it answers; never loop on
				// the same bytes: take the line (or what is left).
				n = e.last - e.pos
				if i := bytes.IndexByte(e.buf[e.pos:e.last], '\n'); i >= 0 {
					n = i + 1
				}
			}
			if n > e.last-e.pos {
				n = e.last - e.pos
			}
			e.pos += n
			// nginx sends each reply before it looks at the next command:
			// a client gone away ends the session at the first reply.
			if err != nil {
				if e.fail(err) || e.flush() != nil {
					return
				}
				continue
			}
			next, err := e.h.Exec(cmd)
			if err != nil {
				if e.fail(err) || e.flush() != nil {
					return
				}
				continue
			}
			switch next {
			case Continue:
				if e.flush() != nil {
					return
				}
			case Close:
				e.ending(EndClientClosed)
				e.flush() //nolint:errcheck
				return
			case StartTLS:
				if e.flush() != nil {
					return
				}
				// nginx drops whatever was pipelined after STARTTLS.
				e.pos, e.last = 0, 0
				s.Action = "in starttls state"
				// nginx's STARTTLS handler ignores the pre-auth timer
				// when it fires and starts the handshake then, with a
				// timeout of its own: an idle client is closed a
				// timeout after the pre-auth deadline.
				if s.TLSConfig == nil || !e.handshake(s.Deadline.Add(e.timeout()), true) {
					return
				}
				s.Action = "in auth state"
			case Authenticate:
				if e.flush() != nil {
					return
				}
				e.state(StateAuth)
				if !e.authenticate() {
					return
				}
				e.state(StatePreAuth)
			}
		}
		if needMore && e.last == len(e.buf) && !e.growBuffer() {
			shown := e.buf[:e.last]
			if r, ok := e.h.(LogRedactor); ok {
				shown = r.RedactLog(shown)
			}
			s.Logf(errlog.Info, "client sent too long command \"%s\"", shown)
			s.Write(e.h.ErrorReply(ErrTooLong))
			e.flush() //nolint:errcheck
			return
		}
		if e.flush() != nil {
			return
		}
		if e.pos == e.last && !e.keepBuffer() {
			e.pos, e.last = 0, 0
		}
		if e.buf != nil && e.last == len(e.buf) {
			// Only with a BufferKeeper: nginx's recv() into no room
			// returns 0, taken as the client closing.
			return
		}
		n, err := e.read()
		if err == errPark {
			e.wantPark = true
			return
		}
		e.last += n
		e.received += int64(n)
		if err != nil && n == 0 {
			e.readError(err)
			return
		}
		justRead = true
	}
}

// read waits under the pre-auth deadline for client bytes and appends
// them to the command buffer. The buffer is lent by mail/bufpool: a plain
// TCP session with nothing buffered gives it back and waits without one
// (bufpool.ReadTCP), so an idle or slow client holds no buffer between
// commands, and a command costs one read().
func (e *engine) read() (int, error) {
	s := e.s
	// A client quiet for parkAfter() is parked, whether it has sent nothing
	// or half a command (a slow client: its buffer stays, its goroutine
	// goes).
	parking := e.mayPark()
	wait := s.Deadline
	if parking {
		wait = time.Now().Add(e.srv.parkAfter())
	}
	s.Conn.SetReadDeadline(wait) //nolint:errcheck
	var n int
	var err error
	if rc := e.rawConn(); rc != nil && e.last == 0 {
		e.releaseBuf()
		var bp *[]byte
		bp, n, err = bufpool.ReadTCP(rc, e.bufSize)
		if bp != nil {
			e.buf, e.pooled = *bp, bp
		}
	} else {
		if e.buf == nil {
			e.pooled = bufpool.Get(e.bufSize)
			e.buf = *e.pooled
		}
		n, err = s.Conn.Read(e.buf[e.last:])
	}
	if parking {
		if n == 0 && errlog.IsTimeout(err) {
			return 0, errPark
		}
		// Back to the session's own deadline: a short one left behind
		// would fail the recv() before a pipelined command.
		s.Conn.SetReadDeadline(s.Deadline) //nolint:errcheck
	}
	return n, err
}

// defaultParkAfter is how long a session waits for its client on its own
// goroutine before it is parked (mail/park): long enough that a client
// answering at once (every login of a working client) never pays for it.
// A greeted client that has sent nothing would otherwise hold a goroutine,
// whose stack is most of what a pre-auth connection costs.
const defaultParkAfter = 200 * time.Millisecond

// errPark ends the command loop so that the session is parked.
var errPark = errors.New("park")

// mayPark tells whether a wait for the client may end in parking: a plain
// TCP session before login, whose deadline is further than parkAfter().
func (e *engine) mayPark() bool {
	return !e.noPark && e.st == StatePreAuth && e.rawConn() != nil &&
		e.srv.parkAfter() > 0 && time.Until(e.s.Deadline) > e.srv.parkAfter() && e.srv.parkerOf() != nil
}

// rawConn is the client's socket when the session reads a plain TCP
// connection (not TLS), else nil.
func (e *engine) rawConn() syscall.RawConn {
	if e.rawOf != e.s.Conn {
		e.rawOf, e.raw = e.s.Conn, nil
		if tc, ok := e.s.Conn.(*net.TCPConn); ok {
			e.raw, _ = tc.SyscallConn()
		}
	}
	return e.raw
}

// releaseBuf gives the command buffer back; nothing may keep a slice of
// it (the protocols copy what they keep: tags, logins, SMTP lines).
func (e *engine) releaseBuf() {
	if e.pooled != nil {
		bufpool.Put(e.pooled)
	}
	e.buf, e.pooled = nil, nil
}

// replaceBuf makes b the command buffer (grown for a long command).
func (e *engine) replaceBuf(b []byte) {
	e.releaseBuf()
	e.buf = b
}

// recheck does what nginx does before it parses a further pipelined
// command: a recv into the free end of the buffer that does not wait. New
// bytes are appended; a client that has closed ends the session without
// an answer to the commands still buffered (nginx reads the EOF first).
// It reports whether the session goes on. Only plain TCP connections are
// checked.
func (e *engine) recheck() bool {
	if e.s.TLS != nil || e.last == len(e.buf) {
		return true
	}
	tc, ok := e.s.Conn.(*net.TCPConn)
	if !ok {
		return true
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return true
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = syscall.Recvfrom(int(fd), e.buf[e.last:], syscall.MSG_DONTWAIT)
			if rerr != syscall.EINTR {
				return true
			}
		}
	}); err != nil {
		return true
	}
	switch {
	case rerr == syscall.EAGAIN:
		return true
	case rerr != nil:
		e.readError(rerr)
		return false
	case n == 0:
		return false
	}
	e.last += n
	e.received += int64(n)
	return true
}

// keepBuffer asks an optional BufferKeeper whether the used bytes must
// stay in the buffer.
func (e *engine) keepBuffer() bool {
	k, ok := e.h.(BufferKeeper)
	return ok && k.KeepBuffer()
}

// readError logs a failed client read in the auth state as nginx does.
func (e *engine) readError(err error) {
	s := e.s
	e.ending(readEnd(err))
	switch {
	case errlog.IsTimeout(err):
		s.Logf(errlog.Info, "client timed out (110: Connection timed out)")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		if en := errlog.Errno(err); en != 0 {
			s.Logf(errlog.Info, "recv() failed %s", errlog.ErrnoText(en))
		}
	}
}

// fail turns a command error into its reply. It reports whether the
// session is over.
func (e *engine) fail(err error) bool {
	s := e.s
	var ce *CommandError
	switch {
	case errors.Is(err, ErrTooLong):
		s.Write(e.h.ErrorReply(ErrTooLong))
		e.flush() //nolint:errcheck
		return true
	case errors.Is(err, ErrInvalid):
		s.Write(e.h.ErrorReply(ErrInvalid))
		return e.countError()
	case errors.Is(err, ErrRejected):
		s.Write(e.h.ErrorReply(ErrRejected))
		return false
	case errors.As(err, &ce):
		if ce.Log != "" {
			s.Logf(errlog.Info, "%s", ce.Log)
		}
		reply := ce.Reply
		if reply == nil {
			if ce.Counted {
				reply = e.h.ErrorReply(ErrInvalid)
			} else {
				reply = e.h.ErrorReply(ErrRejected)
			}
		}
		s.Write(reply)
		if ce.Counted && e.countError() {
			return true
		}
		if ce.Close {
			e.flush() //nolint:errcheck
			return true
		}
		return false
	default:
		s.Write(e.h.InternalError())
		e.flush() //nolint:errcheck
		return true
	}
}

// countError counts a parse-level error toward max_errors; at the limit the
// reply already queued is sent and the session ends.
func (e *engine) countError() bool {
	s := e.s
	s.Errors++
	if s.Errors >= e.sc.conf.Core.MaxErrors {
		s.Logf(errlog.Info, "client sent too many invalid commands")
		e.flush() //nolint:errcheck
		return true
	}
	return false
}

// internalError sends the protocol's internal-error reply; the session ends.
func (e *engine) internalError() {
	e.s.Write(e.h.InternalError())
	e.flush() //nolint:errcheck
}

// sleep waits d unless the server is closed; it reports whether d passed.
func (e *engine) sleep(d time.Duration) bool {
	return e.srv.opts.sleep(e.s.Context(), d)
}

// authenticate asks auth_http about the credentials the protocol stored.
// It returns true when the session goes back to the auth state (a failure
// with Auth-Wait) and false when it is over (refused, error, or proxied).
func (e *engine) authenticate() bool {
	s := e.s
	s.Action = "in http auth state"
	s.LoginAttempt++
	req := e.authRequest()
	res, req, ok := e.askAuth(req)
	if !ok {
		return false
	}
	if res.Kind == auth.Fail {
		return e.authFailed(res)
	}

	// Success: POP3 and IMAP need a password for the upstream login.
	pass := res.Pass
	if pass == nil && req.Method == auth.MethodPlain {
		pass = s.Passwd
		if pass == nil {
			pass = []byte{}
		}
	}
	// auth.Decide already refused an OK without a password where POP3
	// and IMAP need one ("did not send password").
	s.Passwd = s.keepToken(req.Method, pass) // mailgate-only: an OAuth token without Auth-Pass (sasl_oauth.go)
	s.Upstream = res.ServerText
	e.authStatus = "OK"
	e.proxy(res)
	return false
}

// authRequest builds the auth_http request from what the protocol left
// on the session.
func (e *engine) authRequest() *auth.Request {
	s := e.s
	req := &auth.Request{
		Method:        s.AuthMethod,
		User:          s.Login,
		Pass:          s.Passwd,
		Protocol:      e.sc.proto.Name(),
		LoginAttempt:  s.LoginAttempt,
		ClientIP:      s.ClientIP,
		ProxyProtocol: s.ProxyInfo,
		TLS:           tlsInfo(s),
	}
	req.Extra = addIDHeader(e.sc.conf, s, req.Extra)  // mailgate-only (imapid.go)
	req.AllowHostName = e.sc.conf.AuthHTTP.Resolve    // mailgate-only (upstream_resolve.go)
	req.Extra = addSNIHeader(e.sc.conf, s, req.Extra) // mailgate-only (sni.go)
	if req.Method == "" {
		req.Method = auth.MethodPlain
	}
	// 1.22.1 sends Auth-Salt for every method but plain when a salt exists.
	if req.Method != auth.MethodPlain && len(s.Salt) > 0 {
		req.Salt = s.Salt
	}
	if e.sc.conf.Protocol == confparse.ProtoSMTP {
		// SMTP always names the client's host, and on the none path the
		// envelope so far.
		req.HasClientHost = true
		req.ClientHost = s.ClientHost
		if req.Method == auth.MethodNone {
			req.SMTPHelo = nonNil(s.Helo)
			req.SMTPFrom = nonNil(s.MailFrom)
			req.SMTPTo = nonNil(s.RcptTo)
		}
	}
	return req
}

// askAuth sends req and, while the answers say so, waits and asks again.
// The division of labour with package auth: auth.Decide classifies one
// answer under nginx's sticky auth_wait flag (carried by
// req.AuthWait) and auth.Requery makes the next request; askAuth only
// keeps time. It returns the final answer and the request it answered,
// or ok false when the session is over (an error was answered, or the
// server closed during a wait).
func (e *engine) askAuth(req *auth.Request) (res *auth.Result, final *auth.Request, ok bool) {
	s := e.s
	at := e.sc.conf.AuthHTTP.Timeout
	if at <= 0 {
		at = 60 * time.Second
	}
	for {
		e.debugAuthRequest(req)
		NextConnID()
		// Failover and cache notes get the session's log context.
		ctx, cancel := context.WithTimeout(auth.WithLog(s.Context(), s.Logf), at)
		t0 := time.Now()
		r, err := e.sc.auth.Do(ctx, req)
		e.authTime += time.Since(t0)
		cancel()
		if err != nil {
			e.authError(err)
			return nil, nil, false
		}
		e.debugAuthAnswer(r)
		// nginx applies Auth-User and Auth-Pass as it reads them, whatever
		// the outcome.
		if r.User != nil {
			s.Login = r.User
		}
		if r.Pass != nil {
			s.Passwd = r.Pass
		}
		switch {
		case r.Kind == auth.Again:
			if r.WaitSeconds > 0 {
				if !e.sleep(time.Duration(r.WaitSeconds) * time.Second) {
					return nil, nil, false
				}
			} else if s.Context().Err() != nil {
				return nil, nil, false
			}
		case r.Kind == auth.Fail && r.Requery:
			// A failure while nginx's auth_wait flag is set is logged,
			// and after the wait the request goes out again instead of
			// the failure reply.
			s.Logf(errlog.Info, "client login failed: \"%s\"", r.Message)
			if !e.sleep(time.Duration(r.WaitSeconds) * time.Second) {
				return nil, nil, false
			}
		default:
			return r, req, true
		}
		req = auth.Requery(req, r)
	}
}

// debugAuthRequest writes the auth_http request's header lines at debug,
// with Auth-Pass hidden.
func (e *engine) debugAuthRequest(req *auth.Request) {
	if !e.s.debug {
		return
	}
	rq, ok := e.sc.auth.(interface{ Request(*auth.Request) []byte })
	if !ok {
		return
	}
	for _, line := range bytes.Split(rq.Request(req), []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if bytes.HasPrefix(line, []byte("Auth-Pass:")) {
			line = []byte("Auth-Pass: (not shown)")
		}
		e.s.Debugf("auth http request: %q", line)
	}
}

// debugAuthAnswer writes what auth_http answered at debug, without a
// password.
func (e *engine) debugAuthAnswer(r *auth.Result) {
	if !e.s.debug {
		return
	}
	kind := map[auth.Kind]string{auth.OK: "OK", auth.Fail: "failure", auth.Again: "WAIT"}[r.Kind]
	pass := "none"
	if r.Pass != nil {
		pass = "(not shown)"
	}
	e.s.Debugf("auth http answer: %s, message %q, server %q, user %q, password %s, wait %d (sent %v), error code %q",
		kind, r.Message, r.ServerText, r.User, pass, r.WaitSeconds, r.HasWait, r.ErrorCode)
}

// hidePassword replaces every occurrence of pass in line, for debug lines
// of what the upstream said.
func hidePassword(line, pass []byte) []byte {
	if len(pass) == 0 || !bytes.Contains(line, pass) {
		return line
	}
	return bytes.ReplaceAll(line, pass, []byte("***"))
}

// authFailed answers a refused login. Without Auth-Wait the session ends;
// with it, the reply goes out after the wait and the session returns to
// the auth state (true).
func (e *engine) authFailed(res *auth.Result) bool {
	s := e.s
	s.Logf(errlog.Info, "client login failed: \"%s\"", res.Message)
	e.authStatus = res.Message
	e.login(authOutcome(res.HasWait, res.WaitSeconds, res.ErrorCode))
	if goOn, ok := e.saslFailure(res); ok { // mailgate-only: OAuth error challenge (sasl_oauth.go)
		return goOn
	}
	if !res.HasWait || res.WaitSeconds <= 0 {
		s.Write(e.h.AuthFailed(res.Message, res.ErrorCode))
		e.flush() //nolint:errcheck
		return false
	}
	if !e.sleep(time.Duration(res.WaitSeconds) * time.Second) {
		return false
	}
	s.Write(e.h.AuthFailed(res.Message, res.ErrorCode))
	s.AuthMethod = auth.MethodPlain
	e.h.AuthReset()
	s.Deadline = time.Now().Add(e.timeout())
	s.Action = "in auth state"
	// The reply goes out before any pipelined command is read.
	return e.flush() == nil
}

// authError logs a failed auth_http exchange and sends the internal error.
func (e *engine) authError(err error) {
	s := e.s
	e.authStatus = ""
	e.login(LoginAuthError)
	var ae *auth.Error
	if errors.As(err, &ae) {
		if ae.User != nil {
			s.Login = ae.User
		}
		if ae.Log != "" {
			s.Logf(ae.Level, "%s", ae.Log)
		}
	} else if !errors.Is(err, context.Canceled) {
		s.Logf(errlog.Error, "auth http server %s failed: %v", e.sc.conf.AuthHTTP.Peer, err)
	}
	e.internalError()
}

// proxy connects to the upstream, logs in and relays.
func (e *engine) proxy(res *auth.Result) {
	s := e.s
	conf := e.sc.conf
	deadline := time.Now().Add(e.timeout())
	upTLS, err := e.sc.upTLS.params(res) // mailgate-only (upstream_tls.go)
	if err != nil {
		e.loginError(err, false)
		return
	}
	s.Action = "connecting to upstream"
	NextConnID()
	ctx, cancel := context.WithDeadline(s.Context(), deadline)
	dialStart := time.Now()
	up, err := e.dialUpstream(ctx, res) // host names: upstream_resolve.go
	dialed := time.Now()
	cancel()
	if err != nil {
		e.loginError(err, true)
		return
	}
	if !e.srv.trackUpstream(up) {
		up.Close()
		return
	}
	e.srv.reg.setUpstream(s.ID, up)
	handedOff := false
	defer func() {
		if !handedOff {
			up.Close()
			e.srv.untrack(up)
		}
	}()

	p := &proxy.LoginParams{
		Protocol:         e.sc.proto.Name(),
		Login:            s.Login,
		Pass:             s.Passwd,
		ServerName:       conf.Core.ServerName,
		XClient:          conf.Proxy.XClient,
		SMTPAuth:         conf.Proxy.SMTPAuth,
		ClientIP:         s.Client.Addr(),
		ClientHost:       s.ClientHost,
		XTextLogin:       true,
		PassErrorMessage: conf.Proxy.PassErrorMessage,
		BufferSize:       conf.Proxy.Buffer,
		Deadline:         deadline,
		ProxyProtocol:    int(conf.Proxy.ProxyProtocol),
		Source:           s.Client,
		Dest:             s.Local,
		Tag:              s.Tag,
		ESMTP:            s.ESMTP,
		Helo:             s.Helo,
		AuthNone:         s.AuthMethod == auth.MethodNone,
		SASLMech:         s.upstreamMech,
		TLS:              upTLS,
		IMAPID:           forwardID(conf, s), // mailgate-only (imapid.go)
	}
	if p.Tag == nil {
		p.Tag = []byte("* ")
	}
	if p.AuthNone {
		p.MailFrom, p.RcptTo = s.MailFrom, s.RcptTo
	}
	if s.debug {
		p.Trace = func(step string, line []byte) {
			s.Debugf("upstream login, %s: %q", step, hidePassword(line, s.Passwd))
		}
	}
	s.Action = "reading response from upstream"
	// rl is the connection relayed on: up, or the TLS connection over it.
	// The login's bytes are counted for the access log (sessionlog.go);
	// over TLS the counting goes on through the relay, as bytes on the wire.
	rl, handoff, err := proxy.LoginConn(countConn{up, &e.upSent, &e.upReceived}, p)
	if err != nil {
		e.loginError(err, false)
		return
	}
	wireCounted := true
	if _, ok := rl.(countConn); ok {
		rl, wireCounted = up, false // the relay splices on the socket itself
	}
	e.obs().Upstream(e.labels(), dialed.Sub(dialStart), since(dialed))
	e.login(LoginOK)

	s.Action = ""
	s.LogfNoAction(errlog.Info, "client logged in")
	s.Conn.SetDeadline(time.Time{}) //nolint:errcheck
	up.SetDeadline(time.Time{})     //nolint:errcheck
	if handoff == nil {
		handoff = e.h.LoggedIn()
	}
	// nginx sends the hand-off as the relay's first write to the client.
	s.Action = proxy.ActionSendingClient
	s.Write(handoff)
	if err := e.flush(); err != nil {
		return
	}
	s.Conn.SetWriteDeadline(time.Time{}) //nolint:errcheck
	if e.pos < e.last {
		n, err := rl.Write(e.buf[e.pos:e.last])
		if !wireCounted {
			e.upSent += int64(n)
		}
		if err != nil {
			s.Action = "proxying and sending to upstream"
			s.Logf(errlog.Error, "send() failed %s", errlog.SysErrText(err))
			return
		}
		e.pos, e.last = 0, 0
	}
	s.Action = "proxying"
	e.state(StateRelay)
	// The relay never touches the command buffer or the reply writer
	// again: let an idle relayed session hold neither.
	clientBuffer := max(len(e.buf), e.bufSize, conf.Proxy.Buffer)
	e.releaseBuf()
	s.out.Reset(s.Conn) // holds no buffer; nothing is written after hand-off
	opts := proxy.RelayOptions{
		// nginx relays client bytes through the command buffer (128 bytes
		// for POP3). The bytes on the wire do not depend on the buffer size,
		// only their segmentation does, and a syscall per 128 bytes costs
		// 3x nginx's throughput in Go: never go below proxy_buffer.
		ClientBuffer:   clientBuffer,
		UpstreamBuffer: upstreamBuffer(conf.Proxy.Buffer, s.TLS != nil),
		Timeout:        conf.Proxy.Timeout,
		Shutdown:       e.srv.expired,
	}
	opts.BytesUp, opts.BytesDown = e.srv.reg.counters(s.ID)
	handedOff = true
	e.relay = func(done func()) {
		s.Debugf("relay started")
		if !e.noPark && e.srv.parkAfter() > 0 {
			// An idle session holds no goroutine.
			opts.Parker, opts.ParkAfter = e.srv.parkerOf(), e.srv.parkAfter()
		}
		x := proxy.NewRelayer(s.Conn, rl, opts)
		e.relayer.Store(x)
		x.Run(func(rr proxy.RelayResult) {
			e.srv.guard(e, func() { e.relayEnded(rr, wireCounted) })
			up.Close()
			e.srv.untrack(up)
			done()
		})
	}
}

// upstreamBuffer is the relay's upstream → client buffer: proxy_buffer,
// but at least a full TLS record (16 KiB) towards a TLS client. Each read
// becomes one record: 4 KiB records cost crypto/tls about twice the CPU
// per byte of full ones (issue 11's TLS relay figures). The plaintext is
// the same; only its cut into records differs.
func upstreamBuffer(proxyBuffer int, tlsClient bool) int {
	if tlsClient {
		return max(proxyBuffer, 16<<10)
	}
	return proxyBuffer
}

// relayEnded logs how the relay ended and counts its bytes.
func (e *engine) relayEnded(rr proxy.RelayResult, wireCounted bool) {
	s := e.s
	s.Debugf("relay ended: %d bytes from the client, %d bytes to the client", rr.BytesUp, rr.BytesDown)
	e.obs().Relayed(e.labels(), rr.BytesUp, rr.BytesDown)
	e.received, e.sent = e.received+rr.BytesUp, e.sent+rr.BytesDown
	if !wireCounted {
		e.upSent, e.upReceived = e.upSent+rr.BytesUp, e.upReceived+rr.BytesDown
	}
	e.ending(relayEnd(rr))
	if rr.Panicked {
		panicsRecovered.Add(1)
	}
	if rr.Log != "" {
		if rr.Action != "" {
			s.Action = rr.Action
		}
		s.Logf(rr.Level, "%s", rr.Log)
	}
	if rr.LogDone {
		s.LogfNoAction(errlog.Info, "proxied session done")
	}
}

// loginError logs a failed upstream connect or login and answers the
// client.
func (e *engine) loginError(err error, dialing bool) {
	s := e.s
	e.login(LoginUpstreamError)
	var le *proxy.LoginError
	switch {
	case errors.As(err, &le):
		if le.Action != "" {
			s.Action = le.Action
		}
		if le.Log != "" {
			s.Logf(le.Level, "%s", le.Log)
		}
		if le.Reply != nil {
			s.Write(le.Reply)
			e.flush() //nolint:errcheck
			return
		}
	case errors.Is(err, context.Canceled), errors.Is(err, errNotResolved):
	case errlog.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		s.Action = "reading response from upstream"
		s.Logf(errlog.Info, "upstream timed out (110: Connection timed out)")
	case dialing && errors.Is(err, syscall.ECONNREFUSED):
		// nginx connects without blocking and meets the refusal in recv().
		s.Action = "reading response from upstream"
		s.Logf(errlog.Error, "recv() failed %s", errlog.ErrnoText(syscall.ECONNREFUSED))
	case dialing:
		s.Logf(errlog.Error, "connect() to %s failed %s", s.Upstream, errlog.SysErrText(err))
	default:
		s.Logf(errlog.Error, "%v", err)
	}
	e.internalError()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// tlsInfo feeds the Auth-SSL-* headers.
func tlsInfo(s *Session) *auth.TLSInfo {
	if s.TLS == nil {
		return nil
	}
	ti := &auth.TLSInfo{
		Protocol: tlsVersionName(s.TLS.Version),
		Cipher:   opensslCipherName(s.TLS.CipherSuite),
		Verify:   s.certVerify,
	}
	// The certificate fields exist only when ssl_verify_client is on and
	// the client sent one.
	if s.certVerify != "" && len(s.TLS.PeerCertificates) > 0 {
		c := s.TLS.PeerCertificates[0]
		// OpenSSL's RFC 2253 text; a name it cannot parse is left out,
		// as nginx leaves out an empty one.
		ti.Subject, _ = tlsconf.DNString(c.RawSubject)
		ti.Issuer, _ = tlsconf.DNString(c.RawIssuer)
		// OpenSSL prints whole bytes: serial 1 is "01".
		ti.Serial = strings.ToUpper(hex.EncodeToString(c.SerialNumber.Bytes()))
		if ti.Serial == "" {
			ti.Serial = "00"
		}
		sum := sha1.Sum(c.Raw) //nolint:gosec // nginx's fingerprint is SHA-1
		ti.Fingerprint = hex.EncodeToString(sum[:])
		if s.Conf != nil && s.Conf.AuthHTTP.PassClientCert {
			ti.Cert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
	}
	return ti
}
