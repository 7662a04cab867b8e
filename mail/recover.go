package mail

// Containment: a panic on a session's goroutine ends that session, never
// the process. This is a safety net under the code, not a way to handle
// errors: every panic it has caught gets a regression test and a fix.

import (
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"mailgate/mail/errlog"
)

var panicsRecovered atomic.Uint64

// PanicsRecovered is how many panics the engine has contained since the
// process started (session goroutines, relay directions, accept loops).
func PanicsRecovered() uint64 { return panicsRecovered.Load() }

// guard runs f and contains a panic in it: the panic is logged at alert
// with the session's context and counted, and guard reports false. The
// caller then ends the session as it ends any other.
func (srv *Server) guard(e *engine, f func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			panicsRecovered.Add(1)
			e.panicked = true
			srv.logPanic(e.s, errlog.PanicText(v))
			ok = false
		}
	}()
	f()
	return true
}

// logPanic writes the alert line. The session's context (client, server,
// login) is what an operator needs to find the input that caused it; if
// rendering it panics too, or the session is not built yet, the line goes
// out without it.
func (srv *Server) logPanic(s *Session, text string) {
	if s == nil {
		errlog.Log(logrus.NewEntry(srv.log), errlog.Alert, text)
		return
	}
	defer func() {
		if recover() != nil {
			errlog.Log(logrus.NewEntry(srv.log).WithField(errlog.ConnKey, s.ID), errlog.Alert, text)
		}
	}()
	s.Logf(errlog.Alert, "%s", text)
}

// guardAccept runs one accept loop and contains a panic in it; it reports
// false after a panic, so that the caller starts the loop again.
func (srv *Server) guardAccept(so *socket) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			panicsRecovered.Add(1)
			errlog.Log(logrus.NewEntry(srv.log), errlog.Alert, errlog.PanicText(v)+" in accept loop")
			ok = false
		}
	}()
	srv.accept(so)
	return true
}
