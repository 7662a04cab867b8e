// Package auth is the client of nginx's auth_http protocol: it writes the
// request byte for byte as nginx does and parses the answer with nginx's
// rules (a 1024-byte header block, an optional status line, the headers
// docs/auth_http.md lists).
//
// This file is the contract read by package mail. The client itself lives
// in client.go; it returns errors and leaves logging to its caller.
package auth

import (
	"net/netip"

	"mailgate/mail/errlog"
)

// Methods as sent in Auth-Method.
const (
	MethodPlain    = "plain"
	MethodAPOP     = "apop"
	MethodCRAMMD5  = "cram-md5"
	MethodExternal = "external"
	MethodNone     = "none"
	// mailgate-only (imap_auth/pop3_auth/smtp_auth oauthbearer, xoauth2):
	// Auth-Pass carries the bearer token.
	MethodOAuthBearer = "oauthbearer"
	MethodXOAuth2     = "xoauth2"
)

// Request is everything nginx puts in an auth_http request. Byte slices are
// sent as they are (User, Pass and SSL.Cert %-escaped by the writer).
type Request struct {
	Method       string
	User         []byte
	Pass         []byte
	Salt         []byte // nil: no Auth-Salt header
	Protocol     string // "pop3" | "imap" | "smtp"
	LoginAttempt int    // 1-based
	ClientIP     string // without port, IPv6 unbracketed, after realip

	// ClientHost is sent only for SMTP (HasClientHost true): the resolved
	// name, "[UNAVAILABLE]" or "[TEMPUNAVAIL]".
	HasClientHost bool
	ClientHost    string

	// ProxyProtocol is non-nil when the listener read a PROXY header with
	// addresses.
	ProxyProtocol *ProxyInfo

	// SMTP method "none": the HELO argument and the whole MAIL/RCPT lines
	// without CRLF.
	SMTPHelo, SMTPFrom, SMTPTo []byte

	// TLS is non-nil when the client connection is TLS.
	TLS *TLSInfo

	// Extra are mailgate-only headers (e.g. Auth-IMAP-ID, docs/auth_http.md),
	// sent after nginx's own and before the auth_http_header lines. Names
	// and values must hold no CR or LF.
	Extra [][2]string

	// AuthWait is nginx's per-session auth_wait flag. It is set when this
	// request repeats one that was answered "Auth-Status: WAIT" with no
	// Auth-Wait, or Auth-Wait 0. It does not change the bytes sent, only
	// how the answer is read: while it is set, an answer that is not a
	// failure counts as WAIT again, and a failure with Auth-Wait gives
	// Result.Requery. This was verified with 1.22.1 and HEAD has the same
	// code. Requery sets the flag; engines only pass the request along.
	AuthWait bool

	// AllowHostName (mailgate-only auth_http_resolve) lets Auth-Server be a
	// host name (Result.ServerName) instead of nginx's "sent invalid
	// server address". It changes no byte sent.
	AllowHostName bool
}

// ProxyInfo are the addresses of an inbound PROXY protocol header.
type ProxyInfo struct {
	Addr, Port, ServerAddr, ServerPort string
}

// TLSInfo feeds the Auth-SSL-* headers.
type TLSInfo struct {
	Protocol string // "TLSv1.2"
	Cipher   string // OpenSSL name
	// Verify is empty when ssl_verify_client is off; else SUCCESS,
	// FAILED:reason or NONE.
	Verify                               string
	Subject, Issuer, Serial, Fingerprint string // empty: no client cert
	Cert                                 string // PEM; empty unless auth_http_pass_client_cert
}

// Kind is the outcome of one auth_http exchange (docs/auth_http.md, "Outcome").
type Kind int

const (
	// OK: log in to Server as User/Pass.
	OK Kind = iota
	// Fail: Auth-Status was a failure message (Message); Wait tells whether
	// the session may continue after WaitSeconds.
	Fail
	// Again: Auth-Status: WAIT; send the identical request again after
	// WaitSeconds (0: at once).
	Again
)

// Result is a parsed, validated auth_http answer.
type Result struct {
	Kind        Kind
	Message     string // Fail: the Auth-Status text shown to the client
	ErrorCode   string // Fail, SMTP: Auth-Error-Code, "" for the default
	HasWait     bool   // Auth-Wait present and numeric
	WaitSeconds int

	Server netip.AddrPort // OK: Auth-Server:Auth-Port
	// ServerName (mailgate-only, Request.AllowHostName) is an Auth-Server
	// host name to resolve; Server then holds only the port.
	ServerName string
	// ServerText is "<Auth-Server>:<Auth-Port>" exactly as sent, as nginx
	// logs it in "upstream:".
	ServerText string
	User       []byte // Auth-User override, nil if absent
	Pass       []byte // Auth-Pass override, nil if absent
	// UpstreamSSL is the OK answer's Auth-SSL header as sent ("" if
	// absent): mailgate-only, TLS to the upstream for this login
	// (on|off|starttls), read only with proxy_ssl_auth_header on.
	UpstreamSSL string
	// nginx applies User/Pass for every Kind, not only OK (verified with
	// 1.22.1): after Fail the "login:" in logs is the override, and after
	// Again the repeated request carries them as Auth-User/Auth-Pass.

	// Requery applies to Fail only, and only when the request had AuthWait
	// and the answer had Auth-Wait > 0. nginx logs "client login failed" as
	// usual, but after WaitSeconds it sends the request again
	// (auth.Requery) instead of the failure reply.
	Requery bool
}

// Error is a failure of the exchange itself (connect, timeout, malformed
// answer, missing server). The client gets the internal-error reply.
// Log is nginx's log text ("auth http server 127.0.0.1:9901 sent invalid
// header in response"); empty when nginx logs nothing (early close,
// oversize header block). Level is its nginx level.
type Error struct {
	Log   string
	Level errlog.Level
	Err   error
	// User is the Auth-User override of a complete answer that was then
	// refused (no server, no password...). nginx applies Auth-User as it
	// reads it, so the "login:" of its log line is this one. Nil if none.
	User []byte

	// failover: the server could not be reached or did not answer in
	// time; with auth_http_backup the next server is tried.
	failover bool
}

func (e *Error) Error() string {
	if e.Log != "" {
		return e.Log
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return "auth http error"
}

func (e *Error) Unwrap() error { return e.Err }
