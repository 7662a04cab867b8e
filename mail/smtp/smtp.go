// Package smtp is the SMTP module of the mail proxy: nginx's
// ngx_mail_smtp_module as seen on the wire. It resolves the client before
// the greeting (resolver), applies smtp_greeting_delay, greets, parses
// commands from the engine's fixed buffer and runs the auth state: HELO,
// EHLO, AUTH (PLAIN, LOGIN, CRAM-MD5, EXTERNAL), the `smtp_auth none` path
// (MAIL stored, RCPT authenticates), RSET, NOOP, QUIT and STARTTLS.
//
// The engine (package mail) owns the I/O, the buffer, deadlines,
// max_errors, auth_http and the upstream; this package owns syntax, states
// and reply bytes (see mail.Handler).
package smtp

import (
	"errors"
	"strings"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
)

// Fixed replies (docs/smtp.md).
const (
	replyOK              = "250 2.0.0 OK\r\n"
	replyAuthOK          = "235 2.0.0 OK\r\n"
	replyBye             = "221 2.0.0 Bye\r\n"
	replyStartTLS        = "220 2.0.0 Start TLS\r\n"
	replyInvalidCommand  = "500 5.5.1 Invalid command\r\n"
	replyInvalidPipeline = "503 5.5.0 Improper use of SMTP command pipelining\r\n"
	replyInvalidArgument = "501 5.5.4 Invalid argument\r\n"
	replyAuthRequired    = "530 5.7.1 Authentication required\r\n"
	replyBadSequence     = "503 5.5.1 Bad sequence of commands\r\n"
	replyInternalError   = "451 4.3.2 Internal server error\r\n"
	defaultAuthErrorCode = "535 5.7.0"
)

// Values of Session.ClientHost when the client has no usable name.
const (
	HostUnavailable = "[UNAVAILABLE]"
	HostTempUnavail = "[TEMPUNAVAIL]"
)

// Protocol is the SMTP mail.Protocol.
type Protocol struct{}

var (
	_ mail.Protocol = Protocol{}
	_ mail.Handler  = (*handler)(nil)
)

// Name is "smtp".
func (Protocol) Name() string { return confparse.ProtoSMTP }

// ClientBuffer is smtp_client_buffer.
func (Protocol) ClientBuffer(c *confparse.Server) int { return c.SMTP.ClientBuffer }

// NewHandler starts one connection's state machine.
func (Protocol) NewHandler(s *mail.Session) mail.Handler {
	return newHandler(s, s)
}

// replies is where a handler writes: the session, or a test double.
type replies interface {
	Write(p []byte)
	Flush() error
}

// state is the auth-state sub-state (nginx's mail_state).
type state uint8

const (
	stateStart state = iota // commands
	stateSASL               // an AUTH exchange: the next line answers its challenge
)

// step runs one command in one state.
type step func(h *handler, c *command) (mail.Next, error)

// table is the whole state machine: for each state, the commands it
// accepts. During a SASL exchange every line is a continuation
// (verbContinue). A known verb missing from stateStart's row does not exist: the
// parser only produces the verbs listed there.
var table = map[state]map[verb]step{
	stateStart: {
		verbHELO:     (*handler).cmdHelo,
		verbEHLO:     (*handler).cmdHelo,
		verbAUTH:     (*handler).cmdAuth,
		verbQUIT:     (*handler).quit,
		verbMAIL:     (*handler).cmdMail,
		verbRCPT:     (*handler).rcpt,
		verbRSET:     (*handler).rset,
		verbNOOP:     (*handler).noop,
		verbSTARTTLS: (*handler).starttls,
		verbVRFY:     (*handler).refuse,
		verbEXPN:     (*handler).refuse,
		verbHELP:     (*handler).refuse,
	},
	stateSASL: {verbContinue: (*handler).saslResponse},
}

// handler is one connection's SMTP state machine.
type handler struct {
	s    *mail.Session
	out  replies
	conf *confparse.Server
	tmpl *templates

	state state
	sasl  mail.SASL

	// seen holds the bytes of the engine's buffer already consumed since it
	// was last emptied; window is seen plus the unconsumed bytes at the last
	// Parse. nginx logs a rejected MAIL with the whole buffer.
	seen   []byte
	window []byte

	// resolve is the client resolver; tests replace it.
	resolve func(h *handler) string
}

func newHandler(s *mail.Session, out replies) *handler {
	tmpl, ok := s.Prepared.(*templates)
	if !ok {
		tmpl = buildTemplates(s.Conf)
	}
	return &handler{
		s:       s,
		out:     out,
		conf:    s.Conf,
		tmpl:    tmpl,
		resolve: resolveClient,
	}
}

func (h *handler) write(p string) { h.out.Write([]byte(p)) }

// Parse implements mail.Handler.
func (h *handler) Parse(buf []byte) (mail.Command, int, error) {
	cmd, n, err := parseLine(buf, h.state != stateStart)
	if errors.Is(err, mail.ErrNeedMore) {
		return nil, 0, err
	}
	if cmd != nil && cmd.verb == verbMAIL {
		h.window = append(append(h.window[:0], h.seen...), buf...)
	}
	if n == len(buf) {
		h.seen = h.seen[:0]
	} else {
		h.seen = append(h.seen, buf[:n]...)
	}
	if err != nil {
		// A malformed line resets any SASL exchange (nginx: mail_state =
		// start on an invalid command).
		h.reset()
		return nil, n, err
	}
	return cmd, n, nil
}

// Exec implements mail.Handler.
func (h *handler) Exec(c mail.Command) (mail.Next, error) {
	cmd, ok := c.(*command)
	if !ok {
		return mail.Continue, mail.ErrInvalid
	}
	act := table[h.state][cmd.verb]
	if act == nil {
		h.reset()
		return mail.Continue, mail.ErrInvalid
	}
	next, err := act(h, cmd)
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

// ErrorReply implements mail.Handler: SMTP has one invalid-command reply.
func (h *handler) ErrorReply(error) []byte { return []byte(replyInvalidCommand) }

// InternalError implements mail.Handler.
func (h *handler) InternalError() []byte { return []byte(replyInternalError) }

// AuthFailed implements mail.Handler: "<Auth-Error-Code or 535 5.7.0> msg".
func (h *handler) AuthFailed(msg, code string) []byte {
	if code == "" {
		code = defaultAuthErrorCode
	}
	b := make([]byte, 0, len(code)+len(msg)+3)
	b = append(b, code...)
	b = append(b, ' ')
	b = append(b, msg...)
	return append(b, '\r', '\n')
}

// CertError implements mail.Handler.
func (h *handler) CertError(missing bool) []byte {
	if missing {
		return []byte("421 4.7.1 No required SSL certificate\r\n")
	}
	return []byte("421 4.7.1 SSL certificate error\r\n")
}

// LoggedIn implements mail.Handler: nginx answers an authenticated session
// with its own 235 and throws the upstream's away.
func (h *handler) LoggedIn() []byte { return []byte(replyAuthOK) }

// AuthReset implements mail.Handler: back to the start state. Stored HELO,
// MAIL and the esmtp flag stay (a later RCPT reuses the stored MAIL).
func (h *handler) AuthReset() {
	h.reset()
}

// --- commands in the start state ---

func (h *handler) cmdHelo(c *command) (mail.Next, error) {
	if len(c.Args) != 1 {
		h.write(replyInvalidArgument)
		return mail.Continue, nil
	}
	h.s.Helo = c.Args[0]
	h.s.MailFrom, h.s.RcptTo = nil, nil
	if c.verb == verbHELO {
		h.out.Write(h.tmpl.helo)
		return mail.Continue, nil
	}
	h.s.ESMTP = true
	h.out.Write(h.tmpl.ehlo(h.conf.SSL.StartTLS, h.s.TLS != nil))
	return mail.Continue, nil
}

func (h *handler) starttlsOnly() bool {
	return h.conf.SSL.StartTLS == confparse.StartTLSOnly && h.s.TLS == nil
}

func (h *handler) cmdAuth(c *command) (mail.Next, error) {
	if h.starttlsOnly() {
		return mail.Continue, mail.ErrRejected
	}
	if len(c.Args) == 0 {
		h.write(replyInvalidArgument)
		return mail.Continue, nil
	}
	return h.saslStep(h.sasl.Start(h.s, h.conf.SMTP.Auth, c.Args[0], c.Args[1:]))
}

// saslStep sends the exchange's next "334" challenge, or authenticates
// once the exchange is complete.
func (h *handler) saslStep(st mail.SASLStep, err error) (mail.Next, error) {
	if err != nil {
		return mail.Continue, err
	}
	if st.Done() {
		h.reset()
		return mail.Authenticate, nil
	}
	h.state = stateSASL
	h.out.Write(mail.SASLPrompt("334 ", st.Challenge))
	return mail.Continue, nil
}

var (
	_ mail.BufferGrower = (*handler)(nil)
	_ mail.SASLResumer  = (*handler)(nil)
)

// GrowBuffer lets an AUTH of an enabled OAuth mechanism, and the client
// message of its exchange, outgrow smtp_client_buffer (mailgate-only).
func (h *handler) GrowBuffer(pending []byte) int {
	return mail.OAuthBufferFor(&h.sasl, pending, "AUTH", h.conf.SMTP.Auth)
}

// ResumeSASL continues the exchange with the engine's step (the OAuth
// error challenge).
func (h *handler) ResumeSASL(st mail.SASLStep) {
	h.sasl.Resume(st)
	h.saslStep(st, nil) //nolint:errcheck // no error: st is a challenge
}

// saslResponse takes a line that answers a challenge (its first
// argument, as nginx reads it).
func (h *handler) saslResponse(c *command) (mail.Next, error) {
	var resp []byte
	if len(c.Args) > 0 {
		resp = c.Args[0]
	}
	return h.saslStep(h.sasl.Next(h.s, resp))
}

func (h *handler) quit(*command) (mail.Next, error) {
	h.write(replyBye)
	return mail.Close, nil
}

func (h *handler) cmdMail(c *command) (mail.Next, error) {
	if h.conf.SMTP.Auth&confparse.AuthNone == 0 {
		// nginx logs the whole buffer; mailgate hides credentials in it
		// as in the too-long-command line (RedactLog).
		h.s.Logf(errlog.Info, "client was rejected: \"%s\"", showCRLF(h.RedactLog(h.window)))
		h.write(replyAuthRequired)
		return mail.Continue, nil
	}
	if len(h.s.MailFrom) > 0 {
		h.write(replyBadSequence)
		return mail.Continue, nil
	}
	if len(c.Args) == 0 {
		h.write(replyInvalidArgument)
		return mail.Continue, nil
	}
	h.s.MailFrom = c.Line
	// Newer nginx (1.29.1, CVE-2025-53859): a MAIL accepted under `none`
	// drops credentials of an earlier failed AUTH.
	h.s.Login = nil
	h.s.Passwd = nil
	h.write(replyOK)
	return mail.Continue, nil
}

func (h *handler) rcpt(c *command) (mail.Next, error) {
	if len(h.s.MailFrom) == 0 {
		h.write(replyBadSequence)
		return mail.Continue, nil
	}
	if len(c.Args) == 0 {
		h.write(replyInvalidArgument)
		return mail.Continue, nil
	}
	h.s.RcptTo = c.Line
	h.s.AuthMethod = mail.MethodNone
	return mail.Authenticate, nil
}

func (h *handler) rset(*command) (mail.Next, error) {
	h.s.MailFrom, h.s.RcptTo = nil, nil
	h.write(replyOK)
	return mail.Continue, nil
}

func (h *handler) noop(*command) (mail.Next, error) {
	h.write(replyOK)
	return mail.Continue, nil
}

func (h *handler) starttls(*command) (mail.Next, error) {
	if h.s.TLS != nil || h.s.TLSConfig == nil || h.conf.SSL.StartTLS == confparse.StartTLSOff {
		return mail.Continue, mail.ErrRejected
	}
	// RFC 3207: forget what the client said before STARTTLS.
	h.s.Helo, h.s.MailFrom, h.s.RcptTo = nil, nil, nil
	h.seen = h.seen[:0]
	h.write(replyStartTLS)
	return mail.StartTLS, nil
}

// refuse answers VRFY, EXPN and HELP: known, never allowed, not counted.
func (h *handler) refuse(*command) (mail.Next, error) {
	return mail.Continue, mail.ErrRejected
}

// showCRLF renders bytes for a log line as nginx does for rejected
// commands: CR and LF become '_'.
func showCRLF(b []byte) string {
	out := []byte(string(b))
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = '_'
		}
	}
	return string(out)
}

// --- replies built once per server ---

// templates are the per-server reply bytes (nginx builds them at
// configuration time).
type templates struct {
	greeting     []byte // "220 <server_name> ESMTP ready"
	helo         []byte // "250 <server_name>"
	capability   []byte // EHLO reply
	starttlsCap  []byte // EHLO reply with STARTTLS (starttls on)
	starttlsOnly []byte // EHLO reply for starttls only: no AUTH, STARTTLS
}

// Prepare implements mail.Preparer: the greeting, HELO and EHLO replies,
// once per server block.
func (Protocol) Prepare(c *confparse.Server) any { return buildTemplates(c) }

func buildTemplates(c *confparse.Server) *templates {
	name := c.Core.ServerName
	t := &templates{
		greeting: []byte("220 " + name + " ESMTP ready\r\n"),
		helo:     []byte("250 " + name + "\r\n"),
	}
	lines := append([]string{name}, c.SMTP.Capabilities...)
	var mechs []string
	for _, m := range []struct {
		bit  confparse.AuthMethods
		name string
	}{
		{confparse.AuthPlain, "PLAIN"},
		{confparse.AuthLogin, "LOGIN"},
		{confparse.AuthCRAMMD5, "CRAM-MD5"},
		{confparse.AuthExternal, "EXTERNAL"},
	} {
		if c.SMTP.Auth&m.bit != 0 {
			mechs = append(mechs, m.name)
		}
	}
	// mailgate-only mechanisms, after nginx's own (docs/oauth.md).
	mechs = append(mechs, mail.MailgateMechanisms(c.SMTP.Auth)...)
	withAuth := lines
	if len(mechs) > 0 {
		withAuth = append(append([]string{}, lines...), "AUTH "+strings.Join(mechs, " "))
	}
	t.capability = render(withAuth)
	t.starttlsCap = render(append(append([]string{}, withAuth...), "STARTTLS"))
	t.starttlsOnly = render(append(append([]string{}, lines...), "STARTTLS"))
	return t
}

// render makes a multi-line 250 reply.
func render(lines []string) []byte {
	var b []byte
	for i, l := range lines {
		if i == len(lines)-1 {
			b = append(b, "250 "...)
		} else {
			b = append(b, "250-"...)
		}
		b = append(b, l...)
		b = append(b, '\r', '\n')
	}
	return b
}

func (t *templates) ehlo(mode confparse.StartTLS, tls bool) []byte {
	if !tls {
		switch mode {
		case confparse.StartTLSOn:
			return t.starttlsCap
		case confparse.StartTLSOnly:
			return t.starttlsOnly
		}
	}
	return t.capability
}
