package smtp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
	"mailgate/proxy"
)

// --- test doubles ---

// sink collects replies.
type sink struct {
	bytes.Buffer
	flushes int
}

func (s *sink) Write(p []byte) { s.Buffer.Write(p) }
func (s *sink) Flush() error   { s.flushes++; return nil }

// logHook collects log lines as "level: message".
type logHook struct {
	mu    sync.Mutex
	lines []string
}

func (h *logHook) Levels() []logrus.Level { return logrus.AllLevels }
func (h *logHook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	conn := ""
	if c, ok := e.Data[errlog.ConnKey]; ok {
		conn = fmt.Sprintf("*%v ", c)
	}
	h.lines = append(h.lines, errlog.Of(e).String()+": "+conn+e.Message)
	return nil
}

func (h *logHook) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

func testConf() *confparse.Server {
	l := &confparse.Listen{Text: "127.0.0.1:25"}
	c := &confparse.Server{
		Protocol: confparse.ProtoSMTP,
		Listens:  []*confparse.Listen{l},
		Core: confparse.CoreConf{
			Timeout: 60 * time.Second, ServerName: "mx.example.test",
			ResolverTimeout: 30 * time.Second, MaxErrors: 5,
		},
		SMTP:  confparse.SMTPConf{Auth: confparse.AuthPlain | confparse.AuthLogin, ClientBuffer: 4096},
		Proxy: confparse.ProxyConf{XClient: true, Buffer: 4096},
	}
	l.Server = c
	return c
}

type fixture struct {
	s    *mail.Session
	h    *handler
	out  *sink
	logs *logHook
}

func newFixture(c *confparse.Server) *fixture {
	lg := logrus.New()
	lg.SetOutput(&bytes.Buffer{})
	lg.SetLevel(logrus.TraceLevel)
	hook := &logHook{}
	lg.AddHook(hook)
	s := &mail.Session{
		ID:       7,
		Conf:     c,
		Listen:   c.Listens[0],
		Client:   netip.MustParseAddrPort("127.0.0.1:40000"),
		ClientIP: "127.0.0.1",
		Log:      lg.WithField(errlog.ConnKey, uint64(7)),
	}
	out := &sink{}
	h := newHandler(s, out)
	h.resolve = func(*handler) string { return "client.example.net" }
	return &fixture{s: s, h: h, out: out, logs: hook}
}

// authOutcome scripts the engine's answer to Authenticate.
type authOutcome struct {
	fail bool
	msg  string // failure text
	code string // Auth-Error-Code
	wait bool   // Auth-Wait given: the session goes on
}

// engine is a minimal stand-in for the session engine: nginx's fixed
// buffer without compaction (emptied only when every byte was used),
// parse-level errors counted, handler-level ones not, auth outcomes
// scripted.
type engine struct {
	f      *fixture
	buf    []byte // buffer start..last
	pos    int    // parsed so far
	size   int
	errors int
	closed bool
	authed bool
	auth   []authOutcome
	reqs   []*auth.Request
	logins []*proxy.LoginParams
}

func newEngine(f *fixture) *engine {
	return &engine{f: f, size: f.s.Conf.SMTP.ClientBuffer}
}

// feed delivers client bytes (as one read, or several when they do not
// fit) and runs every complete command.
func (e *engine) feed(in string) {
	for !e.closed && !e.authed {
		n := min(e.size-len(e.buf), len(in))
		e.buf = append(e.buf, in[:n]...)
		in = in[n:]
		e.run()
		if len(in) == 0 {
			return
		}
	}
}

func (e *engine) reply(b []byte) { e.f.out.Write(b) }

func (e *engine) run() {
	h := e.f.h
	for !e.closed && !e.authed {
		if e.pos == len(e.buf) {
			e.buf, e.pos = e.buf[:0], 0
			return
		}
		cmd, n, err := h.Parse(e.buf[e.pos:])
		if errors.Is(err, mail.ErrNeedMore) {
			if len(e.buf) == e.size {
				e.reply(h.ErrorReply(mail.ErrTooLong))
				e.closed = true
			}
			return
		}
		e.pos += n
		if err != nil {
			e.errors++
			e.reply(h.ErrorReply(mail.ErrInvalid))
			if e.errors >= e.f.s.Conf.Core.MaxErrors {
				e.closed = true
			}
			continue
		}
		next, err := h.Exec(cmd)
		if err != nil {
			var ce *mail.CommandError
			if errors.As(err, &ce) && ce.Reply != nil {
				e.reply(ce.Reply)
			} else {
				e.reply(h.ErrorReply(err))
			}
			continue
		}
		switch next {
		case mail.Close:
			e.closed = true
		case mail.StartTLS:
			e.f.s.TLS = &tls.ConnectionState{}
		case mail.Authenticate:
			e.authenticate()
		}
	}
}

func nn(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (e *engine) authenticate() {
	h, s := e.f.h, e.f.s
	// What the engine takes from the session for auth_http.
	r := &auth.Request{Method: s.AuthMethod, User: s.Login, Pass: s.Passwd, Salt: s.Salt, Protocol: "smtp",
		HasClientHost: true, ClientHost: s.ClientHost}
	if r.Method == auth.MethodNone {
		r.SMTPHelo, r.SMTPFrom, r.SMTPTo = nn(s.Helo), nn(s.MailFrom), nn(s.RcptTo)
	}
	e.reqs = append(e.reqs, r)
	var o authOutcome
	if len(e.auth) > 0 {
		o, e.auth = e.auth[0], e.auth[1:]
	}
	if !o.fail {
		// ... and for the upstream login.
		p := &proxy.LoginParams{Protocol: "smtp", Login: s.Login, Pass: s.Passwd, ESMTP: s.ESMTP, Helo: s.Helo,
			XClient: s.Conf.Proxy.XClient, SMTPAuth: s.Conf.Proxy.SMTPAuth, ClientHost: s.ClientHost,
			AuthNone: s.AuthMethod == auth.MethodNone, XTextLogin: true, ServerName: s.Conf.Core.ServerName}
		if p.AuthNone {
			p.MailFrom, p.RcptTo = s.MailFrom, s.RcptTo
		}
		e.logins = append(e.logins, p)
		e.authed = true
		e.reply([]byte("<login>"))
		return
	}
	e.reply(h.AuthFailed(o.msg, o.code))
	if !o.wait {
		e.closed = true
		return
	}
	h.AuthReset()
}
