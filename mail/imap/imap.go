// Package imap is the IMAP module: nginx's ngx_mail_imap_module in the
// auth state. It greets, parses commands from the engine's buffer, answers
// CAPABILITY, NOOP, LOGOUT and STARTTLS itself, and collects the
// credentials of LOGIN and AUTHENTICATE (PLAIN, LOGIN, CRAM-MD5, EXTERNAL)
// for the engine's auth_http request. Everything after that (upstream
// LOGIN, relay) belongs to the engine and package proxy.
package imap

import (
	"bytes"
	"errors"

	"mailgate/confparse"
	"mailgate/mail"
)

// Fixed reply texts (docs/imap.md).
const (
	greeting      = "* OK IMAP4 ready\r\n"
	replyOK       = "OK completed\r\n"
	replyNext     = "+ OK\r\n" // a synchronizing literal may follow
	replyBye      = "* BYE\r\n"
	replyInvalid  = "BAD invalid command\r\n"
	replyInternal = "* BAD internal server error\r\n"
	star          = "* "
)

// Protocol is the IMAP mail.Protocol.
type Protocol struct{}

var (
	_ mail.Protocol = Protocol{}
	_ mail.Handler  = (*handler)(nil)
)

// Name is "imap".
func (Protocol) Name() string { return confparse.ProtoIMAP }

// DefaultClientBuffer is imap_client_buffer's default (the page size).
const DefaultClientBuffer = 4096

// ClientBuffer is imap_client_buffer.
func (Protocol) ClientBuffer(c *confparse.Server) int {
	if c == nil || c.IMAP.ClientBuffer <= 0 {
		return DefaultClientBuffer
	}
	return c.IMAP.ClientBuffer
}

// NewHandler starts one connection's state machine.
func (Protocol) NewHandler(s *mail.Session) mail.Handler {
	c, ok := s.Prepared.(*capabilities)
	if !ok {
		c = capabilitiesFor(s.Conf)
	}
	return &handler{s: s, caps: c}
}

// Prepare implements mail.Preparer: the CAPABILITY lines, once per server
// block.
func (Protocol) Prepare(c *confparse.Server) any { return capabilitiesFor(c) }

// state is where the connection is in the auth phase (nginx's mail_state).
type state int

const (
	stateStart state = iota
	// stateSASL: an AUTHENTICATE exchange is going on; the next line
	// answers its challenge.
	stateSASL
)

// step runs one command in one state.
type step func(h *handler, c *command) (mail.Next, error)

// table is every state with the commands it accepts. In the start state
// the six verbs nginx parses; during a SASL exchange the continuation
// line. The parser already refuses anything else (a counted, parse-level
// error).
var table = map[state]map[verb]step{
	stateStart: {
		verbLogin:        (*handler).login,
		verbAuthenticate: (*handler).authenticate,
		verbCapability:   (*handler).capability,
		verbLogout:       (*handler).logout,
		verbNoop:         (*handler).noop,
		verbStartTLS:     (*handler).startTLS,
		verbID:           (*handler).id, // mailgate-only (id.go)
	},
	stateSASL: {verbContinue: (*handler).saslResponse},
}

// handler is one IMAP connection in the auth state.
type handler struct {
	s    *mail.Session
	caps *capabilities

	state state
	sasl  mail.SASL
	// cont: the next line belongs to the AUTHENTICATE exchange (nginx keeps
	// its parser in the argument state and the AUTHENTICATE tag).
	cont bool
	// tag is the tag of error and completion replies, with its space; nil
	// is "* ". Like nginx's s->tag it is set once a tag's space is read and
	// cleared after a reply, except after an authenticating command: then
	// it stays for the NO reply.
	tag []byte
	// quoted is nginx's sticky quoted flag: an unterminated quoted string
	// leaves it set into the following commands.
	quoted bool
	// pass is the parse of an incomplete command, resumed when the engine
	// offers the same bytes with more after them; litSent counts the
	// "+ OK" already sent for it.
	pass    *parsePass
	litSent int
	// bare makes the next error reply the untagged, star-less line that
	// nginx sends for bad base64 at the AUTHENTICATE LOGIN username step.
	bare bool

	// off is where the current command starts in the engine's command
	// buffer, which (like nginx's) is rewound only once every byte in it
	// has been used and no AUTHENTICATE exchange is going on; usedAll says
	// the last command used every byte it was given.
	off     int
	usedAll bool
}

var _ mail.BufferKeeper = (*handler)(nil)

// KeepBuffer keeps the engine's buffer during an AUTHENTICATE exchange, as
// nginx does: the exchange's lines add up in one imap_client_buffer.
func (h *handler) KeepBuffer() bool { return h.cont }

// Greet sends the greeting.
func (h *handler) Greet() error {
	h.s.WriteString(greeting)
	return nil
}

// Parse returns one command from buf. Synchronizing literals are answered
// "+ OK" once each, even when the engine hands over the same bytes again.
func (h *handler) Parse(buf []byte) (mail.Command, int, error) {
	pp := h.pass
	if pp == nil || !pp.resumes(buf) {
		if h.usedAll {
			h.usedAll = false
			if !h.KeepBuffer() {
				h.off = 0
			}
		}
		pp = &parsePass{cont: h.cont, quoted: h.quoted, base: h.off, id: h.idOn()}
		h.litSent = 0
	}
	out := pp.run(buf)

	if pp.tag != nil && !bytes.Equal(pp.tag, h.tag) {
		h.tag = append([]byte(nil), pp.tag...)
	}
	for h.litSent < pp.syncLits {
		h.litSent++
		h.s.WriteString(replyNext)
		if err := h.s.Flush(); err != nil {
			return nil, 0, err
		}
	}

	if out == outNeedMore {
		h.pass = pp
		return nil, 0, mail.ErrNeedMore
	}
	h.pass = nil
	h.litSent = 0
	h.usedAll = pp.n == len(buf)
	h.off += pp.n
	if out == outDone {
		h.quoted = pp.quoted
		c := pp.cmd
		return &c, pp.n, nil
	}
	h.quoted = false
	h.reset()
	if pp.quit {
		return nil, pp.n, &mail.CommandError{Counted: true, Close: true}
	}
	return nil, pp.n, mail.ErrInvalid
}

// Exec runs one command in the current state.
func (h *handler) Exec(cmd mail.Command) (mail.Next, error) {
	c, ok := cmd.(*command)
	if !ok {
		return mail.Continue, errors.New("imap: foreign command")
	}
	fn := table[h.state][c.verb]
	if fn == nil {
		// A verb the state does not take: only reachable if the engine
		// mixes handlers up; refuse like nginx's default branch.
		h.reset()
		return mail.Continue, mail.ErrRejected
	}
	next, err := fn(h, c)
	if err != nil {
		h.reset()
		return next, err
	}
	switch next {
	case mail.Authenticate:
		// nginx leaves its tag alone on the way to auth_http; the
		// upstream LOGIN goes out with it.
		h.reset()
		h.s.Tag = nil
		if h.tag != nil {
			h.s.Tag = append([]byte(nil), h.tag...)
		}
	case mail.StartTLS:
		// The engine empties its buffer for the TLS handshake.
		h.tag = nil
		h.off, h.usedAll = 0, false
		h.pass = nil
	case mail.Continue, mail.Close:
		if !h.cont {
			h.tag = nil
		}
	}
	return next, nil
}

// reset returns to the start state after a refused command; the tag is
// cleared once the error reply has been rendered.
func (h *handler) reset() {
	h.state = stateStart
	h.cont = false
	h.sasl.Reset()
}

// ErrorReply renders "<tag> BAD invalid command" (or "* BAD ..." when no
// tag was read, or the bare quirk line).
func (h *handler) ErrorReply(err error) []byte {
	var b []byte
	if h.bare {
		h.bare = false
		b = []byte(replyInvalid)
	} else {
		b = h.tagged(nil, replyInvalid)
	}
	if !h.cont {
		h.tag = nil
	}
	return b
}

// InternalError is "* BAD internal server error".
func (h *handler) InternalError() []byte { return []byte(replyInternal) }

// AuthFailed is "<tag> NO <msg>".
func (h *handler) AuthFailed(msg, code string) []byte {
	return h.tagged(nil, "NO "+msg+"\r\n")
}

// AuthReset returns to the start state after an Auth-Wait failure.
//
// nginx keeps its tag here, as a pointer into its command buffer: a
// following line that fails before its own tag is read gets whatever bytes
// now sit at that place of the buffer as its "tag". mailgate forgets the
// tag instead, so such a line gets "* BAD invalid command".
func (h *handler) AuthReset() {
	h.tag = nil
	h.reset()
	h.bare = false
	h.pass = nil
	h.litSent = 0
}

// CertError is nginx's IMAP reply to a refused client certificate.
func (h *handler) CertError(missing bool) []byte {
	if missing {
		return []byte("* BYE No required SSL certificate\r\n")
	}
	return []byte("* BYE SSL certificate error\r\n")
}

// LoggedIn is nil: the client gets the upstream's tagged reply.
func (h *handler) LoggedIn() []byte { return nil }

// tagged renders text + tag + out.
func (h *handler) tagged(text []byte, out string) []byte {
	t := h.tag
	if t == nil {
		t = []byte(star)
	}
	b := make([]byte, 0, len(text)+len(t)+len(out))
	b = append(b, text...)
	b = append(b, t...)
	return append(b, out...)
}

func (h *handler) ok(text []byte) {
	h.s.Write(h.tagged(text, replyOK))
}

func (h *handler) tlsActive() bool { return h.s.TLS != nil }

func (h *handler) startTLSMode() confparse.StartTLS {
	if h.s.Conf == nil {
		return confparse.StartTLSOff
	}
	return h.s.Conf.SSL.StartTLS
}

// starttlsOnly: "starttls only" and no TLS yet refuses LOGIN/AUTHENTICATE.
func (h *handler) starttlsOnly() bool {
	return !h.tlsActive() && h.startTLSMode() == confparse.StartTLSOnly
}

func (h *handler) noop(*command) (mail.Next, error) {
	h.ok(nil)
	return mail.Continue, nil
}

func (h *handler) logout(*command) (mail.Next, error) {
	h.ok([]byte(replyBye))
	return mail.Close, nil
}

func (h *handler) capability(*command) (mail.Next, error) {
	text := h.caps.plain
	if !h.tlsActive() {
		switch h.startTLSMode() {
		case confparse.StartTLSOn:
			text = h.caps.starttls
		case confparse.StartTLSOnly:
			text = h.caps.starttlsOnly
		}
	}
	h.ok(text)
	return mail.Continue, nil
}

func (h *handler) startTLS(*command) (mail.Next, error) {
	if h.tlsActive() || h.startTLSMode() == confparse.StartTLSOff || h.s.TLSConfig == nil {
		return mail.Continue, mail.ErrRejected
	}
	h.ok(nil)
	// An ID sent in plain text may have been a man in the middle's: the
	// fields of one sent after the handshake count (imap_id, id.go).
	h.s.IDFields, h.s.IDSent = nil, false
	return mail.StartTLS, nil
}

func (h *handler) login(c *command) (mail.Next, error) {
	if h.starttlsOnly() {
		return mail.Continue, mail.ErrRejected
	}
	if len(c.args) != 2 || len(c.args[0]) == 0 {
		return mail.Continue, mail.ErrRejected
	}
	h.s.Login = append([]byte(nil), c.args[0]...)
	h.s.Passwd = append([]byte{}, c.args[1]...)
	h.s.AuthMethod = mail.MethodPlain
	return mail.Authenticate, nil
}

// authenticate is nginx's AUTHENTICATE: the mechanism and an optional
// initial response, run by the engine's SASL exchange.
func (h *handler) authenticate(c *command) (mail.Next, error) {
	if h.starttlsOnly() || len(c.args) == 0 {
		return mail.Continue, mail.ErrRejected
	}
	var enabled confparse.AuthMethods
	if h.s.Conf != nil {
		enabled = h.s.Conf.IMAP.Auth
	}
	return h.saslStep(h.sasl.Start(h.s, enabled, c.args[0], c.args[1:]))
}

// saslStep sends the exchange's next challenge (untagged) and waits for
// the answer, or authenticates once the exchange is complete.
func (h *handler) saslStep(st mail.SASLStep, err error) (mail.Next, error) {
	if err != nil {
		return mail.Continue, err
	}
	if st.Done() {
		return mail.Authenticate, nil
	}
	h.s.Write(mail.SASLPrompt("+ ", st.Challenge))
	h.state = stateSASL
	h.cont = true
	return mail.Continue, nil
}

// saslResponse takes a line that answers a challenge: its first argument
// (nginx reads only it).
func (h *handler) saslResponse(c *command) (mail.Next, error) {
	var resp []byte
	if len(c.args) > 0 {
		resp = c.args[0]
	}
	// Quirk: nginx answers bad base64 for the LOGIN user name without
	// any tag.
	username := h.sasl.Stage() == mail.StageLoginUsername
	next, err := h.saslStep(h.sasl.Next(h.s, resp))
	if err != nil && username {
		h.bare = true
	}
	return next, err
}

var _ mail.LogRedactor = (*handler)(nil)

var (
	_ mail.BufferGrower = (*handler)(nil)
	_ mail.SASLResumer  = (*handler)(nil)
)

// GrowBuffer lets an AUTHENTICATE of an enabled OAuth mechanism, and the
// client message of its exchange, outgrow imap_client_buffer
// (mailgate-only).
func (h *handler) GrowBuffer(pending []byte) int {
	var enabled confparse.AuthMethods
	if h.s.Conf != nil {
		enabled = h.s.Conf.IMAP.Auth
	}
	// The tag and its space come first.
	i := 0
	for i < len(pending) && i < maxTag && isTagChar(pending[i]) {
		i++
	}
	if i == 0 || i >= len(pending) || pending[i] != ' ' {
		i = -1
	}
	return mail.OAuthBufferFor(&h.sasl, pending[i+1:], "AUTHENTICATE", enabled)
}

// ResumeSASL continues the exchange with the engine's step (the OAuth
// error challenge).
func (h *handler) ResumeSASL(st mail.SASLStep) {
	h.sasl.Resume(st)
	h.saslStep(st, nil) //nolint:errcheck // no error: st is a challenge
}
