package mail

// What OAUTHBEARER (sasl_oauthbearer.go) and XOAUTH2 (sasl_xoauth2.go)
// share: the bearer token syntax, the larger command buffer their client
// messages may need, and the error exchange that follows a refusal by
// auth_http. Both are mailgate-only (docs/oauth.md): a mechanism runs only
// when its *_auth value enables it, so an nginx.conf never meets them.

import (
	"bytes"
	"strings"
	"time"

	"mailgate/auth"
	"mailgate/confparse"
)

// OAuthBuffer is the size the command buffer may grow to for the client
// message of an enabled OAuth mechanism: a JWT access token of 8 KiB is
// about 11 KiB in base64.
const OAuthBuffer = 16 << 10

// Stages of the OAuth mechanisms.
const (
	StageOAuthBearer = "oauthbearer"
	StageXOAuth2     = "xoauth2"
	// StageOAuthError: the next line answers the error challenge (%x01
	// for OAUTHBEARER, empty for XOAUTH2); the failure reply follows
	// whatever it is.
	StageOAuthError = "oauth error"
)

// bearerToken returns the token of an "auth" value "Bearer <b64token>"
// (RFC 6750 section 2.1: the scheme in any case, one or more spaces).
func bearerToken(v []byte) ([]byte, bool) {
	const scheme = "bearer"
	if len(v) <= len(scheme) || !strings.EqualFold(string(v[:len(scheme)]), scheme) || v[len(scheme)] != ' ' {
		return nil, false
	}
	tok := bytes.TrimLeft(v[len(scheme):], " ")
	if len(tok) == 0 {
		return nil, false
	}
	i := 0
	for i < len(tok) && isB64TokenChar(tok[i]) {
		i++
	}
	if i == 0 {
		return nil, false
	}
	for j := i; j < len(tok); j++ {
		if tok[j] != '=' {
			return nil, false
		}
	}
	return tok, true
}

// isB64TokenChar: RFC 6750's b64token characters before the '=' padding.
func isB64TokenChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// isOAuthMethod reports whether m is an OAuth Auth-Method.
func isOAuthMethod(m string) bool {
	return m == auth.MethodOAuthBearer || m == auth.MethodXOAuth2
}

// OAuthCommand reports whether line (the unconsumed bytes of a command
// that did not fit the buffer, without an IMAP tag) starts with verb, one
// or more spaces and the name of an OAuth mechanism enabled in enabled,
// followed by a space or the line's end.
func OAuthCommand(line []byte, verb string, enabled confparse.AuthMethods) bool {
	if enabled&confparse.AuthMailgateOnly == 0 || len(line) <= len(verb) ||
		!strings.EqualFold(string(line[:len(verb)]), verb) || line[len(verb)] != ' ' {
		return false
	}
	rest := bytes.TrimLeft(line[len(verb):], " ")
	for _, m := range mechanisms {
		if m.AuthMethod == "" || enabled&m.Method == 0 || len(rest) <= len(m.Name) {
			continue
		}
		if strings.EqualFold(string(rest[:len(m.Name)]), m.Name) {
			switch rest[len(m.Name)] {
			case ' ', '\r', '\n':
				return true
			}
		}
	}
	return false
}

// OAuthBufferFor is a protocol's BufferGrower rule: OAuthBuffer while the
// exchange x waits for an OAuth client message, or when the pending
// command (tag removed) is verb with an enabled OAuth mechanism; else 0.
func OAuthBufferFor(x *SASL, pending []byte, verb string, enabled confparse.AuthMethods) int {
	if x.Active() {
		if st := x.Stage(); st == StageOAuthBearer || st == StageXOAuth2 {
			return OAuthBuffer
		}
		return 0
	}
	if OAuthCommand(pending, verb, enabled) {
		return OAuthBuffer
	}
	return 0
}

// growBuffer lets an optional BufferGrower enlarge a full command buffer
// that holds an incomplete command. It reports whether the buffer grew.
func (e *engine) growBuffer() bool {
	g, ok := e.h.(BufferGrower)
	if !ok {
		return false
	}
	n := g.GrowBuffer(e.buf[e.pos:e.last])
	if n <= len(e.buf) {
		return false
	}
	// The used bytes stay where they are: a BufferKeeper's offsets point
	// into the buffer.
	nb := make([]byte, n)
	copy(nb, e.buf[:e.last])
	e.replaceBuf(nb)
	return true
}

// saslFailure answers an auth_http refusal of OAuth credentials with the
// mechanism's error challenge when the handler can resume its exchange
// (SASLResumer): the challenge goes out now, and the failure reply, as
// nginx would have sent it, answers the client's next line. Auth-Wait
// still delays the answer (before the challenge) and keeps the session;
// without it the session ends after the failure reply, as in nginx.
// handled is false when the credentials came from elsewhere: the engine
// then answers as nginx does. goOn is authenticate's result.
func (e *engine) saslFailure(res *auth.Result) (goOn, handled bool) {
	s := e.s
	r, ok := e.h.(SASLResumer)
	if !ok || !isOAuthMethod(s.AuthMethod) {
		return false, false
	}
	var m *Mechanism
	for _, c := range mechanisms {
		if c.AuthMethod == s.AuthMethod && c.ErrorChallenge != nil {
			m = c
		}
	}
	if m == nil {
		return false, false
	}
	wait := res.HasWait && res.WaitSeconds > 0
	if wait && !e.sleep(time.Duration(res.WaitSeconds)*time.Second) {
		return false, true
	}
	failure := e.h.AuthFailed(res.Message, res.ErrorCode)
	if wait {
		s.AuthMethod = auth.MethodPlain
		e.h.AuthReset()
	}
	r.ResumeSASL(ask(StageOAuthError, m.ErrorChallenge, func(*Session, []byte) (SASLStep, error) {
		return done, &CommandError{Reply: failure, Close: !wait}
	}))
	s.Deadline = time.Now().Add(e.timeout())
	s.Action = "in auth state"
	return e.flush() == nil, true
}

// keepToken is the upstream password of OAuth credentials that auth_http
// accepted without an Auth-Pass: the client's token, which the upstream
// login then presents with the client's mechanism (Session.upstreamMech).
func (s *Session) keepToken(method string, pass []byte) []byte {
	if pass != nil || !isOAuthMethod(method) {
		return pass
	}
	s.upstreamMech = strings.ToUpper(method)
	return s.Passwd
}
