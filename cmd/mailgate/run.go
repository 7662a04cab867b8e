package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
)

// daemonEnv marks the re-executed daemon child; its value is the file
// descriptor on which the child reports that it is up.
const daemonEnv = "MAILGATE_DAEMON_FD"

// generation is one running configuration: its server and logs.
type generation struct {
	cfg  *confparse.Config
	srv  *mail.Server
	logs *runLog
	done chan error // Serve's result
}

// serve runs the proxy: nginx without -t or -s.
func serve(prog string, o *options, p paths, l *earlyLog) int {
	readyFD := os.Getenv(daemonEnv)
	cfg, err := loadConfig(p, o.globals)
	if readyFD == "" {
		// The daemon child reads the configuration again; its parent
		// has already shown the warnings.
		logNotices(l, cfg)
	}
	if err != nil {
		logLoadError(l, err)
		return 1
	}
	// A process started by a binary upgrade (USR2) stays where its
	// parent put it, as nginx's does: it is already a daemon if the old
	// one was.
	inheritVal, inherited := os.LookupEnv(inheritEnv)
	if cfg.Core.Daemon && readyFD == "" && !inherited {
		return daemonize(l)
	}
	// Signals are caught from here on, so a -s sent as soon as the pid
	// file exists is never lost to Go's default action.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1,
		syscall.SIGUSR2, syscall.SIGWINCH)
	signal.Ignore(syscall.SIGPIPE)
	defer signal.Stop(sigs)
	var inherit map[string]net.Listener
	up := upgradeState{daemonized: readyFD != "" || inherited}
	if inherited {
		inherit = inheritedSockets(inheritVal, l.Logf)
		up.parent = os.Getppid()
	}
	// Bind retries are logged through the configured error_log (nil
	// BindLog), as nginx does: with the default level "error" only the
	// failures show, not the "try again" notices.
	g, err := startGeneration(cfg, p, l.stderr, nil, inherit, nil)
	if err != nil {
		l.Logf(errlog.Emerg, "%s", err.Error())
		return 1
	}
	if err := writePidFile(cfg.Core.Pid); err != nil {
		l.Logf(errlog.Emerg, "%s", err.Error())
		g.srv.Close()
		return 1
	}
	if err := procAdmin.apply(cfg); err != nil {
		// After a binary upgrade the old process still holds the
		// address: serve mail without the admin endpoint (a HUP once the
		// old process is gone takes it). Otherwise it is a bind failure.
		if !inherited {
			l.Logf(errlog.Emerg, "admin_listen %s failed: %v", cfg.Core.Admin.Addr, err)
			g.srv.Close()
			removePidFile(cfg.Core.Pid)
			return 1
		}
		l.Logf(errlog.Alert, "admin_listen %s failed: %v; no admin endpoint until a reload", cfg.Core.Admin.Addr, err)
	}
	if readyFD != "" {
		notifyParent(readyFD)
	}
	if err := redirectStderr(g.logs); err != nil {
		l.Logf(errlog.Alert, "dup2(STDERR_FILENO) failed %s", errnoText(err))
	}
	return supervise(g, p, o.globals, sigs, up)
}

// startGeneration sets up logs, builds the server and binds its sockets.
// prev, when set, is the running generation: once the new server is
// built, prev stops accepting and hands its listening sockets over, so a
// reload never closes a socket that stays in the configuration.
//
// inherited are sockets from a binary upgrade or a WINCH: they are used
// where the configuration has their address, and closed otherwise.
func startGeneration(cfg *confparse.Config, p paths, stderr io.Writer, prev *generation, inherited map[string]net.Listener, bindLog func(errlog.Level, string)) (*generation, error) {
	logs, err := newRunLog(cfg, p.errorLog, stderr)
	if err != nil {
		return nil, err
	}
	// Options.Inherit is filled only after NewServer succeeded, so a
	// configuration the engine rejects leaves the old generation serving.
	inherit := map[string]net.Listener{}
	for k, ln := range inherited {
		inherit[k] = ln
	}
	srv, err := mail.NewServer(cfg, mail.Options{Protocols: protocols(), Log: logs.Logger, BindLog: bindLog, Inherit: inherit,
		Debug: debugLogging(cfg), Observer: procAdmin.metrics, Registry: procAdmin.reg, AccessLog: logs.Access})
	if err != nil {
		logs.Close()
		return nil, err
	}
	if prev != nil {
		if err := probeNewListens(cfg, prev.srv.Addrs()); err != nil {
			logs.Close()
			return nil, err
		}
		for k, ln := range prev.srv.HandOff() {
			inherit[k] = ln
		}
	}
	if err := srv.Listen(); err != nil {
		logs.Close()
		return nil, err
	}
	g := &generation{cfg: cfg, srv: srv, logs: logs, done: make(chan error, 1)}
	go func() { g.done <- srv.Serve() }()
	return g, nil
}

// debugLogging reports whether any error_log of cfg is at debug, so that
// sessions write their debug lines.
func debugLogging(cfg *confparse.Config) bool {
	targets := append([]confparse.LogTarget(nil), cfg.Core.ErrorLogs...)
	if cfg.Mail != nil {
		for _, s := range cfg.Mail.Servers {
			targets = append(targets, s.Core.ErrorLogs...)
		}
	}
	for _, t := range targets {
		if t.Level == confparse.SevDebug {
			return true
		}
	}
	return false
}

// probeNewListens binds, and at once closes, every TCP address of cfg on
// a port the running generation does not listen on, so that a reload
// whose new address is taken fails before the running sockets are handed
// over, and the old configuration keeps serving, as with nginx. Ports the
// running generation already has are left to Listen: the engine groups
// addresses under a wildcard, so probing them would collide with our own
// sockets.
func probeNewListens(cfg *confparse.Config, running map[string]net.Addr) error {
	if cfg.Mail == nil {
		return nil
	}
	ports := map[uint16]bool{}
	for _, a := range running {
		if ta, ok := a.(*net.TCPAddr); ok {
			ports[uint16(ta.Port)] = true
		}
	}
	for _, l := range cfg.Mail.Listens {
		if l.Network != "tcp" || ports[l.Addr.Port()] {
			continue
		}
		if _, ok := running[l.Text]; ok {
			continue
		}
		network := "tcp4"
		if l.Addr.Addr().Is6() {
			network = "tcp6"
		}
		ln, err := net.Listen(network, l.Addr.String())
		if err != nil {
			return fmt.Errorf("bind() to %s failed %s", l.Text, errnoText(err))
		}
		ln.Close()
	}
	return nil
}

// upgradeState is what supervise knows about binary upgrades.
type upgradeState struct {
	// daemonized: started as a daemon or by an upgrade; only then does
	// WINCH stop accepting (nginx ignores it in a terminal).
	daemonized bool
	// parent is the pid of the process that passed us its sockets; USR2
	// is refused while it still runs, so two upgrades never overlap.
	parent int
	// child is the process started by our last USR2, while it runs.
	child *newBinary
	// parked holds the listening sockets after WINCH: nothing accepts on
	// them, but they stay open for a new binary or for a HUP that resumes.
	parked map[string]net.Listener
	// draining is closed when the sessions of the generation stopped by
	// WINCH have ended.
	draining chan struct{}
}

// supervisor is the master process's state: the running generation, the
// retired ones, and the binary upgrade in progress. Each signal has its
// method, as nginx's master has a flag per signal.
type supervisor struct {
	g       *generation
	p       paths
	globals string
	up      upgradeState
	olds    *retired
}

// supervise handles signals until the server stops, and returns the exit
// status.
func supervise(g *generation, p paths, globals string, sigs <-chan os.Signal, up upgradeState) int {
	m := &supervisor{g: g, p: p, globals: globals, up: up, olds: newRetired()}
	// nginx's start-up notices, in its order and words, so that log
	// watchers that look for "nginx/1.22.1" find it; mailgate's own
	// version stands beside it.
	m.log(errlog.Notice, `using the "epoll" event method`)
	m.log(errlog.Notice, "nginx/%s (mailgate/%s)", nginxCompat, version)
	if rel := osRelease(); rel != "" {
		m.log(errlog.Notice, "OS: %s", rel)
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.log(errlog.Notice, "getrlimit(RLIMIT_NOFILE): %d:%d", rl.Cur, rl.Max)
	}
	m.log(errlog.Notice, "mailgate/%s started, pid %d", version, os.Getpid())
	sdReady("serving")
	for {
		done := m.g.done
		if m.up.parked != nil {
			done = nil // the stopped generation ends on its own
		}
		var childDone chan *os.ProcessState
		if m.up.child != nil {
			childDone = m.up.child.done
		}
		select {
		case err := <-done:
			return m.served(err)
		case st := <-childDone:
			m.childExited(st)
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				return m.terminate(sig)
			case syscall.SIGQUIT:
				return m.quit(sig)
			case syscall.SIGUSR1:
				m.reopen(sig)
			case syscall.SIGHUP:
				m.reconfigure(sig)
			case syscall.SIGUSR2:
				m.changeBinary(sig)
			case syscall.SIGWINCH:
				m.stopAccepting(sig)
			}
		}
	}
}

func (m *supervisor) log(lvl errlog.Level, format string, args ...any) {
	errlog.Logf(logrus.NewEntry(m.g.logs.Logger), lvl, format, args...)
}

func (m *supervisor) received(sig syscall.Signal, what string) {
	if what == "" {
		m.log(errlog.Notice, "signal %d (%s) received", int(sig), sigName(sig))
		return
	}
	m.log(errlog.Notice, "signal %d (%s) received, %s", int(sig), sigName(sig), what)
}

// osRelease is nginx's "OS:" text: the kernel's name and release.
func osRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return ""
	}
	str := func(f [65]int8) string {
		b := make([]byte, 0, len(f))
		for _, c := range f {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		return string(b)
	}
	return str(u.Sysname) + " " + str(u.Release)
}

// pidFile is the file to remove at exit: NAME.oldbin while a new binary
// runs, as nginx's ngx_delete_pidfile.
func (m *supervisor) pidFile() string {
	if m.up.child != nil && m.g.cfg.Core.Pid != "" {
		return m.g.cfg.Core.Pid + oldbinSuffix
	}
	return m.g.cfg.Core.Pid
}

// exit ends the master: "exit", the pid file removed, the logs closed.
func (m *supervisor) exit(status int) int {
	if status == 0 {
		m.log(errlog.Notice, "exit")
	}
	removePidFile(m.pidFile())
	procAdmin.close()
	m.g.logs.Close()
	return status
}

// served: Serve ended without being asked to, a fatal listener error.
func (m *supervisor) served(err error) int {
	if err != nil && !errors.Is(err, mail.ErrServerClosed) {
		m.log(errlog.Emerg, "%s", err.Error())
	}
	return m.exit(1)
}

// childExited: the binary started by USR2 is gone; this process takes
// over again (and, after WINCH, accepts again).
func (m *supervisor) childExited(st *os.ProcessState) {
	// The pid file is renamed back before the exit is logged, so whoever
	// reads the log finds it in place.
	var renameErr error
	if pid := m.g.cfg.Core.Pid; pid != "" {
		renameErr = os.Rename(pid+oldbinSuffix, pid)
	}
	lvl, text := exitText("new binary process", m.up.child.pid, st)
	m.log(lvl, "%s", text)
	if renameErr != nil {
		pid := m.g.cfg.Core.Pid
		m.log(errlog.Alert, "rename() %s back to %s failed after the new binary process \"%s\" exited %s",
			pid+oldbinSuffix, pid, os.Args[0], errnoText(renameErr))
	}
	m.up.child = nil
	if m.up.parked != nil {
		m.resume()
	}
}

// resume starts accepting again on the parked sockets with the running
// configuration (nginx's restart of its workers).
func (m *supervisor) resume() {
	ng, err := startGeneration(m.g.cfg, m.p, os.Stderr, nil, m.up.parked, nil)
	if err != nil {
		m.log(errlog.Emerg, "%s", err.Error())
		return
	}
	old, draining := m.g, m.up.draining
	go func() {
		<-draining
		old.logs.Close()
	}()
	m.g, m.up.parked, m.up.draining = ng, nil, nil
}

// terminate (TERM, INT): every session of every generation ends now.
func (m *supervisor) terminate(sig syscall.Signal) int {
	m.received(sig, "exiting")
	sdStopping()
	m.g.srv.Close()
	m.olds.closeAll()
	if m.up.parked != nil {
		closeAll(m.up.parked)
		<-m.up.draining
	} else {
		<-m.g.done
	}
	m.olds.wait()
	return m.exit(0)
}

// quit (QUIT): stop accepting, let every session end on its own, within
// worker_shutdown_timeout if set, then exit.
func (m *supervisor) quit(sig syscall.Signal) int {
	m.received(sig, "shutting down")
	sdStopping()
	m.log(errlog.Notice, "gracefully shutting down")
	if m.up.parked != nil {
		closeAll(m.up.parked)
		<-m.up.draining
	} else {
		shutdown(m.g)
	}
	// The generations a reload retired still have sessions of their own:
	// nginx's master exits after its last worker, old ones included.
	m.olds.wait()
	return m.exit(0)
}

// reopen (USR1) reopens the log files.
func (m *supervisor) reopen(sig syscall.Signal) {
	m.received(sig, "reopening logs")
	if err := m.g.logs.Reopen(); err != nil {
		m.log(errlog.Emerg, "%s", err.Error())
	}
	if err := redirectStderr(m.g.logs); err != nil {
		m.log(errlog.Alert, "dup2(STDERR_FILENO) failed %s", errnoText(err))
	}
	m.log(errlog.Notice, "reopening logs")
}

// reconfigure (HUP) reads the configuration again; the old generation's
// sessions carry on with theirs. After WINCH it resumes accepting with the
// running configuration instead.
func (m *supervisor) reconfigure(sig syscall.Signal) {
	m.received(sig, "reconfiguring")
	sdReloading()
	if m.up.parked != nil {
		m.resume()
		sdReady("serving")
		return
	}
	ng := reload(m.g, m.p, m.globals, m.log)
	if ng == nil {
		procAdmin.reloaded(nil, m.log)
		sdReady("reload failed; serving the previous configuration")
		return
	}
	old := m.g
	m.olds.retire(old, func() { old.logs.Close() })
	m.g = ng
	procAdmin.reloaded(ng.cfg, m.log)
	if err := redirectStderr(m.g.logs); err != nil {
		m.log(errlog.Alert, "dup2(STDERR_FILENO) failed %s", errnoText(err))
	}
	sdReady("serving")
}

// changeBinary (USR2) starts the binary at our path with the listening
// sockets, nginx's binary upgrade.
func (m *supervisor) changeBinary(sig syscall.Signal) {
	if m.up.child != nil || (m.up.parent > 1 && os.Getppid() == m.up.parent) {
		m.received(sig, "ignoring")
		m.log(errlog.Crit, "the changing binary signal is ignored: you should shutdown or terminate before either old or new binary's process")
		return
	}
	m.received(sig, "changing binary")
	m.log(errlog.Notice, "changing binary")
	var fds map[string]int
	var err error
	if m.up.parked != nil {
		fds, err = mail.DupListeners(m.up.parked)
	} else {
		fds, err = m.g.srv.ListenerFDs()
	}
	if err != nil {
		m.log(errlog.Alert, "cannot pass the listening sockets to a new binary %s", errnoText(err))
		return
	}
	m.up.child = execNewBinary(m.g.cfg.Core.Pid, fds, m.log)
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// stopAccepting (WINCH, daemons only) parks the listening sockets and
// lets the running generation's sessions end.
func (m *supervisor) stopAccepting(sig syscall.Signal) {
	if !m.up.daemonized {
		m.received(sig, "")
		return
	}
	m.received(sig, "stop accepting connections")
	if m.up.parked != nil {
		return
	}
	m.up.parked = m.g.srv.HandOff()
	draining := make(chan struct{})
	m.up.draining = draining
	m.olds.retire(m.g, func() { close(draining) })
}

// retired tracks the generations that stopped accepting and are letting
// their sessions end, after a reload or a WINCH: QUIT waits for them and
// TERM closes them, as nginx's master waits for and signals its old
// workers too.
type retired struct {
	mu   sync.Mutex
	gens map[*generation]struct{}
	wg   sync.WaitGroup
}

func newRetired() *retired { return &retired{gens: map[*generation]struct{}{}} }

// retire shuts g down gracefully in the background; after runs once its
// sessions have ended.
func (r *retired) retire(g *generation, after func()) {
	r.mu.Lock()
	r.gens[g] = struct{}{}
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		shutdown(g)
		r.mu.Lock()
		delete(r.gens, g)
		r.mu.Unlock()
		after()
	}()
}

// closeAll closes every retired generation's sessions at once.
func (r *retired) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for g := range r.gens {
		g.srv.Close()
	}
}

// wait returns once every retired generation has ended.
func (r *retired) wait() { r.wg.Wait() }

func closeAll(lns map[string]net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// shutdown stops a generation gracefully: listeners close at once and the
// live sessions may finish, bounded by worker_shutdown_timeout if set.
func shutdown(g *generation) {
	ctx := context.Background()
	if t := g.cfg.Core.WorkerShutdownTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	if err := g.srv.Shutdown(ctx); err != nil {
		g.srv.Close()
	}
	<-g.done
}

// reload re-reads the configuration. On any error the old generation keeps
// running and the error is logged, as nginx does. On success the old
// generation shuts down gracefully (its sessions keep their configuration)
// and the new one takes over the listeners.
func reload(old *generation, p paths, globals string, log func(errlog.Level, string, ...any)) *generation {
	cfg, err := loadConfig(p, globals)
	if cfg != nil {
		for _, d := range cfg.Notices {
			if !d.MailgateOnly {
				log(d.Sev, "%s", diagText(d))
			}
		}
	}
	if err != nil {
		var ce *confparse.Error
		if errors.As(err, &ce) {
			log(ce.Sev, "%s", ce.Error())
		} else {
			log(errlog.Emerg, "%s", err.Error())
		}
		return nil
	}
	log(errlog.Notice, "reconfiguring")
	ng, err := startGeneration(cfg, p, os.Stderr, old, nil, nil)
	if err != nil {
		log(errlog.Emerg, "%s", err.Error())
		return nil
	}
	// The old generation has handed its sockets over; its sessions carry
	// on with the old configuration until they end (the caller retires it).
	if cfg.Core.Pid != old.cfg.Core.Pid {
		if err := writePidFile(cfg.Core.Pid); err != nil {
			log(errlog.Emerg, "%s", err.Error())
		} else {
			removePidFile(old.cfg.Core.Pid)
		}
	}
	return ng
}

// sigName is the C name of a signal, as nginx logs it.
func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGUSR1:
		return "SIGUSR1"
	case syscall.SIGUSR2:
		return "SIGUSR2"
	case syscall.SIGWINCH:
		return "SIGWINCH"
	}
	return "SIG" + strconv.Itoa(int(s))
}

// writePidFile writes "<pid>\n", truncating the file.
func writePidFile(path string) error {
	if path == "" {
		return nil
	}
	if err := pidFileOwner(path); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return &openError{path, err}
	}
	return nil
}

// pidFileOwner refuses a pid file that names a running nginx. nginx
// itself just overwrites its pid file, because a second nginx with the
// same configuration fails earlier, binding the same ports. mailgate binds
// only the mail{} ports, so with the nginx.conf of an nginx that still
// serves http{} (Debian's has "pid /run/nginx.pid;") it would take over
// nginx's pid file, and "nginx -s reload" or systemd would then signal
// mailgate instead of nginx.
func pidFileOwner(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pid, ok := parsePid(b)
	if !ok || pid == os.Getpid() {
		return nil
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "nginx" {
		return nil // stale, or not nginx's: overwritten as nginx does
	}
	// mailgate itself may run under an "nginx" symlink.
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil {
		if self, err := os.Executable(); err == nil && exe == self {
			return nil
		}
	}
	return fmt.Errorf("pid file \"%s\" belongs to a running nginx (pid %d); give mailgate its own: a configuration file of its own with \"pid /run/mailgate.pid;\" that includes the mail{} part (\"mailgate check\" explains)", path, pid)
}

func removePidFile(path string) {
	if path != "" {
		os.Remove(path)
	}
}

// daemonize re-executes mailgate detached (new session, stdin and stdout on
// /dev/null; stderr is kept, as nginx keeps it) and waits until the child
// has loaded its configuration, bound its sockets and written the pid
// file. Go cannot fork, so this replaces nginx's fork-and-exit.
func daemonize(l *earlyLog) int {
	self, err := os.Executable()
	if err != nil {
		l.Logf(errlog.Emerg, "cannot find own executable: %v", err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		l.Logf(errlog.Emerg, "open() \"%s\" failed %s", os.DevNull, errnoText(err))
		return 1
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		l.Logf(errlog.Emerg, "pipe() failed %s", errnoText(err))
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		l.Logf(errlog.Emerg, "fork() failed: %v", err)
		return 1
	}
	w.Close()
	buf := make([]byte, 1)
	n, _ := r.Read(buf)
	r.Close()
	if n == 1 && buf[0] == 'R' {
		cmd.Process.Release()
		return 0
	}
	// The child failed; it has said why on stderr.
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode()
		}
	}
	return 1
}

// notifyParent tells the waiting parent that the daemon is up.
func notifyParent(fdText string) {
	fd, err := strconv.Atoi(fdText)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	if f == nil {
		return
	}
	fmt.Fprint(f, "R")
	f.Close()
	os.Unsetenv(daemonEnv)
}
