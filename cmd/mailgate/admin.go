package main

// The admin endpoint's process-wide state (mailgate-only, issue 13,
// docs/admin.md): one session registry and one set of metrics that every
// generation reports to, so that sessions of generations retired by a
// reload stay listed and counted until they end; and the admin listener,
// which follows admin_listen across reloads.

import (
	"sync"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/admin"
	"mailgate/mail/errlog"
)

type adminProc struct {
	reg     *mail.Registry
	metrics *admin.Metrics

	mu   sync.Mutex
	conf confparse.Admin // what srv serves
	srv  *admin.Server
}

var procAdmin = newAdminProc()

func newAdminProc() *adminProc {
	a := &adminProc{reg: mail.NewRegistry(), metrics: admin.NewMetrics(version)}
	a.metrics.CountLive(a.reg) // relayed bytes of live sessions too
	return a
}

// apply starts, moves or stops the admin listener to match cfg. An error
// leaves the running listener as it was.
func (a *adminProc) apply(cfg *confparse.Config) error {
	want := cfg.Core.Admin
	want.Pos = confparse.Pos{}
	a.mu.Lock()
	defer a.mu.Unlock()
	if want == a.conf && (a.srv != nil) == (want.Network != "") {
		return nil
	}
	var ns *admin.Server
	if want.Network != "" {
		if a.srv != nil && a.conf.Network == want.Network && a.conf.Addr == want.Addr {
			// Same address, pprof switched: close first, the address
			// is ours.
			a.srv.Close()
			a.srv = nil
		}
		ln, err := admin.Listen(want.Network, want.Addr)
		if err != nil {
			return err
		}
		ns = admin.Serve(ln, admin.Handler(admin.Config{Metrics: a.metrics, Sessions: a.reg, Pprof: want.Pprof}))
	}
	if a.srv != nil {
		a.srv.Close()
	}
	a.srv, a.conf = ns, want
	return nil
}

// close stops the admin listener (at exit).
func (a *adminProc) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
	a.conf = confparse.Admin{}
}

// reloaded counts a reload's outcome and, after a successful one, moves
// the admin listener to the new admin_listen.
func (a *adminProc) reloaded(cfg *confparse.Config, log func(errlog.Level, string, ...any)) {
	a.metrics.Reloaded(cfg != nil)
	if cfg == nil {
		return
	}
	if err := a.apply(cfg); err != nil {
		log(errlog.Alert, "admin_listen %s failed: %v; the admin endpoint stays as it was", cfg.Core.Admin.Addr, err)
	}
}
