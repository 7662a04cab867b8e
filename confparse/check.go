package confparse

import (
	"fmt"
	"strings"
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
