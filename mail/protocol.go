package mail

// This file is the contract between the session engine (package mail) and
// the protocol modules (mail/pop3, mail/imap, mail/smtp): our version of
// nginx's ngx_mail_protocol_t. The engine owns I/O, the fixed command
// buffer, deadlines, max_errors, the auth_http exchange, the upstream
// hand-off and the relay; a protocol owns syntax, states and reply bytes.

import (
	"errors"

	"mailgate/confparse"
)

// What the engine does around a Handler (additive notes, the interface is
// unchanged; see docs/engine.md):
//   - Session.Context() is cancelled when the server closes: use it for
//     resolver lookups and smtp_greeting_delay in Greet.
//   - The single `timeout` deadline starts after Greet returns, is kept
//     across STARTTLS (whose handshake may run until that deadline plus a
//     timeout, as nginx's does) and restarted only after an Auth-Wait
//     failure.
//   - After StartTLS the engine drops bytes pipelined behind the command,
//     runs the handshake and sets Session.TLS; Greet is not called again.
//   - A protocol hands the engine neutral data on the Session (Login,
//     Passwd, Salt, AuthMethod, IMAP's Tag, SMTP's HELO and envelope);
//     the engine alone builds the auth_http request and the upstream
//     login from it.
//   - Before AuthReset the engine sets AuthMethod back to plain; the
//     auth_http request gets Auth-Salt when the method is not plain and
//     Session.Salt is set; Auth-User/Auth-Pass answers overwrite Login and
//     Passwd (also on failures), as nginx does.
//   - Client certificate errors and the PROXY header are answered by the
//     engine; Session.ProxyInfo holds the header's addresses.
//   - Options.NewAuth / AuthClient let protocol tests fake auth_http.

// Protocol is one mail protocol module. It is stateless; per-connection
// state lives in the Handler it makes.
type Protocol interface {
	// Name is the protocol's name as in the protocol directive and
	// Auth-Protocol: "pop3", "imap" or "smtp".
	Name() string
	// ClientBuffer is the size of the fixed command buffer for a server:
	// 128 for POP3, imap_client_buffer, smtp_client_buffer. A command line
	// (with its CRLF) longer than this is a "too long command".
	ClientBuffer(c *confparse.Server) int
	// NewHandler starts the per-connection state machine.
	NewHandler(s *Session) Handler
}

// Command is a parsed client command; its type belongs to the protocol.
type Command any

// Next tells the engine what to do after a command.
type Next int

const (
	// Continue reading commands.
	Continue Next = iota
	// Authenticate: the session's Login/Passwd/Salt/AuthMethod are set;
	// ask auth_http, then log in upstream and relay.
	Authenticate
	// StartTLS: the reply was written; flush it and run the TLS handshake.
	StartTLS
	// Close: flush what was written and close (QUIT, LOGOUT).
	Close
)

// Handler is one connection's protocol state machine. Every method runs on
// the session's goroutine. Replies are written with Session.Write and
// flushed by the engine (Session.Flush may be called where the protocol
// must send before reading more, e.g. an IMAP literal's "+ OK").
type Handler interface {
	// Greet sends the greeting. SMTP resolves the client and applies
	// smtp_greeting_delay here. An error closes the connection.
	Greet() error

	// Parse looks at the unconsumed bytes of the command buffer and returns
	// one complete command and how many bytes it used. It returns
	// ErrNeedMore when the command is not complete yet (the engine reads
	// more, or answers "too long" when the buffer is full), ErrInvalid for a
	// parse-level invalid command (n = bytes to skip, through its LF), or a
	// *CommandError for anything finer.
	Parse(buf []byte) (cmd Command, n int, err error)

	// Exec runs one command in the current state. A handler-level refusal
	// returns ErrRejected (not counted toward max_errors) or a
	// *CommandError.
	Exec(cmd Command) (Next, error)

	// ErrorReply renders the reply for ErrInvalid, ErrRejected and
	// ErrTooLong in the current state (IMAP: with the right tag).
	ErrorReply(err error) []byte
	// InternalError is the reply when auth_http or the upstream fails
	// ("-ERR internal server error", "* BAD internal server error",
	// "451 4.3.2 Internal server error").
	InternalError() []byte
	// AuthFailed renders the reply to an auth_http failure with message msg
	// and (SMTP) Auth-Error-Code code ("" for the default).
	AuthFailed(msg, code string) []byte
	// AuthReset returns to the auth state after a failure with Auth-Wait.
	AuthReset()
	// CertError is the reply to a client certificate that failed
	// verification, or (missing) to none under ssl_verify_client on; the
	// session then ends.
	CertError(missing bool) []byte
	// LoggedIn is the reply to the authenticating command once the
	// upstream login succeeded, when the upstream's own reply is not
	// passed on (SMTP's "235 2.0.0 OK"); POP3 and IMAP pass the
	// upstream's and return nil.
	LoggedIn() []byte
}

// Sentinel errors shared by all protocols.
var (
	// ErrNeedMore: the buffer holds no complete command yet.
	ErrNeedMore = errors.New("mail: command incomplete")
	// ErrInvalid: parse-level invalid command; counts toward max_errors.
	ErrInvalid = errors.New("mail: invalid command")
	// ErrRejected: known command not allowed now; not counted.
	ErrRejected = errors.New("mail: command rejected")
	// ErrTooLong: the command did not fit the buffer; the reply is the
	// protocol's invalid-command reply and the connection closes.
	ErrTooLong = errors.New("mail: too long command")
)

// CommandError is a refusal with its own reply bytes and log line.
type CommandError struct {
	Reply   []byte // nil: use Handler.ErrorReply(ErrRejected or ErrInvalid)
	Counted bool   // counts toward max_errors (parse-level)
	Close   bool   // close after the reply
	Log     string // info-level log message, "" for none (no password!)
}

func (e *CommandError) Error() string {
	if e.Log != "" {
		return e.Log
	}
	return "mail: command refused"
}

// BufferKeeper is an optional Handler extension (added for IMAP). While
// KeepBuffer reports true after a command, the engine must not rewind its
// command buffer to the start even when every byte in it has been used:
// the next bytes go after the used ones, so the lines of one exchange
// share the buffer. nginx does this during an IMAP AUTHENTICATE exchange,
// which makes an exchange longer than imap_client_buffer in total a "too
// long command". Handlers without the method never keep the buffer.
type BufferKeeper interface {
	KeepBuffer() bool
}

// BufferGrower is an optional Handler extension (added for the
// mailgate-only OAuth mechanisms). When the command buffer is full and
// holds an incomplete command, the engine calls GrowBuffer with the
// unconsumed bytes; a size larger than the buffer makes the engine enlarge
// the buffer to that size (keeping its bytes where they are) and read on
// instead of answering "too long command". Handlers without the method,
// or returning 0, keep nginx's fixed buffer. The protocols grow only for
// an enabled OAuth mechanism (mail.OAuthBufferFor), so an nginx.conf
// never sees it.
type BufferGrower interface {
	GrowBuffer(pending []byte) int
}

// SASLResumer is an optional Handler extension (added for the
// mailgate-only OAuth mechanisms). ResumeSASL continues the SASL exchange
// whose credentials auth_http refused with step st: the handler sends
// st's challenge with its prompt prefix and passes the next line to
// SASL.Next, as for any challenge (SASL.Resume then the handler's own
// challenge step). The step ends in a *CommandError carrying the failure
// reply. Handlers without the method get the failure reply at once.
type SASLResumer interface {
	ResumeSASL(st SASLStep)
}

// LogRedactor is an optional Handler extension (added by the engine).
// RedactLog returns the command buffer as it may appear in the "client
// sent too long command" log line, with passwords and SASL responses
// replaced. nginx logs the buffer as it is; mailgate keeps passwords out
// of its logs. Handlers without the method get the buffer logged as it is.
type LogRedactor interface {
	RedactLog(buf []byte) []byte
}

// Preparer is an optional Protocol extension. Prepare renders what depends
// only on a server block's configuration (capability lists, EHLO lines,
// greetings) once, when the server is built, as nginx does at
// configuration time. The engine hands the result to every session of that
// server as Session.Prepared; a reload prepares the new servers afresh.
type Preparer interface {
	Prepare(c *confparse.Server) any
}
