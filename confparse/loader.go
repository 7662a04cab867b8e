package confparse

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// DefaultPrefix is the build prefix of Debian's nginx (nginx -V:
// --prefix=/usr/share/nginx), used when Options.Prefix is empty.
const DefaultPrefix = "/usr/share/nginx/"

// DefaultPid is mailgate's pid file when no pid directive sets one. It is
// absolute, like Debian's nginx default (--pid-path=/run/nginx.pid), so
// that -t works on a stock machine (<prefix>logs/ does not exist there),
// and it is not nginx's, so that a mailgate and an nginx started from
// files without a pid line never share one.
const DefaultPid = "/run/mailgate.pid"

// nginxDefaultPid is Debian's nginx's pid file when no pid directive sets
// one.
const nginxDefaultPid = "/run/nginx.pid"

// DefaultConfFile is Debian's --conf-path, used when Options.ConfFile is
// empty.
const DefaultConfFile = "/etc/nginx/nginx.conf"

// Options says what to load, like nginx's -p, -c and -g.
type Options struct {
	Prefix   string // -p, with trailing '/'; "" → DefaultPrefix
	ConfFile string // -c as given; relative → resolved against Prefix
	Globals  string // -g text, parsed before the file as main-context directives
	Hostname string // for the server_name default; "" → os.Hostname() lowercased
	// Overlay, by absolute path, is file content read instead of the
	// disk's, so a tool can load text before writing it (mailgate
	// migrate). Glob includes still list the disk's files only.
	Overlay map[string][]byte
	// Trace asks for Config.Trace: every directive read, in order.
	Trace bool
}

// Error is a configuration error, printed as nginx prints it:
// Msg + " in " + Pos, or Msg alone when Pos is zero.
type Error struct {
	Diag
}

func (e *Error) Error() string { return e.Diag.String() }

// String renders a diagnostic like nginx: the message, then " in FILE:LINE"
// or " in command line" when the position is known.
func (d Diag) String() string {
	if p := d.Pos.String(); p != "" {
		return confErrStr(d.Msg) + " in " + p
	}
	return d.Msg
}

// maxConfErrStr is nginx's NGX_MAX_CONF_ERRSTR: a message that names its
// file:line (ngx_conf_log_error) is cut to this many bytes before the
// position is appended.
const maxConfErrStr = 1024

// errnoSuffix is the " (N: text)" nginx appends for a system error.
var errnoSuffix = regexp.MustCompile(` \(\d+: [^()]*\)$`)

// confErrStr cuts a message like ngx_conf_log_error: the text is cut at
// maxConfErrStr bytes; when a system error follows and the text leaves it
// less than 50 bytes, the text is cut at 50 bytes before the end and "..."
// marks the cut (ngx_log_errno).
func confErrStr(msg string) string {
	if len(msg) <= maxConfErrStr {
		return msg
	}
	if loc := errnoSuffix.FindStringIndex(msg); loc != nil {
		body, errno := msg[:loc[0]], msg[loc[0]:]
		if len(body) > maxConfErrStr-50 {
			body = body[:maxConfErrStr-50] + "..."
		}
		msg = body + errno
	}
	if len(msg) > maxConfErrStr {
		msg = msg[:maxConfErrStr]
	}
	return msg
}

// Load reads the configuration and stops at the first error, as nginx -t
// does. Warnings are in Config.Notices.
func Load(o Options) (*Config, error) {
	l := newLoader(o, false)
	err := l.run()
	if err != nil {
		return l.cfg, err
	}
	return l.cfg, nil
}

// Check reads the configuration and reports every error it can find,
// continuing after errors where that makes sense, plus all warnings and
// mailgate-only advice (Diag.MailgateOnly).
func Check(o Options) (*Config, []Diag) {
	l := newLoader(o, true)
	if err := l.run(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			l.diags = append(l.diags, e.Diag)
		}
	}
	if l.fatal == nil && !l.failed {
		l.lint()
	}
	return l.cfg, l.diags
}

// loader is one Load or Check run: nginx's configuration cycle, directive
// by directive, in file order.
type loader struct {
	o      Options
	check  bool
	cfg    *Config
	diags  []Diag // Check: everything reported
	failed bool   // Check: some error was reported
	fatal  error  // a syntax error: nothing after it is read

	hostname string

	// sslZones are the sizes of ssl_session_cache's shared:NAME:size
	// zones by name (ngx_shared_memory_add's check).
	sslZones map[string]int64
	// confCmdPos is where each ssl_conf_command (name and value) was
	// first written, for check's advice (sslconfcmd.go).
	confCmdPos map[[2]string]Pos

	// httpsAuth are auth_http/auth_http_backup URLs with https:// and the
	// level they were set at, checked at the end of mail{}.
	httpsAuth []httpsAuth

	seenFiles map[string]bool
	stack     []string // files being read, for include cycles

	main   *level
	events *level
	mail   *level
	// blocks seen in main, for duplicates and load_module ordering
	eventsSeen, httpSeen, streamSeen, mailSeen bool
	modulesUsed                                bool
	loadedModules                              map[string]bool // load_module: nginx module names loaded
	threadPools                                map[string]bool

	blocks []string // names of the open blocks, for Config.Trace

	mailEnd    Pos // where mail{}'s "}" was read: some merge errors point there
	servers    []*level
	listens    []*Listen
	listenKeys map[listenKey]bool
	srvByLvl   map[*level]*Server

	// for Check's advice: the listen directives of http{} servers, and
	// every auth_http_header
	httpListens []*node
	authHeaders []*node
}

func newLoader(o Options, check bool) *loader {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.ConfFile == "" {
		o.ConfFile = DefaultConfFile
	}
	l := &loader{o: o, check: check, seenFiles: map[string]bool{}, srvByLvl: map[*level]*Server{}}
	conf := o.ConfFile
	if !filepath.IsAbs(conf) {
		conf = o.Prefix + conf
	}
	l.cfg = &Config{
		Prefix:   o.Prefix,
		ConfFile: conf,
		ConfDir:  filepath.Dir(conf) + "/",
	}
	if o.Hostname != "" {
		l.hostname = strings.ToLower(o.Hostname)
	} else if h, err := os.Hostname(); err == nil {
		l.hostname = strings.ToLower(h)
	}
	l.main = newLevel(ctxMain, Pos{})
	return l
}

// emerg reports an error. Load stops at the first one; Check records it
// and carries on.
func (l *loader) emerg(d *Diag) error {
	if d.Sev == 0 {
		d.Sev = SevEmerg
	}
	if !l.check {
		return &Error{*d}
	}
	l.failed = true
	l.diags = append(l.diags, *d)
	return nil
}

// stop reports an error after which nothing sensible can follow (syntax).
func (l *loader) stop(d *Diag) error {
	if d.Sev == 0 {
		d.Sev = SevEmerg
	}
	l.fatal = &Error{*d}
	return l.fatal
}

// notice records a warning or notice (nginx's or mailgate's own).
func (l *loader) notice(d Diag) {
	l.cfg.Notices = append(l.cfg.Notices, d)
	if l.check {
		l.diags = append(l.diags, d)
	}
}

func (l *loader) warn(pos Pos, format string, a ...any) {
	l.notice(Diag{Sev: SevWarn, Msg: fmt.Sprintf(format, a...), Pos: pos})
}

// mgNotice records a mailgate-only diagnostic.
func (l *loader) mgNotice(sev Severity, pos Pos, msg, extra string) {
	l.notice(Diag{Sev: sev, Msg: msg, Pos: pos, Extra: extra, MailgateOnly: true})
}

// unportable records a line nginx 1.22.1 would refuse (a mailgate-only
// directive or value): nginxMsg is nginx 1.22.1's error for it. Check
// also lists it as a mailgate-only notice.
func (l *loader) unportable(pos Pos, what, nginxMsg string) {
	l.cfg.NginxRefuses = append(l.cfg.NginxRefuses, Diag{Sev: SevEmerg, Msg: nginxMsg, Pos: pos})
	if l.check {
		l.diags = append(l.diags, Diag{Sev: SevNotice, Msg: what + " is not in nginx 1.22.1", Pos: pos, MailgateOnly: true,
			Extra: "nginx 1.22.1 refuses this line: " + nginxMsg + "; for a file both load, " +
				"move it to a file only mailgate's configuration includes (mailgate check --nginx lists every such line)"})
	}
}

func (l *loader) run() error {
	if l.o.Globals != "" {
		nodes := parseData([]byte(l.o.Globals), "", true)
		if err := l.walk(nodes, l.main); err != nil {
			return err
		}
	}
	if err := l.readFile(l.cfg.ConfFile, Pos{}, l.main); err != nil {
		return err
	}
	// nginx's core module finishes its settings (and warns) before the
	// events module notices that there is no events{}
	if err := l.finishCore(); err != nil {
		return err
	}
	if !l.eventsSeen {
		if err := l.emerg(&Diag{Msg: `no "events" section in configuration`, AfterSyntax: true}); err != nil {
			return err
		}
	}
	if n := listeningSockets(l.listens); l.eventsSeen && l.cfg.Core.WorkerConnections < n+1 {
		// one connection per listening socket plus one (nginx's channel)
		return l.emerg(&Diag{Msg: fmt.Sprintf("%d worker_connections are not enough for %d listening sockets",
			l.cfg.Core.WorkerConnections, n), AfterSyntax: true})
	}
	return nil
}

// listeningSockets counts the sockets nginx would open for the mail
// listens: per (family, port), a wildcard takes every address that does
// not ask for its own bind; without a wildcard each address has a socket.
// (Listens of http{} and stream{}, which nginx also counts, are ignored.)
func listeningSockets(ls []*Listen) int {
	type key struct {
		unix bool
		is4  bool
		port uint16
	}
	type group struct{ wildcard, total, bound int }
	groups := map[key]*group{}
	for _, l := range ls {
		k := key{unix: l.Network == "unix"}
		if !k.unix {
			k.is4 = l.Addr.Addr().Is4()
			k.port = l.Addr.Port()
		}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
		}
		g.total++
		switch {
		case !k.unix && l.Addr.Addr().IsUnspecified():
			g.wildcard++
		case l.Bind:
			g.bound++
		}
	}
	n := 0
	for _, g := range groups {
		if g.wildcard > 0 {
			n += g.wildcard + g.bound
		} else {
			n += g.total
		}
	}
	return n
}

// sysErr renders an errno the way nginx does: "(2: No such file or directory)".
func sysErr(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg := errno.Error()
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return fmt.Sprintf("(%d: %s)", int(errno), msg)
	}
	return "(" + err.Error() + ")"
}

// readFile reads and interprets one configuration file in the context of lv.
// at is the include directive's position (zero for the main file).
func (l *loader) readFile(path string, at Pos, lv *level) error {
	// nginx has no cycle check: it reads the file again, in the context of
	// the include, and usually fails there ("pid" is not allowed inside
	// mail{}, ...). So a file is read again once and only a third entry
	// is a cycle, where nginx would recurse until it runs out of file
	// descriptors and crashes. Check, which goes on after errors, calls
	// the first re-entry a cycle rather than report the file's errors
	// twice; both fail, as nginx does.
	limit := 2
	if l.check {
		limit = 1
	}
	entries := 0
	for _, f := range l.stack {
		if f == path {
			entries++
		}
	}
	if entries >= limit {
		return l.emerg(&Diag{Msg: fmt.Sprintf(`include of "%s" includes itself recursively`, path), Pos: at,
			Extra: "nginx has no cycle check and fails only when it runs out of file descriptors"})
	}
	data, err := os.ReadFile(path)
	if d, ok := l.o.Overlay[path]; ok {
		data, err = d, nil
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Op == "read" {
			// nginx opens directories fine and then fails to read them.
			return l.emerg(&Diag{Sev: SevCrit, Msg: fmt.Sprintf(`pread() "%s" failed %s`, path, sysErr(err))})
		}
		return l.emerg(&Diag{Msg: fmt.Sprintf(`open() "%s" failed %s`, path, sysErr(err)), Pos: at})
	}
	if !l.seenFiles[path] {
		l.seenFiles[path] = true
		l.cfg.Files = append(l.cfg.Files, File{Path: path, Data: data})
	}
	l.stack = append(l.stack, path)
	defer func() { l.stack = l.stack[:len(l.stack)-1] }()
	return l.walk(parseData(data, path, false), lv)
}

// include handles the include directive in any context.
func (l *loader) include(n *node, lv *level) error {
	name := n.args()[0]
	full := l.confPath(name)
	if !strings.ContainsAny(full, "*?[") {
		return l.readFile(full, n.pos, lv)
	}
	matches, err := nginxGlob(full)
	if err != nil {
		return l.emerg(&Diag{Msg: fmt.Sprintf(`glob() "%s" failed`, full), Pos: n.pos})
	}
	for _, m := range matches {
		if err := l.readFile(m, n.pos, lv); err != nil {
			return err
		}
	}
	return nil
}

// confPath resolves a path against the configuration directory
// (ngx_conf_full_name with conf_prefix).
func (l *loader) confPath(name string) string {
	// the path is used as a C string: it ends at a NUL byte
	name = cstr(name)
	if filepath.IsAbs(name) {
		return name
	}
	return l.cfg.ConfDir + name
}

// prefixPath resolves a path against the prefix.
func (l *loader) prefixPath(name string) string {
	name = cstr(name)
	if filepath.IsAbs(name) {
		return name
	}
	return l.o.Prefix + name
}

// nginxGlob expands a pattern like glob(3) with no flags: matches sorted
// in byte order, wildcards never match a leading dot, "[!...]" negates.
// Like glibc, a match is the pattern's text up to the matched element
// plus the element's name, so separators stay as written ("inc//*.conf"
// gives "inc//a.conf", which nginx then names in its messages).
func nginxGlob(pattern string) ([]string, error) {
	// paths are the matches so far, as text; "" is the start of a
	// relative pattern.
	paths := []string{""}
	rest := pattern
	for rest != "" {
		// The next separator run and element.
		i := 0
		for i < len(rest) && rest[i] == '/' {
			i++
		}
		sep := rest[:i]
		rest = rest[i:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			j = len(rest)
		}
		part := rest[:j]
		rest = rest[j:]
		if part == "" { // trailing slashes
			for k := range paths {
				paths[k] += sep
			}
			continue
		}
		last := rest == ""
		var next []string
		if !strings.ContainsAny(part, "*?[") {
			for _, p := range paths {
				c := p + sep + part
				if last {
					if _, err := os.Lstat(c); err != nil {
						continue
					}
				}
				next = append(next, c)
			}
			paths = next
			continue
		}
		goPat := globToGo(part)
		if _, err := filepath.Match(goPat, ""); err != nil {
			// glob(3) has no syntax errors: what it cannot read as a
			// pattern it matches literally
			goPat = globLiteral(part)
		}
		for _, p := range paths {
			dir := p + sep
			if dir == "" {
				dir = "."
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				nm := e.Name()
				if strings.HasPrefix(nm, ".") && !strings.HasPrefix(part, ".") {
					continue
				}
				if ok, _ := filepath.Match(goPat, nm); ok {
					next = append(next, p+sep+nm)
				}
			}
		}
		paths = next
	}
	sort.Strings(paths)
	return paths, nil
}

// globToGo turns one glob(3) path element into a filepath.Match pattern:
// "[!" negates like "[^", a "]" right after "[" or "[!" is a member, and a
// "[" without its "]" is an ordinary character.
func globToGo(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '\\':
			b.WriteByte(c)
			if i+1 < len(p) {
				i++
				b.WriteByte(p[i])
			}
			continue
		case '[':
		default:
			b.WriteByte(c)
			continue
		}
		j := i + 1
		neg := false
		if j < len(p) && (p[j] == '!' || p[j] == '^') {
			neg = true
			j++
		}
		start := j
		if j < len(p) && p[j] == ']' {
			j++
		}
		k := strings.IndexByte(p[j:], ']')
		if k < 0 {
			b.WriteString(`\[`)
			continue
		}
		k += j
		b.WriteByte('[')
		if neg {
			b.WriteByte('^')
		}
		for _, m := range []byte(p[start:k]) {
			if m == ']' || m == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(m)
		}
		b.WriteByte(']')
		i = k
	}
	return b.String()
}

// globLiteral escapes every pattern character of p.
func globLiteral(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if strings.IndexByte(`*?[]\\`, p[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
