package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
	"mailgate/mail/park"
	"mailgate/proxy"
)

// Options configure a Server.
type Options struct {
	// Protocols are the protocol modules by name: "pop3", "imap", "smtp".
	Protocols map[string]Protocol
	// Log receives every log line (fields errlog.LevelKey, errlog.ConnKey).
	Log *logrus.Logger

	// Inherit holds listening sockets handed over by a previous generation
	// (see HandOff), by key (the listen entry's text, "0.0.0.0:110",
	// "unix:/path"). Listen uses them instead of binding again and closes
	// the ones the new configuration no longer has.
	Inherit map[string]net.Listener

	// BindLog, if set, receives the messages nginx prints while it retries
	// bind() on EADDRINUSE: each failure at emerg ("bind() to
	// 127.0.0.1:19143 failed (98: Address already in use)") and "try again
	// to bind() after 500ms" at notice. Nil: they go to Log.
	BindLog func(level errlog.Level, msg string)

	// NewAuth, if set, makes the auth_http client of each server block
	// instead of auth.NewClient (tests use it to fake the auth server).
	NewAuth func(*confparse.AuthHTTPConf) AuthClient

	// DialUpstream, if set, opens upstream connections instead of
	// proxy.DialProxy (tests give a scripted upstream; the real upstream
	// login and relay run over it).
	DialUpstream DialFunc

	// Sleep, if set, replaces the engine's Auth-Wait pauses (fuzzers and
	// tests make them instant). It reports whether d passed before ctx
	// ended.
	Sleep func(ctx context.Context, d time.Duration) bool

	// Debug writes the debug lines that follow a session (state changes,
	// the auth_http request and answer, the upstream login, the relay's
	// byte counts), passwords hidden. Off, they are not even formatted.
	// cmd/mailgate sets it when an error_log is at debug.
	Debug bool

	// ParkAfter is how long a quiet client (before login) or a quiet relay
	// direction is waited for on its goroutine before it is parked
	// (mail/park); 0 means 200 ms, a negative value never parks.
	// ServeConn parks only when it is set above 0 (the session fuzzers
	// set it tiny, so that every wait parks).
	ParkAfter time.Duration

	// AccessLog, if set, receives every ended session of a server block
	// with access_log lines (mailgate-only; package mail/accesslog).
	AccessLog SessionLogger

	// ConnState, if set, is called on the session's goroutine at each
	// change of state (metrics hooks), like net/http's ConnState.
	ConnState func(s *Session, st State)

	// mailgate-only (issue 13, docs/admin.md). Observer, if set, gets the
	// engine's events for metrics (observe.go). Registry, if set, is where
	// the server lists its live sessions; every generation of a process
	// may share one. Nil: the server keeps its own.
	Observer Observer
	Registry *Registry
}

// State is where a session is.
type State int

const (
	// StateNew: accepted; PROXY header, TLS handshake and greeting next.
	StateNew State = iota
	// StatePreAuth: reading commands in the auth state.
	StatePreAuth
	// StateAuth: waiting for auth_http or the upstream login.
	StateAuth
	// StateRelay: logged in, relaying.
	StateRelay
	// StateClosed: the session is over.
	StateClosed
)

var stateNames = [...]string{"new", "pre-auth", "auth", "relay", "closed"}

func (st State) String() string {
	if st >= 0 && int(st) < len(stateNames) {
		return stateNames[st]
	}
	return "unknown"
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("mail: server closed")

// connCounter is nginx's global connection counter: client, auth_http and
// upstream connections each take a number ("*N" in logs).
var connCounter atomic.Uint64

// NextConnID takes the next connection number.
func NextConnID() uint64 { return connCounter.Add(1) }

// serverCtx is what the engine needs per server{} block.
type serverCtx struct {
	conf     *confparse.Server
	proto    Protocol
	auth     AuthClient
	tls      *tls.Config
	prepared any          // Preparer's result, nil if the protocol has none
	upTLS    *upstreamTLS // mailgate-only proxy_ssl_* (upstream_tls.go); nil: plain
}

type socket struct {
	spec     *socketSpec
	ln       net.Listener
	kd       keepaliveDefaults
	handoff  atomic.Bool
	accepted chan struct{} // closed when the accept loop has returned
}

// Server is one generation of the mail proxy: every listening socket of a
// configuration and the sessions accepted on them.
type Server struct {
	cfg     *confparse.Config
	opts    Options
	log     *logrus.Logger
	specs   []*socketSpec
	servers map[*confparse.Server]*serverCtx

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	// expired is cancelled when a graceful shutdown runs out of time.
	expired context.Context
	expire  context.CancelFunc

	mu       sync.Mutex
	socks    []*socket
	conns    map[net.Conn]struct{}
	closing  bool // Shutdown or Close called
	done     chan struct{}
	doneOnce sync.Once
	sessions sync.WaitGroup
	serving  bool
	// connLimit bounds the client and upstream connections (see
	// connectionLimit); 0: none. workerConns is worker_connections, for
	// the log line at the limit.
	connLimit, workerConns int
	loops                  sync.WaitGroup

	reg *Registry // Options.Registry or the server's own (registry.go)

	// parker holds idle pre-auth sessions without a goroutine (park.go);
	// made at the first park, nil if it could not be.
	parkerOnce sync.Once
	parker     atomic.Pointer[park.Parker]
}

// parkAfter is Options.ParkAfter with its default.
func (s *Server) parkAfter() time.Duration {
	if s.opts.ParkAfter == 0 {
		return defaultParkAfter
	}
	return s.opts.ParkAfter
}

// parkerOf returns the server's parker, making it at the first call.
func (s *Server) parkerOf() *park.Parker {
	s.parkerOnce.Do(func() {
		if p, err := park.New(); err == nil {
			s.parker.Store(p)
		}
	})
	return s.parker.Load()
}

// Parked is the number of connections parked now (sessions before login
// and relay directions).
func (s *Server) Parked() int {
	if p := s.parker.Load(); p != nil {
		return p.Parked()
	}
	return 0
}

// closeParker resumes every parked session (their connections are closed
// or about to be) and stops the parker.
func (s *Server) closeParker() {
	s.parkerOnce.Do(func() {}) // no parker is made after this
	if p := s.parker.Load(); p != nil {
		p.Close()
	}
}

// NewServer prepares a server for cfg: protocol modules, auth_http clients
// and TLS certificates per server block. It binds nothing.
func NewServer(cfg *confparse.Config, o Options) (*Server, error) {
	log := o.Log
	if log == nil {
		log = logrus.New()
		log.SetOutput(io.Discard)
	}
	s := &Server{
		cfg:     cfg,
		opts:    o,
		log:     log,
		servers: map[*confparse.Server]*serverCtx{},
		conns:   map[net.Conn]struct{}{},
		done:    make(chan struct{}),
		reg:     o.Registry,
	}
	if s.reg == nil {
		s.reg = NewRegistry()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if o.ParkAfter > 0 {
		// Asked for explicitly (tests): the parker and its goroutine
		// exist from the start, not from the first quiet client.
		s.parkerOf()
	}
	s.expired, s.expire = context.WithCancel(context.Background())
	if cfg == nil || cfg.Mail == nil {
		return s, nil
	}
	for _, sc := range cfg.Mail.Servers {
		p := o.Protocols[sc.Protocol]
		if p == nil {
			return nil, fmt.Errorf("mail: no protocol module for %q", sc.Protocol)
		}
		x := &serverCtx{conf: sc, proto: p, auth: o.newAuth(&sc.AuthHTTP)}
		if pr, ok := p.(Preparer); ok {
			x.prepared = pr.Prepare(sc)
		}
		if sc.UsesTLS() {
			t, err := loadTLS(sc)
			if err != nil {
				return nil, err
			}
			x.tls = t
		}
		up, err := loadUpstreamTLS(sc)
		if err != nil {
			return nil, err
		}
		x.upTLS = up
		s.servers[sc] = x
	}
	s.specs = groupSockets(cfg.Mail.Listens)
	s.connLimit = connectionLimit(cfg, len(s.specs))
	s.workerConns = cfg.Core.WorkerConnections
	return s, nil
}

func (s *Server) bindLog(l errlog.Level, msg string) {
	if s.opts.BindLog != nil {
		s.opts.BindLog(l, msg)
		return
	}
	errlog.Log(logrus.NewEntry(s.log), l, msg)
}

// Listen binds every socket as nginx groups them. A bind() failing with
// EADDRINUSE is retried 5 times, 500ms apart, reporting each failure
// through BindLog; then the error is "still could not bind()". Any other
// failure is returned at once with nginx's text ("bind() to
// 127.0.0.1:19143 failed (13: Permission denied)").
func (s *Server) Listen() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if len(s.socks) > 0 {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()

	opened := make([]*socket, len(s.specs))
	closeAll := func() {
		for _, so := range opened {
			if so != nil {
				so.ln.Close()
			}
		}
	}
	used := map[string]bool{}
	for i, sp := range s.specs {
		if ln, ok := s.opts.Inherit[sp.Key]; ok {
			opened[i] = &socket{spec: sp, ln: ln, kd: listenerKeepalive(ln)}
			used[sp.Key] = true
		}
	}
	for try := 0; try < 5; try++ {
		failed := false
		for i, sp := range s.specs {
			if opened[i] != nil {
				continue
			}
			ln, kd, err := openSocket(sp.Main)
			if err != nil {
				if !isAddrInUse(err) {
					closeAll()
					return err
				}
				s.bindLog(errlog.Emerg, err.Error())
				failed = true
				continue
			}
			opened[i] = &socket{spec: sp, ln: ln, kd: kd}
		}
		if !failed {
			for k, ln := range s.opts.Inherit {
				if !used[k] {
					ln.Close()
				}
			}
			s.mu.Lock()
			for _, so := range opened {
				so.accepted = make(chan struct{})
				s.socks = append(s.socks, so)
			}
			s.mu.Unlock()
			return nil
		}
		if try < 4 {
			s.bindLog(errlog.Notice, "try again to bind() after 500ms")
			time.Sleep(500 * time.Millisecond)
		}
	}
	closeAll()
	return errors.New("still could not bind()")
}

// listenerKeepalive reads the keepalive timers of an inherited socket.
func listenerKeepalive(ln net.Listener) keepaliveDefaults {
	var kd keepaliveDefaults
	if _, ok := ln.(interface{ keepsKernelKeepalive() }); ok {
		// One of ours, handed over by the previous generation.
		kd.quiet = true
		return kd
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return kd
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return kd
	}
	rc.Control(func(fd uintptr) { //nolint:errcheck
		kd.idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		kd.intvl, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		kd.cnt, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	})
	return kd
}

// Addrs returns the bound address of every socket by key (useful when a
// listen had port 0).
func (s *Server) Addrs() map[string]net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]net.Addr{}
	for _, so := range s.socks {
		m[so.spec.Key] = so.ln.Addr()
	}
	return m
}

// Serve accepts connections on every socket (binding first if Listen was
// not called) and blocks until Shutdown or Close; it then returns
// ErrServerClosed.
func (s *Server) Serve() error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing || s.serving {
		s.mu.Unlock()
		if s.serving {
			return errors.New("mail: Serve called twice")
		}
		return ErrServerClosed
	}
	s.serving = true
	s.reg.addServer(s)
	defer s.reg.removeServer(s)
	for _, so := range s.socks {
		if so.handoff.Load() {
			close(so.accepted)
			continue
		}
		s.loops.Add(1)
		go s.acceptLoop(so)
	}
	s.mu.Unlock()
	<-s.done
	return ErrServerClosed
}

func (s *Server) acceptLoop(so *socket) {
	defer s.loops.Done()
	defer close(so.accepted)
	for !s.guardAccept(so) {
		// A contained panic: accept again after a pause, so that a
		// panic on every connection cannot become a busy loop.
		time.Sleep(10 * time.Millisecond)
	}
}

// accept is the accept loop proper; it returns when the socket is closed
// or handed off.
func (s *Server) accept(so *socket) {
	var delay time.Duration
	for {
		c, err := so.ln.Accept()
		if err != nil {
			if s.stopped(so) || errors.Is(err, net.ErrClosed) {
				return
			}
			// nginx's levels: an aborted connection is an error and the
			// next one is taken at once; running out of descriptors is
			// critical and accepting stops for accept_mutex_delay
			// (500ms), so that the loop does not spin while nothing can
			// be accepted; anything else is an alert.
			lvl, pause := errlog.Alert, time.Duration(0)
			switch errlog.Errno(err) {
			case syscall.ECONNABORTED:
				lvl = errlog.Error
			case syscall.EMFILE, syscall.ENFILE:
				lvl, pause = errlog.Crit, acceptPause
			default:
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				pause = delay
			}
			errlog.Log(logrus.NewEntry(s.log), lvl, "accept4() failed "+errlog.SysErrText(err))
			s.pause(so, pause)
			continue
		}
		delay = 0
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		if s.connLimit > 0 && len(s.conns) >= s.connLimit {
			// nginx has no free connection: it closes the socket it
			// accepted, so the client sees its connection closed before
			// any greeting.
			s.mu.Unlock()
			c.Close()
			connsRefused.Add(1) // mailgate-only metric (observe.go)
			errlog.Log(logrus.NewEntry(s.log), errlog.Alert, fmt.Sprintf("%d worker_connections are not enough", s.workerConns))
			continue
		}
		s.conns[c] = struct{}{}
		s.sessions.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, so)
	}
}

// acceptPause is nginx's default accept_mutex_delay: how long accepting
// stops after running out of descriptors.
const acceptPause = 500 * time.Millisecond

// stopped reports whether the accept loop of so must end.
func (s *Server) stopped(so *socket) bool {
	if so.handoff.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// pause waits d, or less if the accept loop must end meanwhile.
func (s *Server) pause(so *socket, d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end) && !s.stopped(so); {
		time.Sleep(min(10*time.Millisecond, time.Until(end)))
	}
}

// connectionLimit is how many client and upstream connections nginx's
// workers could hold: worker_connections for each of worker_processes
// workers (auto: one per CPU), less the listening sockets every worker
// keeps open. 0: no limit known (no events{} settings).
func connectionLimit(cfg *confparse.Config, listens int) int {
	wc := cfg.Core.WorkerConnections
	if wc <= 0 {
		return 0
	}
	workers := cfg.Core.WorkerProcesses
	if workers < 0 {
		workers = runtime.NumCPU()
	}
	workers = max(workers, 1)
	return max((wc-listens)*workers, 1)
}

func (s *Server) trackUpstream(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) closeListeners() {
	for _, so := range s.socks {
		if so.handoff.Load() {
			continue
		}
		so.ln.Close()
		if so.spec.Main.Network == "unix" {
			removeSocketFile(so.spec.Main.Path)
		}
	}
}

func (s *Server) finish() {
	s.doneOnce.Do(func() { close(s.done) })
}

// Shutdown stops accepting at once and waits for the sessions to end on
// their own (pre-auth sessions run until they log in, quit or time out;
// relayed ones until a side closes), as nginx's graceful shutdown does.
// When ctx ends first, the rest are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.closeListeners()
	s.mu.Unlock()
	s.finish()
	s.loops.Wait()
	ch := make(chan struct{})
	go func() { s.sessions.Wait(); close(ch) }()
	select {
	case <-ch:
		s.cancel()
		s.closeParker()
		return nil
	case <-ctx.Done():
		// worker_shutdown_timeout: relayed sessions end with nginx's
		// "shutdown timeout" line; give them a moment to log it before
		// everything left is closed.
		s.expire()
		select {
		case <-ch:
		case <-time.After(time.Second):
		}
		s.Close()
		<-ch
		return ctx.Err()
	}
}

// Close closes every socket and connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.cancel()
	s.closeListeners()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.closeParker()
	s.finish()
	return nil
}

// HandOff stops accepting without closing the sockets and returns them by
// key, for the next generation's Options.Inherit. The sessions of this
// generation carry on; call Shutdown afterwards to wait for them.
func (s *Server) HandOff() map[string]net.Listener {
	s.mu.Lock()
	socks := append([]*socket(nil), s.socks...)
	serving := s.serving
	for _, so := range socks {
		so.handoff.Store(true)
	}
	s.mu.Unlock()
	m := map[string]net.Listener{}
	for _, so := range socks {
		if d, ok := so.ln.(interface{ SetDeadline(time.Time) error }); ok && serving {
			d.SetDeadline(time.Now()) //nolint:errcheck
			<-so.accepted
			d.SetDeadline(time.Time{}) //nolint:errcheck
		}
		m[so.spec.Key] = so.ln
	}
	return m
}

// ListenerFDs returns a duplicate of every listening socket's descriptor
// (close-on-exec set), by key, for a new binary started on USR2 (nginx's
// binary upgrade). The server goes on accepting on its own copies; the
// caller closes the duplicates once the new process has them.
//
// Raw descriptors, not *os.File: os.File.Fd, which os/exec calls on
// every file it passes, switches the descriptor to blocking mode, and a
// duplicate shares that flag with the listening socket. A blocking
// accept() would then hang this server's Close.
func (s *Server) ListenerFDs() (map[string]int, error) {
	s.mu.Lock()
	lns := map[string]net.Listener{}
	for _, so := range s.socks {
		lns[so.spec.Key] = so.ln
	}
	s.mu.Unlock()
	return DupListeners(lns)
}

// DupListeners duplicates the descriptors of lns as ListenerFDs does.
func DupListeners(lns map[string]net.Listener) (map[string]int, error) {
	fds := map[string]int{}
	fail := func(err error) (map[string]int, error) {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, err
	}
	for k, ln := range lns {
		sc, ok := ln.(syscall.Conn)
		if !ok {
			continue
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return fail(err)
		}
		var nfd int
		var derr error
		if err := rc.Control(func(fd uintptr) {
			nfd, derr = syscall.Dup(int(fd))
			if derr == nil {
				syscall.CloseOnExec(nfd)
			}
		}); err != nil {
			return fail(err)
		}
		if derr != nil {
			return fail(derr)
		}
		fds[k] = nfd
	}
	return fds, nil
}

// addrPortOf converts a net.Addr to netip.AddrPort (invalid for unix).
func addrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort()
	}
	return netip.AddrPort{}
}

// clientText is nginx's client address text: IP without port (IPv6
// unbracketed), "unix:" for unix sockets.
func clientText(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "unix:"
	}
	// nginx's text, not Go's: they differ for IPv4-compatible IPv6
	// addresses, and XCLIENT ADDR (package proxy) uses the same function.
	return proxy.FormatAddr(ap.Addr())
}

// clientTextPort is the "ip:port" form of the "connected to" line, IPv6 in
// brackets.
func clientTextPort(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "unix:"
	}
	port := strconv.Itoa(int(ap.Port()))
	if ap.Addr().Is4() {
		return proxy.FormatAddr(ap.Addr()) + ":" + port
	}
	return "[" + proxy.FormatAddr(ap.Addr()) + "]:" + port
}
