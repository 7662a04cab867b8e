package confparse

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"mailgate/mail/tlsconf"
)

// lint adds Check's mailgate-only advice about a configuration that loaded
// without errors.
func (l *loader) lint() {
	adv := func(pos Pos, msg, extra string) {
		l.diags = append(l.diags, Diag{Sev: SevWarn, Msg: msg, Pos: pos, Extra: extra, MailgateOnly: true})
	}
	if s := l.main.get("worker_processes"); s != nil {
		adv(s.pos, `"worker_processes" directive ignored`,
			"mailgate runs as one process and uses all CPUs through the Go runtime")
	}
	for _, name := range []string{"worker_cpu_affinity", "worker_priority", "worker_rlimit_core", "thread_pool", "pcre_jit", "timer_resolution", "lock_file"} {
		if s := l.main.get(name); s != nil {
			adv(s.pos, fmt.Sprintf(`"%s" directive ignored`, name), "accepted for nginx compatibility; it has no effect in mailgate")
		}
	}
	if s := l.main.get("user"); s != nil {
		adv(s.pos, `"user" directive does not switch users in mailgate`,
			"mailgate is one process and keeps the user it was started as (to re-read keys and bind new ports on reload); "+
				"start it as the unprivileged user instead, e.g. systemd User= with AmbientCapabilities=CAP_NET_BIND_SERVICE")
	}
	if l.httpSeen || l.streamSeen {
		// nginx, started without mailgate's -g, takes its pid file from
		// this file, or /run/nginx.pid without a pid line. A -g pid
		// cannot replace the file's own ("is duplicate"), so the advice
		// is a file of mailgate's own.
		if st := l.main.get("pid"); st != nil && !st.pos.CmdLine {
			adv(st.pos, fmt.Sprintf(`mailgate and nginx would share the pid file "%s"`, l.cfg.Core.Pid),
				`if nginx keeps serving the http{}/stream{} blocks of this file, give mailgate a file of its own: move mail{} into a file of its own, include that from this file, `+
					`and start mailgate with -c on a file holding "pid /run/mailgate.pid; events {}" and the same include (-g cannot replace a pid line the file has; nginx would say "is duplicate"; mailgate refuses to start on the pid file of a running nginx)`)
		} else if l.cfg.Core.Pid == nginxDefaultPid {
			var pos Pos
			if st != nil {
				pos = st.pos
			}
			adv(pos, fmt.Sprintf(`mailgate and nginx would share the pid file "%s"`, l.cfg.Core.Pid),
				`nginx uses it when its configuration sets no pid; give mailgate another one, e.g. -g "pid /run/mailgate.pid;" (mailgate refuses to start on the pid file of a running nginx)`)
		}
	}
	memLogs := append([]LogTarget(nil), l.cfg.Core.ErrorLogs...)
	if l.cfg.Mail != nil {
		seen := map[Pos]bool{}
		for _, s := range l.cfg.Mail.Servers {
			for _, t := range s.Core.ErrorLogs {
				if !seen[t.Pos] {
					seen[t.Pos] = true
					memLogs = append(memLogs, t)
				}
			}
		}
	}
	for _, t := range memLogs {
		if strings.HasPrefix(t.Path, "memory:") {
			adv(t.Pos, `"error_log memory:" target ignored`,
				"nginx keeps it in a cyclic buffer read with a debugger; mailgate writes nothing there, so log to a file, stderr or syslog instead")
		}
	}
	levels := append([]*level{l.mail}, l.servers...)
	for _, lv := range levels {
		if lv == nil {
			continue
		}
		if s := lv.get("ssl"); s != nil {
			adv(s.pos, `the "ssl" directive was removed in nginx 1.25.1`,
				`mailgate still accepts it like nginx 1.22.1; use "listen ... ssl" instead`)
		}
		if s := lv.get("proxy"); s != nil {
			adv(s.pos, `"proxy" directive has no effect`,
				"nginx accepts it but never reads it; sessions are always proxied")
		}
		if s := lv.get("ssl_session_cache"); s != nil && strings.Contains(s.v.(string), "shared:") {
			adv(s.pos, `"ssl_session_cache shared:" is per process in mailgate`,
				"the cache lives in the mailgate process; it is not shared with other instances or kept across restarts")
		}
	}
	l.lintMailgateOnly(levels)
	if l.cfg.Mail == nil {
		return
	}
	// xclient and proxy_smtp_auth only shape the login to an SMTP
	// upstream. In a POP3 or IMAP server nginx accepts them and never
	// reads them, so an explicit "on" there is a server block copied
	// from an SMTP one, or a belief that XCLIENT reaches the upstream a
	// POP3/IMAP session is sent to (Auth-Server/Auth-Port), which it
	// never does. Set at the mail{} level they are normal: SMTP servers
	// inherit them.
	for _, sv := range l.servers {
		s := l.srvByLvl[sv]
		if s == nil || s.Protocol == ProtoSMTP || s.Protocol == "" {
			continue
		}
		for _, name := range []string{"xclient", "proxy_smtp_auth"} {
			if st := sv.get(name); st != nil && st.v == true {
				adv(st.pos, fmt.Sprintf(`"%s on" has no effect with "protocol %s"`, name, s.Protocol),
					"nginx sends XCLIENT and AUTH only to SMTP upstreams; this server's upstreams speak "+s.Protocol)
			}
		}
	}
	// *_auth of another protocol than the server's: nginx accepts it
	// and never reads it (a block copied from another protocol's).
	for _, sv := range l.servers {
		s := l.srvByLvl[sv]
		if s == nil || s.Protocol == "" {
			continue
		}
		for _, p := range []string{ProtoPOP3, ProtoIMAP, ProtoSMTP} {
			if p == s.Protocol {
				continue
			}
			if st := sv.get(p + "_auth"); st != nil {
				adv(st.pos, fmt.Sprintf(`"%s_auth" has no effect with "protocol %s"`, p, s.Protocol),
					fmt.Sprintf(`this server speaks %s, so its methods come from "%s_auth"; %s_auth is read only by %s servers`, s.Protocol, s.Protocol, p, p))
			}
		}
	}
	for _, n := range l.authHeaders {
		if v := n.args()[1]; varRef.MatchString(v) {
			adv(n.pos, fmt.Sprintf(`"auth_http_header %s" value "%s" is sent literally`, n.args()[0], v),
				"nginx does not expand variables in auth_http_header: the auth server receives the text as written, $ included")
		}
	}
	l.lintAuthServedByHTTP(adv)
	l.lintOldProtocols(adv)
	for _, s := range l.cfg.Mail.Servers {
		plain := false
		switch s.Protocol {
		case ProtoPOP3, ProtoIMAP:
			// USER/PASS and LOGIN always work, whatever *_auth says.
			plain = true
		case ProtoSMTP:
			plain = s.SMTP.Auth&(AuthPlain|AuthLogin) != 0
		}
		if !plain || s.SSL.StartTLS == StartTLSOnly || s.SSL.SSLOn {
			continue
		}
		for _, ls := range s.Listens {
			if ls.SSL || ls.Network == "unix" {
				continue
			}
			adv(ls.Pos, fmt.Sprintf("passwords may be sent in plain text on %s", ls.Text),
				`this `+s.Protocol+` listener accepts a password login without TLS; add "ssl" to the listen or use "starttls only"`)
		}
	}
}

// lintMailgateOnly lists every mailgate-only directive in use: nginx would
// refuse the file with `unknown directive`.
func (l *loader) lintMailgateOnly(levels []*level) {
	type use struct {
		name string
		pos  Pos
	}
	var uses []use
	for _, lv := range levels {
		if lv == nil {
			continue
		}
		for name, st := range lv.vals {
			if ds := byName[name]; len(ds) > 0 && ds[0].mg {
				uses = append(uses, use{name, st.pos})
			}
		}
	}
	sort.Slice(uses, func(i, j int) bool {
		a, b := uses[i].pos, uses[j].pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return uses[i].name < uses[j].name
	})
	for _, u := range uses {
		l.diags = append(l.diags, Diag{Sev: SevNotice, Msg: fmt.Sprintf(`"%s" directive is mailgate-only`, u.name), Pos: u.pos,
			Extra: "nginx does not know it (unknown directive); see docs/auth_http.md", MailgateOnly: true})
	}
	l.lintMailgateOnlyValues(levels)
}

// mailgateOnlyValues are the directive values nginx refuses (`invalid
// value "..."`) and mailgate accepts.
var mailgateOnlyValues = map[string]map[string]string{
	"imap_auth": {"oauthbearer": "docs/oauth.md", "xoauth2": "docs/oauth.md"},
	"pop3_auth": {"oauthbearer": "docs/oauth.md", "xoauth2": "docs/oauth.md"},
	"smtp_auth": {"oauthbearer": "docs/oauth.md", "xoauth2": "docs/oauth.md"},
}

// lintMailgateOnlyValues lists every mailgate-only value in use, one
// notice per directive and value.
func (l *loader) lintMailgateOnlyValues(levels []*level) {
	type use struct {
		name, value, doc string
		pos              Pos
	}
	var uses []use
	for _, lv := range levels {
		if lv == nil {
			continue
		}
		for name, vals := range mailgateOnlyValues {
			st := lv.get(name)
			if st == nil {
				continue
			}
			bv, ok := st.v.(*bitmaskVal)
			if !ok {
				continue
			}
			for _, w := range bv.words {
				if doc, ok := vals[w]; ok {
					uses = append(uses, use{name, w, doc, st.pos})
				}
			}
		}
	}
	sort.SliceStable(uses, func(i, j int) bool {
		a, b := uses[i].pos, uses[j].pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if uses[i].name != uses[j].name {
			return uses[i].name < uses[j].name
		}
		return uses[i].value < uses[j].value
	})
	for _, u := range uses {
		l.diags = append(l.diags, Diag{Sev: SevNotice, Msg: fmt.Sprintf(`"%s" value "%s" is mailgate-only`, u.name, u.value), Pos: u.pos,
			Extra: fmt.Sprintf(`nginx refuses it (invalid value "%s"); see %s`, u.value, u.doc), MailgateOnly: true})
	}
}

// varRef matches an nginx variable reference: $name or ${name}.
var varRef = regexp.MustCompile(`\$(\{)?[A-Za-z0-9_]`)

// lintAuthServedByHTTP warns when an auth_http URL is served by a listen
// of this file's http{}: mailgate would then depend on the nginx it
// replaces, and every login fails once that nginx stops (the Mailu and
// BlueMind layout).
func (l *loader) lintAuthServedByHTTP(adv func(Pos, string, string)) {
	if len(l.httpListens) == 0 {
		return
	}
	type listenAt struct {
		u    *parsedURL
		text string
		pos  Pos
	}
	var listens []listenAt
	for _, n := range l.httpListens {
		// http's listen: port 80 when only an address is given
		if u, err := parseURL(n.args()[0], urlOpts{listen: true, defaultPort: 80}); err == "" {
			listens = append(listens, listenAt{u, n.args()[0], n.pos})
		}
	}
	seen := map[Pos]bool{}
	for _, s := range l.cfg.Mail.Servers {
		a := s.AuthHTTP
		if a.URL == "" || seen[a.Pos] {
			continue
		}
		seen[a.Pos] = true
		for _, ls := range listens {
			if !listenServes(ls.u, a.Network, a.Addr) {
				continue
			}
			adv(a.Pos, fmt.Sprintf(`auth_http "%s" is served by this file's http{} (listen %s in %s)`, a.URL, ls.text, ls.pos),
				"mailgate does not serve http{}: the auth endpoint lives in the nginx that mailgate replaces, so once that nginx stops every login fails; "+
					"keep nginx running for http{} on its own pid file, or point auth_http at the auth service itself")
			break
		}
	}
}

// listenServes reports whether an http listen accepts connections made
// to the auth server's dial address: the same address, or a wildcard
// listen on the same port and the address is a loopback one.
func listenServes(u *parsedURL, network, addr string) bool {
	if u.unix || network == "unix" {
		return u.unix && network == "unix" && u.path == addr
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	for _, la := range u.addrs {
		if la.Port() != ap.Port() {
			continue
		}
		if la.Addr() == ap.Addr() {
			return true
		}
		if la.Addr().IsUnspecified() && ap.Addr().IsLoopback() && la.Addr().Is4() == ap.Addr().Is4() {
			return true
		}
	}
	return false
}

// lintOldProtocols explains why TLSv1 and TLSv1.1 in ssl_protocols are
// never negotiated: OpenSSL 3 at security level 1 or above (Debian's
// default is 2; ssl_ciphers can set @SECLEVEL=0) has no signature algorithm for them, so nginx, and
// mailgate with it, fails those handshakes.
func (l *loader) lintOldProtocols(adv func(Pos, string, string)) {
	seen := map[Pos]bool{}
	for _, s := range l.cfg.Mail.Servers {
		pos, ok := s.Sources["ssl_protocols"]
		if !ok || seen[pos] || tlsconf.SecurityLevel(s.SSL.Ciphers) < 1 || !s.UsesTLS() {
			continue
		}
		var old []string
		modern := false
		for _, p := range s.SSL.Protocols {
			switch p {
			case "TLSv1", "TLSv1.1":
				old = append(old, p)
			case "TLSv1.2", "TLSv1.3":
				modern = true
			}
		}
		if len(old) == 0 {
			continue
		}
		seen[pos] = true
		what := strings.Join(old, " ") + " in \"ssl_protocols\" cannot complete a handshake"
		if !modern {
			what = "\"ssl_protocols\" lists no version a handshake can succeed with"
		}
		adv(pos, what,
			"OpenSSL 3, which Debian's nginx uses, has no signature algorithm for TLS 1.0 and 1.1 at security level 1 or above (Debian's default is 2), "+
				"so nginx fails those handshakes (\"no suitable signature algorithm\") whatever ssl_protocols lists, and mailgate does the same; "+
				"clients need TLS 1.2 or newer, or ssl_ciphers needs @SECLEVEL=0 (weak signatures) to allow them")
	}
}
