package smtp

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
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
