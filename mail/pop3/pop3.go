// Package pop3 is the POP3 protocol module: nginx's ngx_mail_pop3_module
// before authentication (greeting, CAPA, USER/PASS, APOP, AUTH, STLS).
// The engine in package mail does the I/O, the auth_http exchange and the
// upstream login.
package pop3

import (
	"strings"

	"mailgate/confparse"
	"mailgate/mail"
)

// Protocol implements mail.Protocol for POP3.
type Protocol struct{}

var (
	_ mail.Protocol    = Protocol{}
	_ mail.Handler     = (*handler)(nil)
	_ mail.LogRedactor = (*handler)(nil)
)

// Name is "pop3".
func (Protocol) Name() string { return confparse.ProtoPOP3 }

// ClientBuffer is nginx's fixed 128-byte POP3 command buffer.
func (Protocol) ClientBuffer(*confparse.Server) int { return 128 }

// NewHandler starts a POP3 session.
func (Protocol) NewHandler(s *mail.Session) mail.Handler {
	c, ok := s.Prepared.(*caps)
	if !ok {
		c = renderCaps(s.Conf)
	}
	return &handler{s: s, caps: c}
}

// Prepare implements mail.Preparer: the CAPA and AUTH replies, once per
// server block.
func (Protocol) Prepare(c *confparse.Server) any { return renderCaps(c) }

// Fixed replies.
const (
	replyOK       = "+OK\r\n"
	replyInvalid  = "-ERR invalid command\r\n"
	replyInternal = "-ERR internal server error\r\n"
	greeting      = "+OK POP3 ready"
)

// caps are the CAPA and AUTH replies of one server block, rendered once.
type caps struct {
	capa, capaSTLS, capaSTLSOnly, authList []byte
}

// saslNames lists the SASL mechanisms in nginx's fixed order; plain also
// turns on LOGIN, APOP is never a SASL mechanism.
func saslNames(m confparse.AuthMethods) []string {
	var n []string
	if m&(confparse.AuthPlain|confparse.AuthLogin) != 0 {
		if m&confparse.AuthPlain != 0 {
			n = append(n, "PLAIN")
		}
		n = append(n, "LOGIN")
	}
	if m&confparse.AuthCRAMMD5 != 0 {
		n = append(n, "CRAM-MD5")
	}
	if m&confparse.AuthExternal != 0 {
		n = append(n, "EXTERNAL")
	}
	// mailgate-only mechanisms, after nginx's own (docs/oauth.md).
	return append(n, mail.MailgateMechanisms(m)...)
}

func renderCaps(c *confparse.Server) *caps {
	var plain, only strings.Builder
	plain.WriteString("+OK Capability list follows\r\n")
	only.WriteString("+OK Capability list follows\r\n")
	for _, it := range c.POP3.Capabilities {
		plain.WriteString(it + "\r\n")
		if !strings.EqualFold(it, "USER") {
			only.WriteString(it + "\r\n")
		}
	}
	names := saslNames(c.POP3.Auth)
	plain.WriteString("SASL")
	for _, n := range names {
		plain.WriteString(" " + n)
	}
	plain.WriteString("\r\n")
	body := plain.String()
	only.WriteString("STLS\r\n.\r\n")

	var al strings.Builder
	al.WriteString("+OK methods supported:\r\n")
	for _, n := range names {
		al.WriteString(n + "\r\n")
	}
	al.WriteString(".\r\n")
	return &caps{
		capa:         []byte(body + ".\r\n"),
		capaSTLS:     []byte(body + "STLS\r\n.\r\n"),
		capaSTLSOnly: []byte(only.String()),
		authList:     []byte(al.String()),
	}
}

// state is the POP3 auth-state machine's state.
type state int

const (
	stateStart state = iota
	stateUser
	// stateSASL: an AUTH exchange is going on; the next line answers its
	// challenge, parsed as arguments (nginx keeps the AUTH command and
	// starts in the argument state).
	stateSASL
)

type handler struct {
	s     *mail.Session
	caps  *caps
	state state
	sasl  mail.SASL
}

// Greet sends "+OK POP3 ready", with the APOP/CRAM-MD5 salt when either is
// enabled.
func (h *handler) Greet() error {
	if h.s.Conf.POP3.Auth&(confparse.AuthAPOP|confparse.AuthCRAMMD5) != 0 {
		h.s.NewSalt()
		h.s.WriteString(greeting + " ")
		h.s.Write(h.s.Salt)
		h.s.WriteString("\r\n")
		return nil
	}
	h.s.WriteString(greeting + "\r\n")
	return nil
}

// Parse reads one command line. A parse-level error also resets the
// state machine to its start, as nginx does.
func (h *handler) Parse(buf []byte) (mail.Command, int, error) {
	cmd, n, err := parse(buf, h.state == stateSASL)
	if err == mail.ErrInvalid {
		h.reset()
	}
	return cmd, n, err
}

// step runs one command in one state.
type step func(h *handler, c *command) (mail.Next, error)

// table is the whole state machine: the commands each state accepts. A
// command missing from its state's row is a handler-level "-ERR invalid
// command" that sends the session back to the start state. During a SASL
// exchange any line is its response (key verbContinue).
var table = map[state]map[verb]step{
	stateStart: {
		verbUSER: (*handler).user,
		verbCAPA: func(h *handler, _ *command) (mail.Next, error) { return h.capa(true) },
		verbAPOP: (*handler).apop,
		verbAUTH: (*handler).auth,
		verbQUIT: (*handler).quit,
		verbNOOP: (*handler).noop,
		verbSTLS: (*handler).stls,
	},
	stateUser: {
		verbPASS: (*handler).pass,
		verbCAPA: func(h *handler, _ *command) (mail.Next, error) { return h.capa(false) },
		verbQUIT: (*handler).quit,
		verbNOOP: (*handler).noop,
	},
	stateSASL: {verbContinue: (*handler).saslResponse},
}

// Exec runs a parsed command in the current state.
func (h *handler) Exec(c mail.Command) (mail.Next, error) {
	cmd := c.(*command)
	v := cmd.verb
	if h.state == stateSASL {
		v = verbContinue
	}
	f := table[h.state][v]
	if f == nil {
		h.reset()
		return mail.Continue, mail.ErrRejected
	}
	next, err := f(h, cmd)
	if err != nil {
		h.reset()
	}
	return next, err
}

// reset returns to the start state, ending any SASL exchange.
func (h *handler) reset() {
	h.state = stateStart
	h.sasl.Reset()
}

func (h *handler) starttlsOnly() bool {
	return h.s.TLS == nil && h.s.Conf.SSL.StartTLS == confparse.StartTLSOnly
}

func (h *handler) user(c *command) (mail.Next, error) {
	if h.starttlsOnly() || len(c.args) != 1 {
		return mail.Continue, mail.ErrRejected
	}
	h.s.Login = append([]byte(nil), c.args[0]...)
	h.state = stateUser
	h.s.WriteString(replyOK)
	return mail.Continue, nil
}

func (h *handler) pass(c *command) (mail.Next, error) {
	if len(c.args) != 1 {
		return mail.Continue, mail.ErrRejected
	}
	h.s.Passwd = append([]byte(nil), c.args[0]...)
	h.s.AuthMethod = mail.MethodPlain
	return mail.Authenticate, nil
}

func (h *handler) capa(stls bool) (mail.Next, error) {
	out := h.caps.capa
	if stls && h.s.TLS == nil {
		switch h.s.Conf.SSL.StartTLS {
		case confparse.StartTLSOn:
			out = h.caps.capaSTLS
		case confparse.StartTLSOnly:
			out = h.caps.capaSTLSOnly
		}
	}
	h.s.Write(out)
	return mail.Continue, nil
}

func (h *handler) apop(c *command) (mail.Next, error) {
	if h.starttlsOnly() || len(c.args) != 2 || h.s.Conf.POP3.Auth&confparse.AuthAPOP == 0 {
		return mail.Continue, mail.ErrRejected
	}
	h.s.Login = append([]byte(nil), c.args[0]...)
	h.s.Passwd = append([]byte(nil), c.args[1]...)
	h.s.AuthMethod = mail.MethodAPOP
	return mail.Authenticate, nil
}

func (h *handler) auth(c *command) (mail.Next, error) {
	if h.starttlsOnly() {
		return mail.Continue, mail.ErrRejected
	}
	if len(c.args) == 0 {
		h.s.Write(h.caps.authList)
		return mail.Continue, nil
	}
	return h.saslStep(h.sasl.Start(h.s, h.s.Conf.POP3.Auth, c.args[0], c.args[1:]))
}

// saslStep sends the exchange's next challenge, or authenticates once it
// is complete.
func (h *handler) saslStep(st mail.SASLStep, err error) (mail.Next, error) {
	if err != nil {
		return mail.Continue, err
	}
	if st.Done() {
		h.reset()
		return mail.Authenticate, nil
	}
	h.state = stateSASL
	h.s.Write(mail.SASLPrompt("+ ", st.Challenge))
	return mail.Continue, nil
}

// saslResponse takes a line that answers a challenge (its first
// argument, as nginx reads it).
func (h *handler) saslResponse(c *command) (mail.Next, error) {
	var resp []byte
	if len(c.args) > 0 {
		resp = c.args[0]
	}
	return h.saslStep(h.sasl.Next(h.s, resp))
}

func (h *handler) quit(*command) (mail.Next, error) {
	h.s.WriteString(replyOK)
	return mail.Close, nil
}

func (h *handler) noop(*command) (mail.Next, error) {
	h.s.WriteString(replyOK)
	return mail.Continue, nil
}

func (h *handler) stls(*command) (mail.Next, error) {
	if h.s.TLS != nil || h.s.TLSConfig == nil || h.s.Conf.SSL.StartTLS == confparse.StartTLSOff {
		return mail.Continue, mail.ErrRejected
	}
	h.s.WriteString(replyOK)
	return mail.StartTLS, nil
}

var (
	_ mail.BufferGrower = (*handler)(nil)
	_ mail.SASLResumer  = (*handler)(nil)
)

// GrowBuffer lets an AUTH of an enabled OAuth mechanism, and the client
// message of its exchange, outgrow the 128-byte buffer (mailgate-only).
func (h *handler) GrowBuffer(pending []byte) int {
	return mail.OAuthBufferFor(&h.sasl, pending, "AUTH", h.s.Conf.POP3.Auth)
}

// ResumeSASL continues the exchange with the engine's step (the OAuth
// error challenge).
func (h *handler) ResumeSASL(st mail.SASLStep) {
	h.sasl.Resume(st)
	h.saslStep(st, nil) //nolint:errcheck // no error: st is a challenge
}

// ErrorReply: POP3 answers every refusal with "-ERR invalid command".
func (h *handler) ErrorReply(error) []byte { return []byte(replyInvalid) }

// InternalError is "-ERR internal server error".
func (h *handler) InternalError() []byte { return []byte(replyInternal) }

// AuthFailed is "-ERR <Auth-Status text>".
func (h *handler) AuthFailed(msg, _ string) []byte { return []byte("-ERR " + msg + "\r\n") }

// AuthReset goes back to the start state after a failure with Auth-Wait.
func (h *handler) AuthReset() { h.reset() }

// CertError is nginx's POP3 reply to a refused client certificate.
func (h *handler) CertError(missing bool) []byte {
	if missing {
		return []byte("-ERR No required SSL certificate\r\n")
	}
	return []byte("-ERR SSL certificate error\r\n")
}

// LoggedIn is nil: the client gets the upstream's reply to PASS.
func (h *handler) LoggedIn() []byte { return nil }

// RedactLog hides passwords in the too-long-command log line: the argument
// of PASS, an AUTH initial response and the SASL responses after it (see
// mail.RedactLines).
func (h *handler) RedactLog(buf []byte) []byte {
	return mail.RedactLines(buf, lineKind, h.state == stateSASL)
}

// lineKind classifies a POP3 line for RedactLog by its command word.
func lineKind(word []byte) mail.LineKind {
	switch verbs[strings.ToUpper(string(word))] {
	case verbPASS:
		return mail.LineSecret
	case verbAUTH:
		return mail.LineAuth
	case verbNone:
		return mail.LineUnknown
	}
	return mail.LinePlain
}
