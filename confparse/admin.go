package confparse

// mailgate-only admin listener directives (issue 13, docs/admin.md), main
// context: the HTTP endpoint for metrics, the session list and pprof. Off
// unless written; `mailgate check` lists every use.

import (
	"net/netip"
	"strings"

	"mailgate/mail/ngx"
)

// Admin is the admin listener's configuration.
type Admin struct {
	// Network is "" (no admin listener: the default), "tcp" or "unix";
	// Addr is "host:port" or the socket path.
	Network, Addr string
	Pprof         bool // admin_pprof on: /debug/pprof/ is served
	Pos           Pos  // of admin_listen
}

func adminDirectives() []*directive {
	m := ctxMain
	return []*directive{
		{name: "admin_listen", module: "mailgate_admin", ctx: m, args: take1, set: setAdminListen, mailgateOnly: true},
		{name: "admin_pprof", module: "mailgate_admin", ctx: m, args: take1, set: setFlag, def: "off", mailgateOnly: true},
	}
}

// admin_listen ADDRESS | unix:PATH; where ADDRESS is host:port, [v6]:port
// or a port alone (localhost then: 127.0.0.1).
func setAdminListen(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	a := n.args()[0]
	v, ok := parseAdminListen(a)
	if !ok {
		return l.fail(errAt(n, `invalid address "%s" in "%s" directive`, cstr(a), n.name()))
	}
	v.Pos = n.pos
	lv.vals[n.name()] = &setting{v: v, pos: n.pos}
	return nil
}

func parseAdminListen(a string) (Admin, bool) {
	if p, ok := strings.CutPrefix(a, "unix:"); ok {
		return Admin{Network: "unix", Addr: p}, p != ""
	}
	if port, ok := ngx.Atoi(a); ok {
		if port < 1 || port > 65535 {
			return Admin{}, false
		}
		a = "127.0.0.1:" + a
	}
	ap, err := netip.ParseAddrPort(a)
	if err != nil || ap.Port() == 0 {
		return Admin{}, false
	}
	return Admin{Network: "tcp", Addr: ap.String()}, true
}

// finishAdmin fills Config.Core.Admin.
func (l *loader) finishAdmin() {
	mv := l.main.vals
	if s := mv["admin_listen"]; s != nil {
		l.cfg.Core.Admin = s.v.(Admin)
	}
	if s := mv["admin_pprof"]; s != nil {
		l.cfg.Core.Admin.Pprof = s.v.(bool)
	}
}

// lintAdmin: the admin endpoint has no authentication, so check warns
// when anyone but this host can reach it.
func (l *loader) lintAdmin(adv advise) {
	s := l.main.get("admin_listen")
	if s == nil {
		return
	}
	a := s.v.(Admin)
	if a.Network == "unix" {
		return
	}
	if ap, err := netip.ParseAddrPort(a.Addr); err == nil && ap.Addr().IsLoopback() {
		return
	}
	adv(s.pos, `"admin_listen" is not a loopback address or a unix socket`,
		"the admin endpoint has no authentication: anyone who reaches "+a.Addr+" can list and end sessions; "+
			"listen on 127.0.0.1, [::1] or unix:PATH and put a proxy with authentication in front if it must be remote")
	if pp := l.main.get("admin_pprof"); pp != nil && pp.v.(bool) {
		adv(pp.pos, `"admin_pprof on" on a non-loopback admin listener`, "pprof exposes the process's memory and stacks")
	}
}
