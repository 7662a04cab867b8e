package confparse

// mailgate-only access log (issue 13, docs/access-log.md): log_format and
// access_log in the grammar of nginx's ngx_stream_log_module, one line per
// mail session. nginx's mail module has neither directive; they are off
// unless written and `mailgate check` lists every use.

import (
	"mailgate/mail/ngx"
	"slices"
	"strings"
	"time"
)

// LogEscape is log_format's escape= parameter.
type LogEscape int

// Escapings of variable values (literals are never escaped).
const (
	EscapeDefault LogEscape = iota // `"`, `\`, bytes < 0x20 and > 0x7E as \xHH; a missing value is "-"
	EscapeJSON                     // JSON string escapes; a missing value is empty
	EscapeNone                     // as is; a missing value is empty
)

// LogFormat is one log_format: its name, escaping and compiled string.
type LogFormat struct {
	Name   string
	Escape LogEscape
	Ops    []LogOp
	Pos    Pos
}

// LogOp is one piece of a compiled format: literal text (Var == "") or
// a variable (Var is its lowercased name, without "$").
type LogOp struct {
	Lit string
	Var string
}

// AccessLogFile is one access log file, shared by every access_log line
// that names it: buffering is a property of the file, as in nginx.
type AccessLogFile struct {
	Path   string        // absolute; "" is stderr (nginx's empty file name)
	Buffer int           // bytes; 0: each line is written at once
	Flush  time.Duration // 0: only when the buffer fills, at reopen and at exit
	Gzip   int           // 0: off, else the compression level (1-9)
}

// AccessLog is one access_log line.
type AccessLog struct {
	File   *AccessLogFile // nil for syslog
	Syslog *SyslogTarget  // a "syslog:" target
	Format *LogFormat
	// If is the if= condition: the session is not logged when it
	// evaluates to "" or "0". Nil: always logged.
	If  []LogOp
	Pos Pos
}

// AccessLogVariables are the variables a log_format may use
// (docs/access-log.md); package mail/accesslog gives each its value.
var AccessLogVariables = []string{
	"remote_addr", "remote_port", "server_addr", "server_port", "protocol",
	"login", "auth_status", "upstream_addr", "bytes_sent", "bytes_received",
	"upstream_bytes_sent", "upstream_bytes_received", "session_time", "status",
	"end_reason", "ssl_protocol", "ssl_cipher", "time_local", "time_iso8601",
	"msec", "connection", "hostname", "pid",
}

func accessLogDirectives() []*directive {
	m := "mailgate_log"
	return []*directive{
		// stream allows log_format in stream{} only: here mail{} only.
		{name: "log_format", module: m, ctx: ctxMail, args: twoMore, set: setLogFormat, mailgateOnly: true},
		{name: "access_log", module: m, ctx: ctxMail | ctxServer, args: oneMore, set: setAccessLog, def: "off", merge: mergeSpecial, mailgateOnly: true},
	}
}

// logFormats is the mail{} level's log_format list (vals["log_format"]).
type logFormats struct{ list []*LogFormat }

// accessLogs is one level's access_log lines (vals["access_log"]);
// off: "access_log off" was written there, which cancels them all.
type accessLogs struct {
	logs []*AccessLog
	off  bool
}

// log_format NAME [escape=default|json|none] STRING ...;
func setLogFormat(l *loader, lv *level, n *node) error {
	a := n.args()
	s := lv.get("log_format")
	if s == nil {
		s = &setting{v: &logFormats{}, pos: n.pos}
		lv.vals["log_format"] = s
	}
	fs := s.v.(*logFormats)
	for _, f := range fs.list {
		if f.Name == a[0] { // strcmp: the look-up is case-insensitive, the duplicate check is not
			return l.fail(errAt(n, `duplicate "log_format" name "%s"`, a[0]))
		}
	}
	f := &LogFormat{Name: a[0], Pos: n.pos}
	words := a[1:]
	if len(words) > 0 && strings.HasPrefix(words[0], "escape=") {
		switch v := cstr(words[0][len("escape="):]); v {
		case "default":
		case "json":
			f.Escape = EscapeJSON
		case "none":
			f.Escape = EscapeNone
		default:
			return l.fail(errAt(n, `unknown log format escaping "%s"`, v))
		}
		words = words[1:]
	}
	ops, e := compileLogFormat(words)
	if e != "" {
		return l.fail(errAt(n, "%s", e))
	}
	f.Ops = ops
	fs.list = append(fs.list, f)
	return nil
}

// compileLogFormat compiles a format's strings as nginx's
// ngx_stream_log_compile_format does: "$name" or "${name}" (letters,
// digits, "_") is a variable, the rest literal text. It returns nginx's
// message on an error.
func compileLogFormat(words []string) ([]LogOp, string) {
	var ops []LogOp
	for _, w := range words {
		i := 0
		for i < len(w) {
			start := i
			if w[i] != '$' {
				for i++; i < len(w) && w[i] != '$'; i++ {
				}
				if n := len(ops); n > 0 && ops[n-1].Var == "" {
					ops[n-1].Lit += w[start:i]
				} else {
					ops = append(ops, LogOp{Lit: w[start:i]})
				}
				continue
			}
			invalid := `invalid parameter "` + cstr(w[start:]) + `"`
			i++
			if i == len(w) {
				return nil, invalid
			}
			bracket := false
			if w[i] == '{' {
				bracket = true
				i++
				if i == len(w) {
					return nil, invalid
				}
			}
			vs, ve := i, -1
			for ; i < len(w); i++ {
				c := w[i]
				if c == '}' && bracket {
					ve = i
					i++
					bracket = false
					break
				}
				if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
					continue
				}
				break
			}
			if ve < 0 {
				ve = i
			}
			name := w[vs:ve]
			if bracket {
				return nil, `the closing bracket in "` + cstr(name) + `" variable is missing`
			}
			if name == "" {
				return nil, invalid
			}
			name = strings.ToLower(name)
			if !slices.Contains(AccessLogVariables, name) {
				return nil, `unknown "` + name + `" variable`
			}
			ops = append(ops, LogOp{Var: name})
		}
	}
	return ops, ""
}

// access_log PATH|syslog:... FORMAT [buffer=SIZE] [gzip[=LEVEL]]
// [flush=TIME] [if=CONDITION]; | access_log off;
func setAccessLog(l *loader, lv *level, n *node) error {
	a := n.args()
	s := lv.get("access_log")
	if s == nil {
		s = &setting{v: &accessLogs{}, pos: n.pos}
		lv.vals["access_log"] = s
	}
	al := s.v.(*accessLogs)
	if cstr(a[0]) == "off" {
		al.off = true
		if len(a) > 1 {
			return l.fail(errAt(n, `invalid parameter "%s"`, a[1]))
		}
		return nil
	}
	log := &AccessLog{Pos: n.pos}
	path := ""
	if strings.HasPrefix(a[0], "syslog:") {
		st, e := parseSyslog(a[0][len("syslog:"):])
		if e != "" {
			return l.fail(errAt(n, "%s", e))
		}
		log.Syslog = st
	} else {
		if strings.Contains(a[0], "$") {
			// nginx opens such a file per session; mailgate does not.
			return l.fail(errAt(n, `variables in the "access_log" path are not supported by mailgate: "%s"`, a[0]))
		}
		if a[0] != "" {
			path = l.prefixPath(a[0])
		}
	}
	if len(a) < 2 {
		return l.fail(errAt(n, "log format is not specified"))
	}
	if fs := l.mail.get("log_format"); fs != nil {
		for _, f := range fs.v.(*logFormats).list {
			if strings.EqualFold(f.Name, a[1]) {
				log.Format = f
				break
			}
		}
	}
	if log.Format == nil {
		return l.fail(errAt(n, `unknown log format "%s"`, a[1]))
	}
	var size int
	var flush time.Duration
	gzip := 0
	for _, p := range a[2:] {
		switch {
		case strings.HasPrefix(p, "buffer="):
			v, ok := parseSize(p[len("buffer="):])
			if !ok || v == 0 {
				return l.fail(errAt(n, `invalid buffer size "%s"`, p[len("buffer="):]))
			}
			size = int(v)
		case strings.HasPrefix(p, "flush="):
			v, ok := parseTime(p[len("flush="):], false)
			if !ok || v == 0 {
				return l.fail(errAt(n, `invalid flush time "%s"`, p[len("flush="):]))
			}
			flush = msDuration(v)
		case p == "gzip" || strings.HasPrefix(p, "gzip="):
			if size == 0 {
				size = 64 * 1024
			}
			gzip = 1
			if p != "gzip" {
				v, ok := ngx.Atoi(p[len("gzip="):])
				if !ok || v < 1 || v > 9 {
					return l.fail(errAt(n, `invalid compression level "%s"`, p[len("gzip="):]))
				}
				gzip = int(v)
			}
		case strings.HasPrefix(p, "if="):
			ops, e := compileLogFormat([]string{p[len("if="):]})
			if e != "" {
				return l.fail(errAt(n, "%s", e))
			}
			log.If = ops
			if log.If == nil {
				log.If = []LogOp{} // if= with nothing: never logged
			}
		default:
			return l.fail(errAt(n, `invalid parameter "%s"`, p))
		}
	}
	if flush > 0 && size == 0 {
		return l.fail(errAt(n, `no buffer is defined for access_log "%s"`, a[0]))
	}
	if log.Syslog != nil {
		if size > 0 {
			return l.fail(errAt(n, "logs to syslog cannot be buffered"))
		}
		al.logs = append(al.logs, log)
		return nil
	}
	// One AccessLogFile per path, shared by every line that names it.
	for _, f := range l.cfg.AccessLogFiles {
		if f.Path == path {
			log.File = f
			break
		}
	}
	if log.File == nil {
		log.File = &AccessLogFile{Path: path}
		l.cfg.AccessLogFiles = append(l.cfg.AccessLogFiles, log.File)
	}
	if size > 0 {
		f := log.File
		if f.Buffer > 0 && (f.Buffer != size || f.Flush != flush || f.Gzip != gzip) {
			return l.fail(errAt(n, `access_log "%s" already defined with conflicting parameters`, a[0]))
		}
		f.Buffer, f.Flush, f.Gzip = size, flush, gzip
	}
	al.logs = append(al.logs, log)
	return nil
}

// mergeAccessLog gives s its access logs: the server's own lines, else
// mail{}'s; "access_log off" at the level that decides means none.
func (l *loader) mergeAccessLog(s *Server, sv *level) error {
	st := sv.get("access_log")
	if st == nil && l.mail != nil {
		st = l.mail.get("access_log")
	}
	if st == nil {
		return nil
	}
	s.Sources["access_log"] = st.pos
	if al := st.v.(*accessLogs); !al.off {
		s.AccessLogs = al.logs
	}
	return nil
}
