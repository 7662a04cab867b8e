package imap

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"

	"mailgate/confparse"
	"mailgate/mail"
)

// driver is a miniature engine for unit tests: it keeps the unconsumed
// client bytes, calls Parse/Exec/ErrorReply in the engine's order, counts
// parse-level errors against max_errors, answers "too long" when the
// buffer is full, and plays the auth_http server with a fixed answer.
type driver struct {
	t         *testing.T
	s         *mail.Session
	h         *Handler
	out       *bytes.Buffer
	buf       []byte // the command buffer; [pos:last] not yet used
	pos, last int
	queued    []byte // bytes the client sent that were not read yet
	size      int
	maxErr    int
	errors    int
	closed    bool

	// auth is the answer to an authenticating command: "" fails with
	// "Invalid login or password" and Auth-Wait (the session goes on),
	// "close" fails without Auth-Wait, "internal" is an auth_http error.
	auth     string
	auths    []authCall
	startTLS int
}

type authCall struct {
	Login, Pass, Method, Tag string
	Salt                     bool
}

func newDriver(t *testing.T, conf *confparse.Server) *driver {
	t.Helper()
	if conf == nil {
		conf = defaultConf()
	}
	out := &bytes.Buffer{}
	s := mail.NewTestSession(conf, out)
	d := &driver{t: t, s: s, out: out, size: Protocol{}.ClientBuffer(conf), maxErr: conf.Core.MaxErrors}
	d.h = Protocol{}.NewHandler(s).(*Handler)
	if err := d.h.Greet(); err != nil {
		t.Fatal(err)
	}
	d.flush()
	if got := out.String(); got != greeting {
		t.Fatalf("greeting %q", got)
	}
	out.Reset()
	return d
}

func defaultConf() *confparse.Server {
	return &confparse.Server{
		Protocol: confparse.ProtoIMAP,
		Core:     confparse.CoreConf{MaxErrors: 5, ServerName: "mx.example.test"},
		IMAP:     confparse.IMAPConf{Auth: confparse.AuthPlain, ClientBuffer: 4096},
	}
}

func (d *driver) flush() {
	if err := d.s.Flush(); err != nil {
		d.t.Fatal(err)
	}
}

func (d *driver) write(b []byte) { d.s.Write(b) }

// feed gives the handler one packet and runs every complete command in it.
// Like the engine (and nginx), the command buffer is a fixed array that is
// rewound to its start only when every byte in it has been used and the
// handler does not ask to keep it; a command reaching the buffer's end
// unfinished is "too long".
func (d *driver) feed(p string) {
	if d.closed {
		return
	}
	d.queued = append(d.queued, p...)
	defer d.flush()
	if d.buf == nil {
		d.buf = make([]byte, 0, d.size)
	}
	for !d.closed {
		// "Read": append what fits after the bytes already in the buffer.
		if room := d.size - d.last; room > 0 && len(d.queued) > 0 {
			k := min(room, len(d.queued))
			d.buf = append(d.buf[:d.last], d.queued[:k]...)
			d.last += k
			d.queued = d.queued[k:]
		}
		if d.pos == d.last {
			return
		}
		needMore := false
		for !d.closed && d.pos < d.last {
			cmd, n, err := d.h.Parse(d.buf[d.pos:d.last])
			if errors.Is(err, mail.ErrNeedMore) {
				needMore = true
				break
			}
			if n < 0 || n > d.last-d.pos {
				d.t.Fatalf("Parse used %d of %d bytes", n, d.last-d.pos)
			}
			d.pos += n
			if err != nil {
				d.parseError(err)
				continue
			}
			if n == 0 {
				d.t.Fatalf("Parse returned a command of 0 bytes")
			}
			next, err := d.h.Exec(cmd)
			if err != nil {
				d.execError(err)
				continue
			}
			switch next {
			case mail.Close:
				d.closed = true
			case mail.StartTLS:
				d.startTLS++
				// nginx drops pipelined plain text.
				d.pos, d.last, d.queued = 0, 0, d.queued[:0]
				d.s.TLS = &tls.ConnectionState{}
			case mail.Authenticate:
				d.authenticate()
			}
		}
		if d.closed {
			return
		}
		if needMore && d.last == d.size {
			d.write(d.h.ErrorReply(mail.ErrTooLong))
			d.closed = true
			return
		}
		if d.pos == d.last && !d.h.KeepBuffer() {
			d.pos, d.last = 0, 0
		}
		if len(d.queued) == 0 {
			return
		}
	}
}

func (d *driver) parseError(err error) {
	var ce *mail.CommandError
	closeAfter := false
	counted := errors.Is(err, mail.ErrInvalid)
	if errors.As(err, &ce) {
		counted, closeAfter = ce.Counted, ce.Close
	} else if !counted {
		d.t.Fatalf("Parse error %v", err)
	}
	if counted {
		d.errors++
		if d.errors >= d.maxErr {
			closeAfter = true
		}
	}
	if ce != nil && ce.Reply != nil {
		d.write(ce.Reply)
	} else if counted {
		d.write(d.h.ErrorReply(mail.ErrInvalid))
	} else {
		d.write(d.h.ErrorReply(mail.ErrRejected))
	}
	d.closed = closeAfter
}

func (d *driver) execError(err error) {
	var ce *mail.CommandError
	if errors.As(err, &ce) {
		d.parseError(err)
		return
	}
	if !errors.Is(err, mail.ErrRejected) {
		d.t.Fatalf("Exec error %v", err)
	}
	d.write(d.h.ErrorReply(mail.ErrRejected))
}

func (d *driver) authenticate() {
	tag := "* "
	if d.s.Tag != nil {
		tag = string(d.s.Tag)
	}
	d.auths = append(d.auths, authCall{
		Login: string(d.s.Login), Pass: string(d.s.Passwd),
		Method: d.s.AuthMethod, Tag: tag, Salt: d.s.Salt != nil,
	})
	switch d.auth {
	case "":
		d.write(d.h.AuthFailed("Invalid login or password", ""))
		d.h.AuthReset()
	case "close":
		d.write(d.h.AuthFailed("Invalid login or password", ""))
		d.closed = true
	case "internal":
		d.write(d.h.InternalError())
		d.closed = true
	default:
		d.t.Fatalf("bad auth script %q", d.auth)
	}
}
