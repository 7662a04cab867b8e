package smtp

import (
	"errors"
	"net"
	"os"
	"time"

	"mailgate/mail/errlog"
)

// errRejectedBeforeGreeting closes a client that spoke during
// smtp_greeting_delay (the 503 reply has been flushed).
var errRejectedBeforeGreeting = errors.New("smtp: client was rejected before greeting")

// Greet implements mail.Handler: resolver, greeting delay, greeting.
// Client bytes are not read while the resolver works.
func (h *handler) Greet() error {
	s := h.s
	if h.conf.Core.Resolver == nil {
		s.ClientHost = HostUnavailable
	} else {
		s.ClientHost = h.resolve(h)
	}

	if d := h.conf.SMTP.GreetingDelay; d > 0 {
		if err := h.greetingDelay(d); err != nil {
			return err
		}
	}

	s.Action = "in auth state"
	h.out.Write(h.tmpl.greeting)
	return nil
}

// greetingDelay waits d for the client to stay silent. A client that sends
// anything first gets the 503 reply, without a greeting, and is closed.
func (h *handler) greetingDelay(d time.Duration) error {
	s := h.s
	conn := s.Conn
	if conn == nil {
		time.Sleep(d)
		return nil
	}
	s.Action = "in delay pipelining state"
	size := h.conf.SMTP.ClientBuffer
	if size <= 0 {
		size = 4096
	}
	buf := make([]byte, size)
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	n, err := conn.Read(buf)
	if n > 0 {
		_ = conn.SetReadDeadline(time.Time{})
		s.Logf(errlog.Info, "client was rejected before greeting: \"%s\"", showCRLF(buf[:n]))
		h.write(replyInvalidPipeline)
		if ferr := h.out.Flush(); ferr != nil {
			return ferr
		}
		return errRejectedBeforeGreeting
	}
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err // the client went away
	}
	return conn.SetReadDeadline(time.Time{})
}
