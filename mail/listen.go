package mail

// Listening sockets, grouped and bound as nginx does (ngx_mail_add_ports,
// ngx_mail_optimize_servers, ngx_open_listening_sockets).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// socketSpec is one listening socket: the entry that owns it and, for a
// wildcard socket, the specific addresses of its port that share it.
type socketSpec struct {
	Key   string // the owning entry's Text: "0.0.0.0:110", "[::1]:143", "unix:/p"
	Main  *confparse.Listen
	Exact map[netip.Addr]*confparse.Listen
}

// pick chooses the listen entry (and so the server) for a connection that
// arrived at local address a: the exact address if one shares this socket,
// else the socket's own entry.
func (sp *socketSpec) pick(a netip.Addr) *confparse.Listen {
	if len(sp.Exact) > 0 {
		if l, ok := sp.Exact[a.Unmap()]; ok {
			return l
		}
		if l, ok := sp.Exact[a]; ok {
			return l
		}
	}
	return sp.Main
}

func isWildcard(l *confparse.Listen) bool {
	return l.Network != "unix" && l.Addr.Addr().IsUnspecified()
}

// groupSockets turns the listen entries into sockets. Entries are grouped by
// family and port. In a group with a wildcard, only the wildcard and the
// entries with "bind" get their own socket; the other addresses share the
// wildcard's. Without a wildcard every address has its own socket. Within a
// group, bound addresses come first and the wildcard last, as nginx sorts
// them (so the bind errors come in nginx's order).
func groupSockets(ls []*confparse.Listen) []*socketSpec {
	type gkey struct {
		v6   bool
		port uint16
	}
	var order []gkey
	groups := map[gkey][]*confparse.Listen{}
	var out []*socketSpec
	for _, l := range ls {
		if l.Network == "unix" {
			continue
		}
		k := gkey{l.Addr.Addr().Is6() && !l.Addr.Addr().Is4In6(), l.Addr.Port()}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], l)
	}
	for _, k := range order {
		g := groups[k]
		var wild *confparse.Listen
		for _, l := range g {
			if isWildcard(l) {
				wild = l
				break
			}
		}
		if wild == nil {
			for _, l := range g {
				out = append(out, &socketSpec{Key: l.Text, Main: l})
			}
			continue
		}
		ws := &socketSpec{Key: wild.Text, Main: wild}
		for _, l := range g {
			switch {
			case l == wild:
			case l.Bind:
				out = append(out, &socketSpec{Key: l.Text, Main: l})
			default:
				if ws.Exact == nil {
					ws.Exact = map[netip.Addr]*confparse.Listen{}
				}
				ws.Exact[l.Addr.Addr().Unmap()] = l
			}
		}
		out = append(out, ws)
	}
	for _, l := range ls {
		if l.Network == "unix" {
			out = append(out, &socketSpec{Key: l.Text, Main: l})
		}
	}
	return out
}

// keepaliveDefaults are the kernel's keepalive settings on a fresh socket;
// Go's Accept overwrites them, so the engine puts them back.
type keepaliveDefaults struct {
	idle, intvl, cnt int
	quiet            bool // accepted sockets are left alone: nothing to undo
}

// BindError is a failed bind() or listen(), with nginx's message text.
type BindError struct {
	Addr  string
	Call  string // "bind" or "listen"
	Errno syscall.Errno
	Msg   string
}

func (e *BindError) Error() string { return e.Msg }

func (e *BindError) Unwrap() error { return e.Errno }

func bindErr(call, addr string, backlog int, err error) error {
	en := errlog.Errno(err)
	var msg string
	if call == "listen" {
		msg = fmt.Sprintf("listen() to %s, backlog %d failed %s", addr, backlog, errlog.SysErrText(err))
	} else {
		msg = fmt.Sprintf("%s() to %s failed %s", call, addr, errlog.SysErrText(err))
	}
	return &BindError{Addr: addr, Call: call, Errno: en, Msg: msg}
}

// openSocket creates, configures, binds and listens one socket.
//
// TCP sockets are made by net.ListenConfig with KeepAlive -1: a listener
// made from a file descriptor would have Go turn keepalive on for every
// accepted socket, which costs four setsockopt() calls per connection and
// four more to undo them (nginx makes none). The listen's own options go
// in the Control hook, before bind(), as nginx sets them.
func openSocket(l *confparse.Listen) (net.Listener, keepaliveDefaults, error) {
	family, sa := sockaddrOf(l)
	if family != syscall.AF_UNIX {
		return openTCP(l, family)
	}
	var kd keepaliveDefaults
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, kd, socketErr(l, err)
	}
	fail := func(call string, err error) (net.Listener, keepaliveDefaults, error) {
		syscall.Close(fd)
		return nil, kd, bindErr(call, l.Text, l.Backlog, err)
	}
	if _, err := setSocketOptions(fd, l, family); err != nil {
		syscall.Close(fd)
		return nil, kd, err
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	os.Chmod(l.Path, 0o666) //nolint:errcheck // nginx only logs this
	if err := syscall.Listen(fd, backlogOf(l)); err != nil {
		os.Remove(l.Path) //nolint:errcheck
		return fail("listen", err)
	}
	f := os.NewFile(uintptr(fd), l.Text)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, kd, err
	}
	return ln, kd, nil
}

// openTCP is openSocket for TCP (see there).
func openTCP(l *confparse.Listen, family int) (net.Listener, keepaliveDefaults, error) {
	var kd keepaliveDefaults
	var optErr error
	network, addr := "tcp4", netip.AddrPortFrom(l.Addr.Addr().Unmap(), l.Addr.Port())
	if family == syscall.AF_INET6 {
		network, addr = "tcp6", l.Addr
	}
	lc := net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			if err := rc.Control(func(fd uintptr) {
				kd, optErr = setSocketOptions(int(fd), l, family)
			}); err != nil {
				return err
			}
			return optErr
		},
	}
	ln, err := lc.Listen(context.Background(), network, addr.String())
	if err != nil {
		if optErr != nil {
			return nil, kd, optErr
		}
		call := "bind"
		var se *os.SyscallError
		if errors.As(err, &se) {
			call = se.Syscall
		}
		if call == "socket" {
			return nil, kd, socketErr(l, err)
		}
		return nil, kd, bindErr(call, l.Text, l.Backlog, err)
	}
	// Go listens with the kernel's somaxconn; a second listen() sets
	// nginx's backlog (Linux takes a new backlog on a listening socket).
	var lerr error
	if rc, err := ln.(*net.TCPListener).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), backlogOf(l)) }) //nolint:errcheck
	}
	if lerr != nil {
		ln.Close()
		return nil, kd, bindErr("listen", l.Text, l.Backlog, lerr)
	}
	kd.quiet = true
	return quietListener{ln.(*net.TCPListener)}, kd, nil
}

// quietListener marks a TCP listener whose accepted sockets Go leaves as
// the kernel made them (see openSocket): nothing to undo per connection.
type quietListener struct{ *net.TCPListener }

func (quietListener) keepsKernelKeepalive() {}

// socketErr is a failed socket() call with nginx's message.
func socketErr(l *confparse.Listen, err error) error {
	return &BindError{Addr: l.Text, Call: "socket", Errno: errlog.Errno(err),
		Msg: "socket() " + l.Text + " failed " + errlog.SysErrText(err)}
}

// setSocketOptions reads the kernel's keepalive timers, then sets the
// listen's options; it returns the timers accepted sockets will have.
func setSocketOptions(fd int, l *confparse.Listen, family int) (keepaliveDefaults, error) {
	var kd keepaliveDefaults
	if family != syscall.AF_UNIX {
		// The kernel's keepalive timers, before the listen's own.
		kd.idle, _ = syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		kd.intvl, _ = syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		kd.cnt, _ = syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	}
	for _, o := range socketOptions(l, family) {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
			return kd, &BindError{Addr: l.Text, Call: "setsockopt", Errno: errlog.Errno(err),
				Msg: fmt.Sprintf("setsockopt(%s) %s failed %s", o.name, l.Text, errlog.SysErrText(err))}
		}
		switch {
		case o.level != syscall.IPPROTO_TCP:
		case o.opt == syscall.TCP_KEEPIDLE:
			kd.idle = o.value
		case o.opt == syscall.TCP_KEEPINTVL:
			kd.intvl = o.value
		case o.opt == syscall.TCP_KEEPCNT:
			kd.cnt = o.value
		}
	}
	return kd, nil
}

// backlogOf is the listen's backlog, nginx's 511 by default.
func backlogOf(l *confparse.Listen) int {
	if l.Backlog == 0 {
		return 511
	}
	return l.Backlog
}

// sockaddrOf is the address family and socket address of a listen entry.
func sockaddrOf(l *confparse.Listen) (int, syscall.Sockaddr) {
	switch {
	case l.Network == "unix":
		return syscall.AF_UNIX, &syscall.SockaddrUnix{Name: l.Path}
	case l.Addr.Addr().Is4() || l.Addr.Addr().Is4In6():
		return syscall.AF_INET, &syscall.SockaddrInet4{Port: int(l.Addr.Port()), Addr: l.Addr.Addr().Unmap().As4()}
	default:
		return syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(l.Addr.Port()), Addr: l.Addr.Addr().As16()}
	}
}

// sockopt is one setsockopt() nginx makes on a listening socket, with the
// name its error message gives.
type sockopt struct {
	level, opt, value int
	name              string
}

// socketOptions are the options a listen entry asks for, in nginx's
// order: SO_REUSEADDR, the buffers, keepalive and its timers, IPV6_V6ONLY.
func socketOptions(l *confparse.Listen, family int) []sockopt {
	var o []sockopt
	tcp := family != syscall.AF_UNIX
	if tcp {
		o = append(o, sockopt{syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1, "SO_REUSEADDR"})
	}
	if l.RcvBuf > 0 {
		o = append(o, sockopt{syscall.SOL_SOCKET, syscall.SO_RCVBUF, l.RcvBuf, "SO_RCVBUF"})
	}
	if l.SndBuf > 0 {
		o = append(o, sockopt{syscall.SOL_SOCKET, syscall.SO_SNDBUF, l.SndBuf, "SO_SNDBUF"})
	}
	if tcp && l.KeepAlive.Set {
		o = append(o, sockopt{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, boolInt(l.KeepAlive.On), "SO_KEEPALIVE"})
		if l.KeepAlive.Idle > 0 {
			o = append(o, sockopt{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(l.KeepAlive.Idle / time.Second), "TCP_KEEPIDLE"})
		}
		if l.KeepAlive.Interval > 0 {
			o = append(o, sockopt{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(l.KeepAlive.Interval / time.Second), "TCP_KEEPINTVL"})
		}
		if l.KeepAlive.Count > 0 {
			o = append(o, sockopt{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, l.KeepAlive.Count, "TCP_KEEPCNT"})
		}
	}
	if family == syscall.AF_INET6 {
		o = append(o, sockopt{syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, boolInt(l.IPv6Only), "IPV6_V6ONLY"})
	}
	return o
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fixKeepalive undoes what Go's Accept did to SO_KEEPALIVE and the TCP
// keepalive timers, leaving what the listen directive asked for (or the
// kernel's defaults).
func fixKeepalive(c net.Conn, l *confparse.Listen, kd keepaliveDefaults) {
	tc, ok := c.(*net.TCPConn)
	if !ok || kd.quiet {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	on := 0
	if l.KeepAlive.Set && l.KeepAlive.On {
		on = 1
	}
	rc.Control(func(fd uintptr) { //nolint:errcheck
		s := int(fd)
		syscall.SetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, on) //nolint:errcheck
		if kd.idle > 0 {
			syscall.SetsockoptInt(s, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, kd.idle) //nolint:errcheck
		}
		if kd.intvl > 0 {
			syscall.SetsockoptInt(s, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, kd.intvl) //nolint:errcheck
		}
		if kd.cnt > 0 {
			syscall.SetsockoptInt(s, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, kd.cnt) //nolint:errcheck
		}
	})
}

// isAddrInUse reports EADDRINUSE, the one bind error nginx retries.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE)
}

// removeSocketFile deletes a unix socket's file when its listener closes.
func removeSocketFile(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path) //nolint:errcheck
	}
}

// TestBind does what nginx -t does with the listening sockets: bind each
// one as Listen would, then close it at once. An address already in use
// (by the running proxy, typically) is fine; any other failure, such as an
// address no interface has or a low port without privileges, is returned
// with nginx's text. A unix socket's file is removed again, as nginx -t
// removes it.
func TestBind(cfg *confparse.Config) error {
	if errs := probeSockets(cfg, true); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// ProbeBind is TestBind that goes on after a failure and returns every
// one, for mailgate check.
func ProbeBind(cfg *confparse.Config) []error {
	return probeSockets(cfg, false)
}

func probeSockets(cfg *confparse.Config, first bool) []error {
	if cfg == nil || cfg.Mail == nil {
		return nil
	}
	var errs []error
	for _, sp := range groupSockets(cfg.Mail.Listens) {
		ln, _, err := openSocket(sp.Main)
		if err != nil {
			if isAddrInUse(err) {
				continue
			}
			errs = append(errs, err)
			if first {
				return errs
			}
			continue
		}
		ln.Close()
		if sp.Main.Network == "unix" {
			os.Remove(sp.Main.Path) //nolint:errcheck // nginx -t only logs a failed unlink
		}
	}
	return errs
}
