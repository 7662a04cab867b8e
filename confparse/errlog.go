package confparse

import (
	"slices"
	"strings"

	"mailgate/mail/errlog"
)

var debugLevels = []string{"debug_core", "debug_alloc", "debug_mutex", "debug_event",
	"debug_http", "debug_mail", "debug_stream"}

// setErrorLog is error_log in main, mail{} and server{} (ngx_log_set_log):
// several may be given; each adds one target.
func setErrorLog(l *loader, lv *level, n *node) error {
	a := n.args()
	t := LogTarget{Level: SevError, Pos: n.pos}
	switch {
	case cstr(a[0]) == "stderr", a[0] == "": // strcmp()
		// an empty name is stderr too (ngx_conf_open_file)
		t.Path = "stderr"
	case strings.HasPrefix(a[0], "memory:"):
		// The Debian build nginx is compared with has --with-debug, so a
		// memory buffer is accepted; mailgate keeps the target as written.
		sz, ok := parseSize(a[0][len("memory:"):])
		if !ok || sz < 8*4096 {
			return l.fail(errAt(n, `invalid buffer size "%s"`, a[0][len("memory:"):]))
		}
		t.Path = a[0]
	case strings.HasPrefix(a[0], "syslog:"):
		st, e := parseSyslog(a[0][len("syslog:"):])
		if e != "" {
			return l.fail(errAt(n, "%s", e))
		}
		t.Path = a[0]
		t.Syslog = st
	default:
		t.Path = l.prefixPath(a[0])
		if !slices.Contains(l.cfg.LogFiles, t.Path) {
			l.cfg.LogFiles = append(l.cfg.LogFiles, t.Path)
		}
	}
	if len(a) > 1 {
		set := false
		debugOnly := false
		for _, w := range a[1:] {
			found := false
			// level names are compared with strcmp(): a NUL byte ends
			// the word; messages print the whole word
			cw := cstr(w)
			if lvl, ok := errlog.ParseLevel(cw); ok {
				if set || debugOnly {
					return l.fail(errAt(n, `duplicate log level "%s"`, w))
				}
				t.Level = lvl
				set = true
				found = true
			}
			for _, nm := range debugLevels {
				if cw == nm {
					if set {
						return l.fail(errAt(n, `invalid log level "%s"`, w))
					}
					debugOnly = true
					found = true
					break
				}
			}
			if !found {
				return l.fail(errAt(n, `invalid log level "%s"`, w))
			}
		}
		if debugOnly && !set {
			t.Level = SevDebug
		}
	}
	s := lv.get("error_log")
	if s == nil {
		s = &setting{v: []LogTarget(nil)}
	}
	s.v = append(s.v.([]LogTarget), t)
	s.pos = n.pos
	lv.vals["error_log"] = s
	return nil
}

// lintErrorLogs advises on error_log targets mailgate does not write.
func (l *loader) lintErrorLogs(adv advise) {
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
}
