package mail

// Observation hooks for metrics (mailgate-only, issue 13): the engine calls
// Options.Observer at a few points of a session's life. The calls are
// made on the session's goroutines and must not block. Nothing passed to
// an observer carries a password.

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"mailgate/mail/errlog"
	"mailgate/proxy"
)

// Labels name where a session runs: the listen entry's text (as in the
// log's "server:") and the protocol module's name. Both are from the
// configuration, so their cardinality is bounded.
type Labels struct {
	Server   string
	Protocol string
}

// LoginOutcome is how one login ended.
type LoginOutcome string

// Login outcomes.
const (
	LoginOK            LoginOutcome = "ok"             // auth_http OK and the upstream login succeeded
	LoginInvalid       LoginOutcome = "invalid"        // auth_http refused the credentials
	LoginTempFail      LoginOutcome = "tempfail"       // refused with Auth-Wait or a 4xx Auth-Error-Code
	LoginAuthError     LoginOutcome = "auth_error"     // the auth_http exchange failed
	LoginUpstreamError LoginOutcome = "upstream_error" // connect or login to the upstream failed
)

// EndReason is why a session ended.
type EndReason string

// Session end reasons.
const (
	EndClientClosed   EndReason = "client_closed"
	EndUpstreamClosed EndReason = "upstream_closed"
	EndTimeout        EndReason = "timeout"
	EndShutdown       EndReason = "shutdown"
	EndError          EndReason = "error"
	EndPanic          EndReason = "panic"
	EndAdmin          EndReason = "admin" // ended through Registry.End (the admin API)
)

// Observer receives the engine's events. Embed NopObserver to implement
// only some of them.
type Observer interface {
	// Accepted: a connection was accepted and its session starts.
	Accepted(l Labels)
	// TLSHandshake: a client TLS handshake (implicit or STARTTLS) ended;
	// failure is "" on success, else a low-cardinality reason (see
	// tlsFailure).
	TLSHandshake(l Labels, failure string)
	// Login: a login attempt's outcome; authHTTP is the time spent in
	// auth_http exchanges for it (0 if none took place).
	Login(l Labels, o LoginOutcome, authHTTP time.Duration)
	// Upstream: the upstream connect and login took connect and login.
	Upstream(l Labels, connect, login time.Duration)
	// Relayed: a relay ended having copied up bytes client → upstream
	// and down bytes upstream → client.
	Relayed(l Labels, up, down int64)
	// Ended: the session is over (its connections are closed).
	Ended(l Labels, r EndReason)
}

// connsRefused counts connections closed at accept because the
// worker_connections limit was reached.
var connsRefused atomic.Uint64

// ConnectionsRefused is how many accepted connections were closed at once
// because the worker_connections limit was reached ("worker_connections
// are not enough"), since the process started.
func ConnectionsRefused() uint64 { return connsRefused.Load() }

// NopObserver implements Observer and does nothing.
type NopObserver struct{}

func (NopObserver) Accepted(Labels)                               {}
func (NopObserver) TLSHandshake(Labels, string)                   {}
func (NopObserver) Login(Labels, LoginOutcome, time.Duration)     {}
func (NopObserver) Upstream(Labels, time.Duration, time.Duration) {}
func (NopObserver) Relayed(Labels, int64, int64)                  {}
func (NopObserver) Ended(Labels, EndReason)                       {}

var _ Observer = NopObserver{}

// observed is the engine's bookkeeping for the observer and the registry.
type observed struct {
	end      EndReason     // why the session ends, if known (ending)
	panicked bool          // guard contained a panic
	killed   atomic.Bool   // ended through the registry (admin API)
	authTime time.Duration // time spent in auth_http exchanges

	// for the access log (sessionlog.go)
	started            time.Time
	outcome            LoginOutcome // the last login attempt's
	authStatus         string       // the last auth_http answer's: "OK" or its Auth-Status
	sent, received     int64        // client side
	upSent, upReceived int64        // upstream side
}

func (e *engine) obs() Observer {
	if o := e.srv.opts.Observer; o != nil {
		return o
	}
	return NopObserver{}
}

func (e *engine) labels() Labels {
	l := Labels{}
	if e.s != nil && e.s.Listen != nil {
		l.Server = e.s.Listen.Text
	}
	if e.sc != nil {
		l.Protocol = e.sc.proto.Name()
	}
	return l
}

// observeState turns state changes into Accepted and Ended, and keeps the
// session's registry entry current.
func (e *engine) observeState(st State) {
	if e.s == nil {
		return
	}
	switch st {
	case StateNew:
		e.started = time.Now()
		e.srv.reg.add(e)
		e.obs().Accepted(e.labels())
	case StateClosed:
		e.srv.reg.remove(e.s.ID)
		e.obs().Ended(e.labels(), e.endReason())
		e.logSession() // mailgate-only access log
	default:
		e.srv.reg.update(e)
	}
}

// ending records why the session ends; the first reason given wins.
func (e *engine) ending(r EndReason) {
	if e.end == "" {
		e.end = r
	}
}

// endReason is the recorded reason, or what the session's state says.
func (e *engine) endReason() EndReason {
	switch {
	case e.panicked:
		return EndPanic
	case e.killed.Load():
		return EndAdmin
	case e.end != "":
		return e.end
	case e.srv.expired.Err() != nil || e.srv.ctx.Err() != nil:
		return EndShutdown
	}
	return EndError
}

// relayEnd maps a relay's result to the session's end reason.
func relayEnd(rr proxy.RelayResult) EndReason {
	switch {
	case rr.Panicked:
		return EndPanic
	case rr.Log == "shutdown timeout":
		return EndShutdown
	case strings.Contains(rr.Log, "timed out"):
		return EndTimeout
	case rr.Log != "":
		return EndError
	case rr.ClientEOF:
		return EndClientClosed
	case rr.LogDone:
		return EndUpstreamClosed
	}
	return "" // closed by our side: Close, Shutdown or the admin API
}

// readEnd maps a failed client read before login to an end reason.
func readEnd(err error) EndReason {
	switch {
	case errlog.IsTimeout(err):
		return EndTimeout
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return EndClientClosed
	}
	return EndError
}

// tlsFailure is a handshake error's low-cardinality reason: "timeout",
// "eof" (the client closed), "not_tls" (HTTP or another protocol),
// "version" (no common protocol version), "cipher" (no cipher suite, key
// share or signature algorithm in common),
// "certificate" (a client certificate refused), else "error".
func tlsFailure(err error) string {
	if errlog.IsTimeout(err) {
		return "timeout"
	}
	if errors.Is(err, io.EOF) {
		return "eof"
	}
	t := handshakeErrorText(err)
	switch {
	case strings.Contains(t, "http request"), strings.Contains(t, "proxy request"), strings.Contains(t, "wrong version number"):
		return "not_tls"
	case strings.Contains(t, "unsupported protocol"):
		return "version"
	case strings.Contains(t, "no shared cipher"), strings.Contains(t, "no suitable"):
		return "cipher" // no cipher, key share or signature algorithm in common
	case strings.Contains(t, "certificate"):
		return "certificate"
	}
	return "error"
}

// authOutcome classifies a refusal.
func authOutcome(hasWait bool, waitSeconds int, code string) LoginOutcome {
	if (hasWait && waitSeconds > 0) || strings.HasPrefix(code, "4") {
		return LoginTempFail
	}
	return LoginInvalid
}

// tlsVerified reports a handshake that succeeded, and the client
// certificate check after it (ok false: refused, "certificate").
func (e *engine) tlsVerified(ok bool) bool {
	if ok {
		e.obs().TLSHandshake(e.labels(), "")
	} else {
		e.obs().TLSHandshake(e.labels(), "certificate")
	}
	return ok
}

// since is time.Since of a start that may be zero (never started).
func since(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return time.Since(t)
}
