package confparse

// Main-context directives (ngx_core_module, ngx_errlog_module,
// ngx_conf_module, ngx_openssl_module, ngx_regex_module,
// ngx_thread_pool_module), the events{} block, and the http{}, stream{}
// and mail{} blocks.

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"mailgate/mail/ngx"
)

func coreDirectives() []*directive {
	m := ctxMain
	return []*directive{
		{name: "daemon", module: "core", ctx: m, args: take1, set: setFlag, def: "on"},
		{name: "master_process", module: "core", ctx: m, args: take1, set: setFlag, def: "on"},
		{name: "timer_resolution", module: "core", ctx: m, args: take1, set: setMsec},
		{name: "pid", module: "core", ctx: m, args: take1, set: setStr, def: DefaultPid},
		{name: "lock_file", module: "core", ctx: m, args: take1, set: setStr},
		{name: "worker_processes", module: "core", ctx: m, args: take1, set: setWorkerProcesses, def: "1"},
		{name: "debug_points", module: "core", ctx: m, args: take1, set: setEnum("stop", "abort")},
		{name: "user", module: "core", ctx: m, args: take12, set: setUser},
		{name: "worker_priority", module: "core", ctx: m, args: take1, set: setPriority},
		{name: "worker_cpu_affinity", module: "core", ctx: m, args: oneMore, set: setCPUAffinity},
		{name: "worker_rlimit_nofile", module: "core", ctx: m, args: take1, set: setNum},
		{name: "worker_rlimit_core", module: "core", ctx: m, args: take1, set: setOffset},
		{name: "worker_shutdown_timeout", module: "core", ctx: m, args: take1, set: setMsec},
		{name: "working_directory", module: "core", ctx: m, args: take1, set: setStr},
		{name: "env", module: "core", ctx: m, args: take1, set: setArray},
		{name: "load_module", module: "core", ctx: m, args: take1, set: setLoadModule},
		{name: "error_log", module: "errlog", ctx: m, args: oneMore, set: setErrorLog},
		{name: "include", module: "conf", ctx: ctxAny, args: take1, set: func(l *loader, lv *level, n *node) error {
			return l.include(n, lv)
		}},
		{name: "ssl_engine", module: "openssl", ctx: m, args: take1, set: setSSLEngine},
		// 1.27.4+; accepted as newer nginx does.
		{name: "ssl_object_cache_inheritable", module: "openssl", ctx: m, args: take1, set: setFlag, def: "on"},
		{name: "pcre_jit", module: "regex", ctx: m, args: take1, set: setFlag},
		{name: "thread_pool", module: "thread_pool", ctx: m, args: take23, set: setThreadPool},
		{name: "events", module: "events", ctx: m, args: isBlock | take0, set: setEventsBlock},
		{name: "http", module: "http", ctx: m, args: isBlock | take0, set: setOpaqueBlock},
		{name: "stream", module: "stream", ctx: m, args: isBlock | take0, set: setOpaqueBlock},
		{name: "mail", module: "mail", ctx: m, args: isBlock | take0, set: setMailBlock},
	}
}

func eventsDirectives() []*directive {
	e := ctxEvents
	return []*directive{
		{name: "worker_connections", module: "event_core", ctx: e, args: take1, set: setWorkerConnections, def: "512"},
		{name: "use", module: "event_core", ctx: e, args: take1, set: setEventUse},
		{name: "multi_accept", module: "event_core", ctx: e, args: take1, set: setFlag},
		{name: "accept_mutex", module: "event_core", ctx: e, args: take1, set: setFlag},
		{name: "accept_mutex_delay", module: "event_core", ctx: e, args: take1, set: setMsec},
		{name: "debug_connection", module: "event_core", ctx: e, args: take1, set: setDebugConnection},
		{name: "epoll_events", module: "epoll", ctx: e, args: take1, set: setNum},
		{name: "worker_aio_requests", module: "epoll", ctx: e, args: take1, set: setNum},
	}
}

func setWorkerProcesses(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	a := n.args()[0]
	if cstr(a) == "auto" { // strcmp(): "auto" then a NUL byte is auto
		lv.vals[n.name()] = &setting{v: -1, pos: n.pos}
		return nil
	}
	v, ok := ngx.Atoi(a)
	if !ok {
		return l.fail(reason(n, "invalid value"))
	}
	lv.vals[n.name()] = &setting{v: int(v), pos: n.pos}
	return nil
}

func setUser(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	if os.Geteuid() != 0 {
		l.warn(n.pos, `the "user" directive makes sense only if the master process runs with super-user privileges, ignored`)
		lv.vals[n.name()] = &setting{v: [2]string{}, pos: n.pos}
		return nil
	}
	// the names are C strings to getpwnam() and getgrnam()
	a := []string{cstr(n.args()[0])}
	if len(n.args()) == 2 {
		a = append(a, cstr(n.args()[1]))
	}
	if _, err := user.Lookup(a[0]); err != nil {
		return l.fail(errAt(n, `getpwnam("%s") failed`, a[0]))
	}
	group := a[0]
	if len(a) == 2 {
		group = a[1]
	}
	if _, err := user.LookupGroup(group); err != nil {
		return l.fail(errAt(n, `getgrnam("%s") failed`, group))
	}
	lv.vals[n.name()] = &setting{v: [2]string{a[0], group}, pos: n.pos}
	return nil
}

func setPriority(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	a := n.args()[0]
	neg := false
	if a != "" && (a[0] == '-' || a[0] == '+') {
		neg = a[0] == '-'
		a = a[1:]
	}
	v, ok := ngx.Atoi(a)
	if !ok {
		return l.fail(reason(n, "invalid number"))
	}
	if neg {
		v = -v
	}
	if v == 0 {
		// nginx keeps 0 as "unset", so a second worker_priority after 0
		// is not a duplicate.
		return nil
	}
	lv.vals[n.name()] = &setting{v: int(v), pos: n.pos}
	return nil
}

// setCPUAffinity validates worker_cpu_affinity (ignored by mailgate).
func setCPUAffinity(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	a := n.args()
	masks := a
	auto := cstr(a[0]) == "auto" // strcmp()
	if auto {
		if len(a) > 2 {
			return l.fail(errAt(n, `invalid number of arguments in "worker_cpu_affinity" directive`))
		}
		masks = a[1:]
	}
	for _, m := range masks {
		if len(m) > 1024 {
			return l.fail(errAt(n, `"worker_cpu_affinity" supports up to 1024 CPUs only`))
		}
		// nginx reads each mask from its last character
		for i := len(m) - 1; i >= 0; i-- {
			if c := m[i]; c != ' ' && c != '0' && c != '1' {
				return l.fail(errAt(n, `invalid character "%s" in "worker_cpu_affinity"`, []byte{c}))
			}
		}
	}
	// the number of masks for the worker_processes check: "auto" binds
	// workers from one (possibly implicit) mask, which never warns
	count := len(a)
	if auto {
		count = 1
	}
	lv.vals[n.name()] = &setting{v: count, pos: n.pos}
	return nil
}

// setThreadPool validates thread_pool (mailgate has no thread pools).
func setThreadPool(l *loader, lv *level, n *node) error {
	a := n.args()
	if l.threadPools == nil {
		l.threadPools = map[string]bool{}
	}
	if l.threadPools[a[0]] {
		return l.fail(errAt(n, `duplicate thread pool "%s"`, a[0]))
	}
	threads := false
	for _, p := range a[1:] {
		switch {
		case strings.HasPrefix(p, "threads="):
			v, ok := ngx.Atoi(p[8:])
			if !ok || v == 0 {
				return l.fail(errAt(n, `invalid threads value "%s"`, p))
			}
			threads = true
		case strings.HasPrefix(p, "max_queue="):
			if _, ok := ngx.Atoi(p[10:]); !ok {
				return l.fail(errAt(n, `invalid max_queue value "%s"`, p))
			}
		}
	}
	if !threads {
		return l.fail(errAt(n, `"thread_pool" must have "threads" parameter`))
	}
	l.threadPools[a[0]] = true
	lv.vals[n.name()] = &setting{v: a[0], pos: n.pos}
	return nil
}

func setLoadModule(l *loader, lv *level, n *node) error {
	if l.modulesUsed {
		return l.fail(reason(n, "is specified too late"))
	}
	// mailgate cannot dlopen nginx modules and has the mail module built
	// in. It checks only what nginx's dlopen() would fail on before it
	// reads an ELF header: a file that cannot be opened, or a directory.
	// Any other existing file is accepted without being loaded.
	path := l.prefixPath(n.args()[0])
	if why := moduleFileProblem(path); why != "" {
		return l.fail(errAt(n, `dlopen() "%s" failed (%s: %s)`, path, path, why))
	}
	// Loading the same nginx module twice: dlopen() hands back the loaded
	// object and nginx refuses its module list a second time.
	if name, ok := nginxModuleName(path); ok {
		if l.loadedModules[name] {
			return l.fail(errAt(n, `module "%s" is already loaded`, name))
		}
		if l.loadedModules == nil {
			l.loadedModules = map[string]bool{}
		}
		l.loadedModules[name] = true
	}
	l.mgNotice(SevNotice, n.pos, `"load_module" directive ignored`,
		"mailgate has the mail module built in and does not load nginx modules; the file "+
			path+" is not opened")
	return nil
}

// moduleFileProblem returns glibc's dlopen() text for a module path that
// cannot be opened or is a directory, and "" for any other file.
func moduleFileProblem(path string) string {
	f, err := os.Open(path)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return "cannot open shared object file: " + capitalize(errno.Error())
		}
		return "cannot open shared object file: " + err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return "cannot read file data: " + capitalize(syscall.EISDIR.Error())
	}
	return ""
}

// nginxModuleName is the module an nginx module file registers first,
// named after the file (ngx_mail_module.so registers ngx_mail_module),
// for the nginx module files Debian ships.
func nginxModuleName(path string) (string, bool) {
	base := filepath.Base(path)
	if !strings.HasPrefix(base, "ngx_") || !strings.HasSuffix(base, "_module.so") {
		return "", false
	}
	return strings.TrimSuffix(base, ".so"), true
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func setSSLEngine(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	lv.vals[n.name()] = &setting{v: n.args()[0], pos: n.pos}
	l.mgNotice(SevWarn, n.pos, `"ssl_engine" directive ignored`,
		"mailgate uses Go's TLS stack and has no OpenSSL engines")
	return nil
}

func setWorkerConnections(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v, ok := ngx.Atoi(n.args()[0])
	if !ok {
		return l.fail(errAt(n, `invalid number "%s"`, n.args()[0]))
	}
	lv.vals[n.name()] = &setting{v: int(v), pos: n.pos}
	return nil
}

func setEventUse(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	// Debian's build has only the epoll event module.
	switch n.args()[0] {
	case "epoll":
	default:
		return l.fail(errAt(n, `invalid event type "%s"`, n.args()[0]))
	}
	lv.vals[n.name()] = &setting{v: n.args()[0], pos: n.pos}
	return nil
}

// setDebugConnection validates debug_connection like nginx (a debug
// build): an address, a CIDR, "unix:" or a host name resolved now.
func setDebugConnection(l *loader, lv *level, n *node) error {
	a := n.args()[0]
	if cstr(a) == "unix:" { // strcmp()
		return nil
	}
	if _, done, ok := parseCIDR(a); ok {
		if done {
			l.warn(n.pos, "low address bits of %s are meaningless", a)
		}
		return nil
	}
	if addrs, err := lookupHost(cstr(a)); err != nil || len(addrs) == 0 {
		return l.fail(errAt(n, `host not found in debug_connection "%s"`, a))
	}
	return nil
}

func setEventsBlock(l *loader, lv *level, n *node) error {
	if l.eventsSeen {
		return l.fail(reason(n, "is duplicate"))
	}
	l.eventsSeen = true
	l.modulesUsed = true
	l.events = newLevel(ctxEvents, n.pos)
	return l.walk(n.children, l.events)
}

func setOpaqueBlock(l *loader, lv *level, n *node) error {
	name := n.name()
	seen := &l.httpSeen
	if name == "stream" {
		seen = &l.streamSeen
	}
	if *seen {
		return l.fail(reason(n, "is duplicate"))
	}
	*seen = true
	l.modulesUsed = true
	l.mgNotice(SevNotice, n.pos, `"`+name+`" block ignored`,
		"mailgate is a mail proxy only; the "+name+"{} block is read for syntax and includes but not served")
	lv = newLevel(ctxOpaque, n.pos)
	lv.opaque = name
	return l.walk(n.children, lv)
}

// finishCore fills Config.Core from the main and events levels.
func (l *loader) finishCore() error {
	c := &l.cfg.Core
	c.Daemon = true
	c.MasterProcess = true
	c.WorkerProcesses = 1
	c.WorkerConnections = 512
	c.Pid = DefaultPid
	mv := l.main.vals
	if s := mv["daemon"]; s != nil {
		c.Daemon = s.v.(bool)
	}
	if s := mv["master_process"]; s != nil {
		c.MasterProcess = s.v.(bool)
	}
	if s := mv["worker_processes"]; s != nil {
		c.WorkerProcesses = s.v.(int)
	}
	// an empty pid means the default, as when there is none
	if s := mv["pid"]; s != nil && s.v.(string) != "" {
		c.Pid = l.prefixPath(s.v.(string))
	}
	if s := mv["worker_shutdown_timeout"]; s != nil {
		c.WorkerShutdownTimeout = s.v.(time.Duration)
	}
	if s := mv["worker_rlimit_nofile"]; s != nil {
		c.WorkerRlimitNofile = s.v.(int)
	}
	if s := mv["worker_cpu_affinity"]; s != nil {
		masks, procs := s.v.(int), c.WorkerProcesses
		if procs == -1 {
			procs = runtime.NumCPU()
		}
		if masks != 1 && masks != procs {
			l.notice(Diag{Sev: SevWarn, AfterSyntax: true, Msg: `the number of "worker_processes" is not equal to ` +
				`the number of "worker_cpu_affinity" masks, using last mask for remaining worker processes`})
		}
	}
	if s := mv["user"]; s != nil {
		u := s.v.([2]string)
		c.User, c.Group = u[0], u[1]
	}
	if s := mv["error_log"]; s != nil {
		c.ErrorLogs = s.v.([]LogTarget)
	}
	if l.events != nil {
		if s := l.events.vals["worker_connections"]; s != nil {
			c.WorkerConnections = s.v.(int)
		}
	}
	l.finishAdmin() // mailgate-only (admin.go)
	return nil
}

// lintCore advises on main-context directives mailgate ignores or treats
// differently from nginx.
func (l *loader) lintCore(adv advise) {
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
}
