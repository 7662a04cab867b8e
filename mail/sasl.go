package mail

// The SASL exchange POP3 (AUTH), IMAP (AUTHENTICATE) and SMTP (AUTH) share,
// as nginx shares it (ngx_mail_auth_plain, _login, _cram_md5, _external):
// a protocol starts a mechanism with the client's arguments, sends each
// challenge with its own prefix ("+ " or "334 "), hands over each line the
// client answers with, and gets the session's credentials set when the
// exchange is complete. Each mechanism is one file (sasl_*.go) that
// registers itself; a protocol keeps only its prompt and its auth
// directive's set of enabled methods.
//
// Every refusal is handler-level: the step logs nginx's info line and
// returns ErrRejected, which the engine answers with the protocol's
// invalid-command reply without counting it toward max_errors. Decoded
// credentials are never logged.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"math/big"
	"strconv"
	"strings"
	"time"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// Base64 challenges nginx sends for AUTH LOGIN (and EXTERNAL without an
// initial response).
const (
	ChallengeUsername = "VXNlcm5hbWU6" // "Username:"
	ChallengePassword = "UGFzc3dvcmQ6" // "Password:"
)

// DecodeBase64 decodes like nginx's ngx_decode_base64: the standard
// alphabet, padding optional, decoding stops at the first '=' (what follows
// it is ignored), and a length of 4n+1 symbols is invalid.
func DecodeBase64(src []byte) ([]byte, bool) {
	if i := bytes.IndexByte(src, '='); i >= 0 {
		src = src[:i]
	}
	for _, c := range src {
		if !isBase64Symbol(c) {
			return nil, false
		}
	}
	if len(src)%4 == 1 {
		return nil, false
	}
	dst := make([]byte, base64.RawStdEncoding.DecodedLen(len(src)))
	n, err := base64.RawStdEncoding.Decode(dst, src)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}

func isBase64Symbol(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// A Mechanism is one SASL mechanism as nginx runs it.
type Mechanism struct {
	// Name is the mechanism's name in upper case ("PLAIN"); clients may
	// write it in any case.
	Name string
	// Method is the pop3_auth/imap_auth/smtp_auth value that enables it.
	Method confparse.AuthMethods
	// Checked says when nginx refuses the mechanism unless Method is
	// enabled: never (PLAIN and LOGIN always work), only without an
	// initial response (EXTERNAL), or always (CRAM-MD5).
	Checked CheckRule
	// Start begins the exchange. ir is the initial response, nil when the
	// client sent none.
	Start func(s *Session, ir []byte) (SASLStep, error)

	// mailgate-only. AuthMethod is the Session.AuthMethod the exchange
	// sets; ErrorChallenge, when set, is the base64 challenge sent when
	// auth_http refuses those credentials, before the protocol's failure
	// reply (RFC 7628's error exchange; see engine.saslFailure). nginx's
	// mechanisms have none.
	AuthMethod     string
	ErrorChallenge []byte
	// MailgateOnly marks a mechanism nginx does not have: the protocols
	// advertise it, when enabled, after nginx's own (MailgateMechanisms),
	// so that a configuration without it keeps nginx's capability lines.
	MailgateOnly bool
}

// CheckRule is when a mechanism's Method must be enabled.
type CheckRule int

const (
	CheckNever CheckRule = iota
	CheckWithoutIR
	CheckAlways
)

// SASLStep is where an exchange is after a step: the challenge to send
// and the function that takes the client's answer, or Done.
type SASLStep struct {
	// Challenge is the base64 text the protocol sends after its prompt
	// prefix (it may be empty: "+ " alone).
	Challenge []byte
	// Stage names the step the next line answers (Stage* constants).
	Stage string
	next  func(s *Session, resp []byte) (SASLStep, error)
}

// Done reports whether the exchange is complete: the session's Login,
// Passwd and AuthMethod are set for auth_http.
func (st SASLStep) Done() bool { return st.next == nil }

// done is the step of a complete exchange.
var done = SASLStep{}

// ask is a step that sends challenge and passes the answer to next.
func ask(stage string, challenge []byte, next func(s *Session, resp []byte) (SASLStep, error)) SASLStep {
	return SASLStep{Challenge: challenge, Stage: stage, next: next}
}

var (
	mechanisms = map[string]*Mechanism{}
	registered []*Mechanism // in registration order
)

// RegisterMechanism adds a mechanism; each sasl_*.go file registers its
// own in init.
func RegisterMechanism(m *Mechanism) {
	mechanisms[m.Name] = m
	registered = append(registered, m)
}

// MailgateMechanisms are the names of the mailgate-only mechanisms that
// enabled turns on, in the order their files registered them: what the
// protocols advertise after nginx's own mechanisms, whose order and
// rules differ by protocol and stay with each protocol.
func MailgateMechanisms(enabled confparse.AuthMethods) []string {
	var names []string
	for _, m := range registered {
		if m.MailgateOnly && enabled&m.Method != 0 {
			names = append(names, m.Name)
		}
	}
	return names
}

// SASL is one connection's exchange; its zero value has none going on.
type SASL struct {
	step SASLStep
}

// Active reports whether the next client line answers a challenge.
func (x *SASL) Active() bool { return x.step.next != nil }

// Stage is the step the next line answers ("" when none is going on).
func (x *SASL) Stage() string { return x.step.Stage }

// Reset ends the exchange (a refused line, a failed login with Auth-Wait,
// STARTTLS).
func (x *SASL) Reset() { x.step = done }

// Resume continues an exchange with st after its credentials went to
// auth_http (the error challenge of an OAuth mechanism).
func (x *SASL) Resume(st SASLStep) { x.step = st }

// Start begins mechanism name for the AUTH/AUTHENTICATE arguments that
// follow it (none, or one initial response), under the protocol's
// enabled methods. An unknown mechanism, a disabled one, or more than one
// argument is refused.
func (x *SASL) Start(s *Session, enabled confparse.AuthMethods, name []byte, args [][]byte) (SASLStep, error) {
	x.Reset()
	m := mechanisms[strings.ToUpper(string(name))]
	if m == nil || len(args) > 1 {
		return done, ErrRejected
	}
	var ir []byte
	if len(args) == 1 {
		ir = args[0]
	}
	if m.Checked == CheckAlways || m.Checked == CheckWithoutIR && ir == nil {
		if enabled&m.Method == 0 {
			return done, ErrRejected
		}
	}
	return x.took(m.Start(s, ir))
}

// Next passes the client's answer to the current challenge (nginx reads
// only the line's first argument; a line without one is empty).
func (x *SASL) Next(s *Session, resp []byte) (SASLStep, error) {
	if x.step.next == nil {
		return done, ErrRejected
	}
	if resp == nil {
		resp = []byte{}
	}
	return x.took(x.step.next(s, resp))
}

func (x *SASL) took(st SASLStep, err error) (SASLStep, error) {
	if err != nil {
		x.Reset()
		return done, err
	}
	x.step = st
	return st, nil
}

// SASLPrompt renders a challenge line: prefix, challenge, CRLF.
func SASLPrompt(prefix string, challenge []byte) []byte {
	b := make([]byte, 0, len(prefix)+len(challenge)+2)
	b = append(b, prefix...)
	b = append(b, challenge...)
	return append(b, '\r', '\n')
}

// saslInvalid logs nginx's line for a refused SASL answer.
func (s *Session) saslInvalid(what string) error {
	s.Logf(errlog.Info, "client sent %s", what)
	return ErrRejected
}

// decodeSASL decodes a base64 answer, or logs nginx's refusal for mech.
func (s *Session) decodeSASL(resp []byte, mech string) ([]byte, error) {
	b, ok := DecodeBase64(resp)
	if !ok {
		return nil, s.saslInvalid("invalid base64 encoding in AUTH " + mech + " command")
	}
	return b, nil
}

// NewSalt sets the session's APOP/CRAM-MD5 challenge "<R.T@server_name>":
// R a random non-negative 31-bit integer, T the Unix time in seconds.
func (s *Session) NewSalt() {
	r, err := rand.Int(rand.Reader, big.NewInt(1<<31))
	if err != nil {
		r = big.NewInt(time.Now().UnixNano() & (1<<31 - 1))
	}
	name := ""
	if s.Conf != nil {
		name = s.Conf.Core.ServerName
	}
	b := make([]byte, 0, 32+len(name))
	b = append(b, '<')
	b = r.Append(b, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, '@')
	b = append(b, name...)
	b = append(b, '>')
	s.Salt = b
}
