// Package proxy talks to the upstream mail server once auth_http said yes:
// the PROXY protocol header, the per-protocol login (POP3 USER/PASS, IMAP
// LOGIN with literals, SMTP EHLO/XCLIENT/HELO/AUTH/MAIL/RCPT), then the
// two-way relay.
//
// This file is the contract read by package mail; proxy never imports mail.
package proxy

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"mailgate/mail/errlog"
	"mailgate/mail/park"
)

// LoginParams is what the upstream login needs to know about the session.
type LoginParams struct {
	Protocol string // "pop3" | "imap" | "smtp"
	Login    []byte // after any Auth-User override
	Pass     []byte // after any Auth-Pass override; nil if none known
	// Tag is the IMAP tag of the client's LOGIN/AUTHENTICATE command with
	// its trailing space ("a2 ").
	Tag []byte

	ServerName string // server_name: EHLO/HELO sent to SMTP upstreams

	// SMTP.
	ESMTP      bool   // the client used EHLO at least once
	Helo       []byte // client's HELO/EHLO argument; nil if none sent
	XClient    bool
	SMTPAuth   bool   // proxy_smtp_auth
	AuthNone   bool   // the session is on the smtp_auth none path
	MailFrom   []byte // whole stored MAIL line without CRLF (none path)
	RcptTo     []byte // whole stored RCPT line without CRLF (none path)
	ClientIP   netip.Addr
	ClientHost string // XCLIENT NAME: host, [UNAVAILABLE] or [TEMPUNAVAIL]
	// XTextLogin selects newer nginx's xtext encoding of XCLIENT LOGIN=.
	XTextLogin bool

	PassErrorMessage bool
	BufferSize       int       // proxy_buffer
	Deadline         time.Time // the single `timeout` timer of the login dialog

	// Trace, if set, sees each step of the login for debug logging: the
	// action and the line sent (a line with a password is replaced by a
	// note), and each complete reply as "upstream replied". The caller
	// must not keep the bytes.
	Trace func(step string, line []byte)

	// PROXY protocol towards the upstream: 0 off, 1 v1, 2 v2.
	ProxyProtocol int
	// Source is the client address (after realip), Dest nginx's local
	// address of the client connection. Invalid Source: "PROXY UNKNOWN".
	Source, Dest netip.AddrPort

	// SASLMech (mailgate-only) is "XOAUTH2" or "OAUTHBEARER" when the
	// client logged in with that mechanism and auth_http sent no
	// Auth-Pass: the upstream login then presents Pass (the client's
	// token) for Login with the same mechanism (login_oauth.go) instead
	// of LOGIN, USER/PASS or AUTH PLAIN.
	SASLMech string

	// TLS (mailgate-only, upstream_tls.go): TLS to the upstream, from the
	// first byte or by STARTTLS; nil for nginx's plain connection. Use
	// LoginConn, which returns the connection to relay on.
	TLS *UpstreamTLS

	// IMAPID (mailgate-only, imap_forward_id) is the parameter list of an
	// ID command ("(...)" or "NIL") sent to an IMAP upstream after its
	// greeting and before the login (login_id.go); nil sends none.
	IMAPID []byte
}

// LoginError is a failed upstream login.
//
// Reply is non-nil only when the upstream answered wrongly and
// proxy_pass_error_message is on: the whole buffered reply to relay to the
// client verbatim. Otherwise the client gets the protocol's internal error.
// Log is nginx's log message ("upstream sent invalid response: \"...\"",
// "upstream timed out (110: Connection timed out)"), Level its level name
// and Action the "while ..." action text.
type LoginError struct {
	Reply  []byte
	Log    string
	Level  errlog.Level
	Action string
	Err    error
}

func (e *LoginError) Error() string {
	if e.Log != "" {
		return e.Log
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return "upstream login failed"
}

func (e *LoginError) Unwrap() error { return e.Err }

// RelayOptions configure the relay after hand-off.
type RelayOptions struct {
	ClientBuffer   int           // client→upstream buffer (protocol's client buffer)
	UpstreamBuffer int           // upstream→client buffer (proxy_buffer)
	Timeout        time.Duration // proxy_timeout, re-armed by client activity only

	// Added by package proxy (additive): when Shutdown is done (worker
	// shutdown: worker_shutdown_timeout expired) the relay closes both
	// connections and reports nginx's "shutdown timeout" (info, while
	// proxying). Nil: never. No goroutine is spent on it.
	Shutdown context.Context

	// mailgate-only (issue 13): if set, the relay adds the bytes it
	// copies client → upstream (BytesUp) and upstream → client
	// (BytesDown) as it goes, for a live view of the session.
	BytesUp, BytesDown *atomic.Int64

	// Parker, if set, parks a direction idle for ParkAfter (0: 200 ms;
	// mail/park): an idle relayed session then holds no goroutine.
	Parker    *park.Parker
	ParkAfter time.Duration
}

// RelayResult says how the relay ended, for the session-done log lines.
type RelayResult struct {
	BytesUp   int64 // client → upstream
	BytesDown int64 // upstream → client

	// Added by package proxy (additive): nginx's log line for how the
	// relay ended, if any. Log is e.g. "client timed out (110: Connection
	// timed out)" or "recv() failed (104: Connection reset by peer)",
	// Level its nginx level ("info" or "error") and Action its "while ..."
	// text ("proxying", "proxying and reading from upstream", ...).
	// LogDone says nginx then logs "proxied session done" (EOF and recv()
	// errors; not after timeouts or send() errors).
	Log     string
	Level   errlog.Level
	Action  string
	LogDone bool
	// Panicked: a relay direction panicked and was contained; Log holds
	// errlog.PanicText at LevelAlert.
	Panicked bool
	// ClientEOF: the client closed its side (end of file) before the
	// session ended (mailgate-only, issue 13: the session's end reason).
	ClientEOF bool
}
