package main

// Binary upgrade, as nginx does it: on USR2 the running process renames
// its pid file to NAME.oldbin and starts its executable again, passing
// the listening sockets as file descriptors listed in the NGINX
// environment variable ("3;4;"). The new process takes the sockets whose
// address is in its configuration, so both accept connections until the
// old one is told to stop (WINCH: stop accepting; QUIT: finish the
// sessions and exit). If the new process exits first, the old one renames
// its pid file back and, after a WINCH, accepts again.
//
// Because the variable and its format are nginx's, an nginx master whose
// executable was replaced by mailgate hands its mail sockets over the
// same way, so a running nginx can be swapped for mailgate without
// closing a listening socket.

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"mailgate/mail/errlog"
	"mailgate/mail/ngx"
)

// inheritEnv is nginx's NGINX_VAR.
const inheritEnv = "NGINX"

// oldbinSuffix is nginx's NGX_OLDPID_EXT.
const oldbinSuffix = ".oldbin"

// inheritedSockets turns the descriptors named in $NGINX into listeners by
// key (the engine's listen text: "0.0.0.0:110", "[::1]:143",
// "unix:/path"). Descriptors that are not listening stream sockets are
// closed and skipped. The variable is removed from the environment so it
// does not leak into a later upgrade.
func inheritedSockets(value string, log func(errlog.Level, string, ...any)) map[string]net.Listener {
	log(errlog.Notice, "using inherited sockets from \"%s\"", value)
	out := map[string]net.Listener{}
	fds, bad, rest := parseInheritVar(value)
	if bad != "" {
		if rest {
			log(errlog.Emerg, "invalid socket number \"%s\" in %s environment variable, ignoring the rest of the variable", bad, inheritEnv)
		} else {
			log(errlog.Emerg, "invalid socket number \"%s\" in %s environment variable, ignoring", bad, inheritEnv)
		}
	}
	for _, fd := range fds {
		key, err := socketKey(fd)
		if err != nil {
			log(errlog.Crit, "getsockname() of the inherited socket #%d failed %s", fd, errnoText(err))
			continue
		}
		f := os.NewFile(uintptr(fd), key)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			continue // not a listening stream socket
		}
		if old, dup := out[key]; dup {
			old.Close()
		}
		out[key] = ln
	}
	os.Unsetenv(inheritEnv)
	return out
}

// parseInheritVar splits nginx's "3;4;" (';' or ':' separated, each
// number terminated). bad is the text from the first invalid number on;
// rest reports that it stopped a list (nginx's two messages).
func parseInheritVar(v string) (fds []int, bad string, rest bool) {
	start := 0
	for i := 0; i < len(v); i++ {
		if v[i] != ';' && v[i] != ':' {
			continue
		}
		n, ok := ngx.Atoi(v[start:i])
		if !ok || n > math.MaxInt32 {
			return fds, v[start:], true
		}
		fds = append(fds, int(n))
		start = i + 1
	}
	if start != len(v) {
		return fds, v[start:], false
	}
	return fds, "", false
}

// socketKey names an inherited socket the way the engine keys its
// listening sockets, from the socket's own address (as nginx matches
// inherited sockets by sockaddr).
func socketKey(fd int) (string, error) {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return "", err
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), nil
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String(), nil
	case *syscall.SockaddrUnix:
		return "unix:" + a.Name, nil
	}
	return "", syscall.EAFNOSUPPORT
}

// newBinary is a process started by USR2.
type newBinary struct {
	pid  int
	done chan *os.ProcessState
}

// execNewBinary renames pidFile to pidFile.oldbin and starts the
// executable this process was started as with the same arguments and the
// listening sockets in $NGINX. On failure the pid file is renamed back.
// syscall.ForkExec is used instead of os/exec so the descriptors keep
// their non-blocking mode (see mail.Server.ListenerFDs).
func execNewBinary(pidFile string, fds map[string]int, log func(errlog.Level, string, ...any)) *newBinary {
	path := os.Args[0]
	if !strings.Contains(path, "/") {
		// nginx execve()s argv[0] as it is; a bare name found through
		// $PATH is resolved here the way the shell found it.
		if p, err := exec.LookPath(path); err == nil {
			path = p
		}
	}
	keys := make([]string, 0, len(fds))
	for k := range fds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	null, err := syscall.Open(os.DevNull, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		log(errlog.Alert, "open() \"%s\" failed %s", os.DevNull, errnoText(err))
		return nil
	}
	defer syscall.Close(null)
	files := []uintptr{uintptr(null), uintptr(null), 2}
	var fdList strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&fdList, "%d;", len(files))
		files = append(files, uintptr(fds[k]))
	}
	env := []string{inheritEnv + "=" + fdList.String()}
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, inheritEnv+"=") || strings.HasPrefix(e, daemonEnv+"=") {
			continue
		}
		env = append(env, e)
	}
	oldbin := pidFile + oldbinSuffix
	if pidFile != "" {
		if err := os.Rename(pidFile, oldbin); err != nil {
			log(errlog.Alert, "rename() %s to %s failed before executing new binary process \"%s\" %s",
				pidFile, oldbin, os.Args[0], errnoText(err))
			return nil
		}
	}
	pid, err := syscall.ForkExec(path, os.Args, &syscall.ProcAttr{Env: env, Files: files})
	if err != nil {
		log(errlog.Alert, "execve() failed while executing new binary process \"%s\" %s", os.Args[0], errnoText(err))
		if pidFile != "" {
			if err := os.Rename(oldbin, pidFile); err != nil {
				log(errlog.Alert, "rename() %s back to %s failed after an attempt to execute new binary process \"%s\" %s",
					oldbin, pidFile, os.Args[0], errnoText(err))
			}
		}
		return nil
	}
	log(errlog.Notice, "start new binary process %d", pid)
	nb := &newBinary{pid: pid, done: make(chan *os.ProcessState, 1)}
	go func() {
		// FindProcess cannot fail on Unix; Wait reaps our child.
		proc, _ := os.FindProcess(pid)
		st, err := proc.Wait()
		if err != nil {
			st = nil
		}
		nb.done <- st
	}()
	return nb
}

// exitText is nginx's line for a child that ended.
func exitText(name string, pid int, st *os.ProcessState) (errlog.Level, string) {
	if st == nil {
		return errlog.Alert, name + " " + strconv.Itoa(pid) + " exited"
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		core := ""
		if ws.CoreDump() {
			core = " (core dumped)"
		}
		return errlog.Alert, name + " " + strconv.Itoa(pid) + " exited on signal " + strconv.Itoa(int(ws.Signal())) + core
	}
	return errlog.Notice, name + " " + strconv.Itoa(pid) + " exited with code " + strconv.Itoa(st.ExitCode())
}
