package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// Session is one client connection, shared by the engine and the protocol
// handler. Fields the protocols set are grouped below; the engine owns the
// rest.
type Session struct {
	ID     uint64 // nginx's connection number ("*N" in logs)
	Conf   *confparse.Server
	Listen *confparse.Listen
	Conn   net.Conn // the client connection (a *tls.Conn after TLS)

	// Client is the client's address after realip; ClientIP its text as
	// nginx logs it and sends in Client-IP (no port, IPv6 unbracketed).
	Client   netip.AddrPort
	ClientIP string
	// Local is our address of the client connection.
	Local netip.AddrPort

	// TLS is non-nil once the client connection is TLS (implicit or
	// STARTTLS). TLSConfig is the server's TLS config, nil when the server
	// has no certificate loaded (STARTTLS then unavailable).
	TLS       *tls.ConnectionState
	TLSConfig *tls.Config

	// Prepared is the protocol's Preparer result for this server, nil
	// when there is none (tests build sessions without a server).
	Prepared any

	// Log is the session's logger; use s.Logf to get nginx's context suffix.
	Log *logrus.Entry
	// Action is nginx's "while ..." text for log lines ("in auth state").
	Action string

	// Set by the protocol before returning Authenticate.
	Login      []byte
	Passwd     []byte // never logged
	Salt       []byte // APOP/CRAM-MD5 challenge "<R.T@server_name>", nil if none
	AuthMethod string // auth.MethodPlain, ...

	// IMAP: the tag of the authenticating command with its space, nil
	// when it had none (the upstream LOGIN then goes out as "* ").
	Tag []byte
	// IMAP ID (mailgate-only, imapid.go): the fields of the client's
	// last ID command; IDSent says it sent one (ID NIL leaves IDFields nil).
	IDFields []IDField
	IDSent   bool

	// SMTP: ClientHost is filled by the smtp handler's Greet through the
	// resolver; the rest as the client sends HELO/EHLO, MAIL and RCPT.
	ClientHost string // host, "[UNAVAILABLE]" or "[TEMPUNAVAIL]"
	ESMTP      bool   // EHLO seen at least once (sticky)
	Helo       []byte // the last HELO/EHLO argument; nil if none
	MailFrom   []byte // the stored MAIL line (smtp_auth none path)
	RcptTo     []byte // the stored RCPT line (smtp_auth none path)

	// Engine bookkeeping.
	LoginAttempt int    // Auth-Login-Attempt of the last request
	Errors       int    // parse-level invalid commands so far
	Upstream     string // "<Auth-Server>:<Auth-Port>" once a connect was tried

	// ProxyInfo holds the addresses of an inbound PROXY header, nil if none.
	ProxyInfo *auth.ProxyInfo

	// upstreamMech is the SASL mechanism of the upstream login when
	// auth_http accepted OAuth credentials without an Auth-Pass ("" for
	// nginx's logins; sasl_oauth.go).
	upstreamMech string

	out          *replyWriter
	debug        bool // Options.Debug
	startTLSUsed bool
	certVerify   string // Auth-SSL-Verify value, "" when not verifying
	ctx          context.Context
	// Deadline is the single pre-auth `timeout` deadline (from greeting).
	Deadline time.Time
}

// Auth methods, as auth_http's Auth-Method names them.
const (
	MethodPlain    = auth.MethodPlain
	MethodAPOP     = auth.MethodAPOP
	MethodCRAMMD5  = auth.MethodCRAMMD5
	MethodExternal = auth.MethodExternal
	MethodNone     = auth.MethodNone
	// mailgate-only OAuth mechanisms (docs/oauth.md).
	MethodOAuthBearer = auth.MethodOAuthBearer
	MethodXOAuth2     = auth.MethodXOAuth2
)

// Context is cancelled when the server closes (use it for lookups and
// delays in Greet).
func (s *Session) Context() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// Write queues reply bytes for the client; the engine flushes them.
func (s *Session) Write(p []byte) {
	s.out.Write(p) //nolint:errcheck // errors surface at Flush
}

// WriteString queues a reply string.
func (s *Session) WriteString(p string) {
	s.out.WriteString(p) //nolint:errcheck // errors surface at Flush
}

// Flush sends queued replies now.
func (s *Session) Flush() error {
	return s.out.Flush()
}

// Logf logs at nginx level l with nginx's mail context suffix:
// "msg[ while <action>], client: <ip>[ using starttls], server: <listen>[,
// login: "<login>"][, upstream: <up>]".
func (s *Session) Logf(l errlog.Level, format string, args ...any) {
	if !errlog.Enabled(s.Log, l) {
		return // not rendered: the level is off
	}
	errlog.Log(s.Log, l, fmt.Sprintf(format, args...)+s.context(true))
}

// Debugf logs a debug line with the session's context, when the server
// writes debug lines at all (Options.Debug); otherwise it costs nothing.
func (s *Session) Debugf(format string, args ...any) {
	if s.debug {
		s.Logf(errlog.Debug, format, args...)
	}
}

// LogfNoAction is Logf without the "while ..." part (nginx logs "client
// logged in" and "proxied session done" that way).
func (s *Session) LogfNoAction(l errlog.Level, format string, args ...any) {
	if !errlog.Enabled(s.Log, l) {
		return
	}
	errlog.Log(s.Log, l, fmt.Sprintf(format, args...)+s.context(false))
}

func (s *Session) context(withAction bool) string {
	var b strings.Builder
	if withAction && s.Action != "" {
		b.WriteString(" while ")
		b.WriteString(s.Action)
	}
	b.WriteString(", client: ")
	b.WriteString(s.ClientIP)
	if s.startTLSUsed {
		b.WriteString(" using starttls")
	}
	b.WriteString(", server: ")
	if s.Listen != nil {
		b.WriteString(s.Listen.Text)
	}
	// nginx 1.22.1 stops after "server:" when the login is empty, so an
	// smtp_auth none session never shows its upstream (newer nginx does).
	if len(s.Login) == 0 {
		return b.String()
	}
	b.WriteString(`, login: "`)
	b.Write(s.Login)
	b.WriteString(`"`)
	if s.Upstream != "" {
		b.WriteString(", upstream: ")
		b.WriteString(s.Upstream)
	}
	return b.String()
}

// NewTestSession returns a session whose replies go to w, for protocol unit
// tests that drive a Handler without the engine. Log lines are discarded
// unless the caller replaces Log.
func NewTestSession(conf *confparse.Server, w io.Writer) *Session {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return &Session{
		Conf:     conf,
		ClientIP: "127.0.0.1",
		Log:      logrus.NewEntry(l),
		out:      newReplyWriter(w),
	}
}
