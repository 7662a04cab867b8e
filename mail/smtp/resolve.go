package smtp

// The client resolver (docs/smtp.md, "Before the greeting"): before the greeting, the client address
// is looked up (PTR), the name is checked, and it is confirmed by a forward
// lookup (A and AAAA). The answer is the host name, "[UNAVAILABLE]" or
// "[TEMPUNAVAIL]"; it travels as Client-Host and XCLIENT NAME=.
//
// The DNS client is package mail/resolve, with resolver_timeout per
// lookup, as nginx's resolver does.

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/mail"
	"mailgate/mail/errlog"
	"mailgate/mail/resolve"
)

// resolveClient runs the whole client lookup for a session and returns the
// value of Session.ClientHost. It logs as nginx does.
func resolveClient(h *handler) string {
	s := h.s
	rc := h.conf.Core.Resolver
	if rc == nil {
		return HostUnavailable
	}
	addr := s.Client.Addr().Unmap()
	if !addr.IsValid() {
		// A unix-socket client has no address to look up.
		return HostTempUnavail
	}
	timeout := h.conf.Core.ResolverTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cl := &resolve.Client{Conf: rc, Log: baseLogger(s.Log)}

	saved := s.Action
	defer func() { s.Action = saved }()

	parent := s.Context() // cancelled when the server shuts down
	s.Action = "in resolving client address"
	ctx, cancel := context.WithTimeout(parent, timeout)
	name, code := cl.PTR(ctx, addr)
	cancel()
	if parent.Err() != nil {
		return HostTempUnavail
	}
	if code != resolve.RcodeOK {
		s.Logf(errlog.Error, "%s could not be resolved (%d: %s)", s.ClientIP, code, resolve.ErrorText(code))
		if code == resolve.RcodeNXDomain {
			return HostUnavailable
		}
		return HostTempUnavail
	}
	if !validHostName(name) {
		s.Logf(errlog.Error, "%s resolved to invalid host name \"%s\"", s.ClientIP, name)
		return HostTempUnavail
	}

	s.Action = "in resolving client hostname"
	ctx, cancel = context.WithTimeout(parent, timeout)
	addrs, code := cl.Lookup(ctx, name)
	cancel()
	if parent.Err() != nil {
		return HostTempUnavail
	}
	if code != resolve.RcodeOK {
		s.Logf(errlog.Error, "\"%s\" could not be resolved (%d: %s)", name, code, resolve.ErrorText(code))
		if code == resolve.RcodeNXDomain {
			return HostUnavailable
		}
		return HostTempUnavail
	}
	for _, a := range addrs {
		if a.Unmap() == addr {
			return name
		}
	}
	return HostUnavailable
}

// baseLogger is the main-level error_log: nginx's resolver logs its own
// lines (an I/O error, an answer it ignores) on the cycle's log, the one
// of the main context's error_log, whatever the level of the resolver
// directive and of the session's server (ngx_resolver_create sets r->log
// to &cf->cycle->new_log), and without a connection number.
func baseLogger(e *logrus.Entry) *logrus.Entry {
	if e == nil {
		return nil
	}
	data := logrus.Fields{}
	for k, v := range e.Data {
		if k != errlog.ConnKey && k != errlog.ServerKey {
			data[k] = v
		}
	}
	return e.Logger.WithFields(data)
}

// nginx's resolver sockets take connection numbers too.
func init() { resolve.CountConn = func() { mail.NextConnID() } }

// validHostName is newer nginx's check of a PTR name (CVE-2026-28753): not
// empty, only letters, digits, '-' and '.'.
func validHostName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
