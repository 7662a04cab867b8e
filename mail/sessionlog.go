package mail

// The session record for the access log (mailgate-only, issue 13,
// docs/access-log.md): what the engine knows of a session when it ends,
// handed to Options.AccessLog. Package mail/accesslog formats and writes
// it. Nothing in a record is a password.

import (
	"io"
	"net"
	"net/netip"
	"time"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// SessionRecord describes one ended session.
type SessionRecord struct {
	ID       uint64
	Conf     *confparse.Server // the server block: its AccessLogs say where to log
	Protocol string            // "pop3", "imap", "smtp"
	// ClientIP is the client's address as the error log names it (after
	// realip); Client its address and port (zero for a unix socket).
	ClientIP string
	Client   netip.AddrPort
	Local    netip.AddrPort // our end of the client connection (zero for a unix socket)
	Listen   string         // the listen entry's text

	Login string // the login the client gave (after Auth-User); "" if none
	// AuthStatus is the last auth_http answer: "OK", or its Auth-Status
	// text for a refusal; "" when auth_http was not asked or failed.
	AuthStatus string
	// Outcome is the last login attempt's outcome, "" if none.
	Outcome  LoginOutcome
	Upstream string // "<Auth-Server>:<Auth-Port>" once a connect was tried

	// Client side: bytes sent to and received from the client (TLS
	// payload, not records); upstream side: the login exchange and the
	// relay. UpstreamTried says whether there was an upstream at all.
	BytesSent, BytesReceived                 int64
	UpstreamBytesSent, UpstreamBytesReceived int64
	UpstreamTried                            bool

	Start, End time.Time
	EndReason  EndReason
	// Status is stream's session status for the outcome (see Status).
	Status int

	TLSProtocol, TLSCipher string // OpenSSL's names; "" without TLS
}

// SessionLogger receives each ended session (Options.AccessLog). It is
// called on the session's goroutine, after its connections are closed,
// for sessions of server blocks that have access logs; it must not block
// for long and must never fail the session.
type SessionLogger interface {
	LogSession(r *SessionRecord)
}

// Session statuses, as ngx_stream_log_module's $status.
const (
	StatusOK          = 200 // logged in and relayed, or ended without an error of either side
	StatusBadRequest  = 400 // the client broke the protocol: max_errors, a too long command, a failed TLS handshake or PROXY header
	StatusForbidden   = 403 // auth_http refused the login (or a client certificate was refused)
	StatusInternal    = 500 // the auth_http exchange failed, or a contained panic
	StatusBadGateway  = 502 // the upstream connect or login failed
	StatusUnavailable = 503 // refused for now: Auth-Wait or a 4xx Auth-Error-Code
)

// sessionStatus maps a session's last login outcome and end reason to a
// status: the login decides when there was one, else how it ended.
func sessionStatus(o LoginOutcome, r EndReason) int {
	switch o {
	case LoginOK:
		return StatusOK
	case LoginInvalid:
		return StatusForbidden
	case LoginTempFail:
		return StatusUnavailable
	case LoginAuthError:
		return StatusInternal
	case LoginUpstreamError:
		return StatusBadGateway
	}
	switch r {
	case EndPanic:
		return StatusInternal
	case EndError:
		return StatusBadRequest
	}
	return StatusOK
}

// login reports a login attempt's outcome to the observer and keeps it
// for the access log.
func (e *engine) login(o LoginOutcome) {
	e.outcome = o
	e.obs().Login(e.labels(), o, e.authTime)
}

// logSession hands the ended session to Options.AccessLog.
func (e *engine) logSession() {
	al := e.srv.opts.AccessLog
	if al == nil || e.sc == nil || len(e.sc.conf.AccessLogs) == 0 {
		return
	}
	s := e.s
	// The session is over: a panic here is contained and counted like
	// one of the session's, and never reaches the process.
	defer func() {
		if v := recover(); v != nil {
			panicsRecovered.Add(1)
			e.srv.logPanic(s, errlog.PanicText(v)+" in access log")
		}
	}()
	r := &SessionRecord{
		ID:                    s.ID,
		Conf:                  e.sc.conf,
		Protocol:              e.sc.proto.Name(),
		ClientIP:              s.ClientIP,
		Client:                s.Client,
		Local:                 s.Local,
		Login:                 string(s.Login),
		AuthStatus:            e.authStatus,
		Outcome:               e.outcome,
		Upstream:              s.Upstream,
		BytesSent:             e.sent,
		BytesReceived:         e.received,
		UpstreamBytesSent:     e.upSent,
		UpstreamBytesReceived: e.upReceived,
		UpstreamTried:         s.Upstream != "",
		Start:                 e.started,
		End:                   time.Now(),
		EndReason:             e.endReason(),
	}
	if s.Listen != nil {
		r.Listen = s.Listen.Text
	}
	r.Status = sessionStatus(r.Outcome, r.EndReason)
	if s.TLS != nil {
		r.TLSProtocol = tlsVersionName(s.TLS.Version)
		r.TLSCipher = opensslCipherName(s.TLS.CipherSuite)
	}
	al.LogSession(r)
}

// countWriter counts the bytes written through it (the client reply
// writer's, so that every reply is counted whoever flushes it).
type countWriter struct {
	w io.Writer
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

// countConn counts an upstream connection's bytes during the login
// exchange (the relay counts its own).
type countConn struct {
	net.Conn
	sent, received *int64
}

func (c countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	*c.received += int64(n)
	return n, err
}

func (c countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	*c.sent += int64(n)
	return n, err
}
