package main

// Starting a proxy (nginx or mailgate) with one generated configuration
// that both read, and reading its worker's CPU time and memory.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// listen ports of the proxy, relative to -port.
type proxyPorts struct {
	pop3, imap, smtp, pop3s, imapsRSA, imapsEC int
}

func proxyPortsFrom(base int) proxyPorts {
	b := base + 20
	return proxyPorts{pop3: b, imap: b + 1, smtp: b + 2, pop3s: b + 3, imapsRSA: b + 4, imapsEC: b + 5}
}

type proxyOpts struct {
	authCache    bool // mailgate only: auth_http_cache memory
	sessionCache bool // ssl_session_cache shared:MAIL:10m
}

type proxy struct {
	name   string
	pid    int // the worker: nginx's only worker, mailgate's process
	master int
	ports  proxyPorts
	cmd    *exec.Cmd
	dir    string
}

func isNginx(name string) bool { return name == "nginx" }

func startProxy(name string, o proxyOpts) *proxy {
	bin := *mailgateBin
	if isNginx(name) {
		bin = *nginxBin
	}
	dir, err := os.MkdirTemp("", "mailgate-bench-"+name+"-")
	if err != nil {
		fatalf("%v", err)
	}
	os.Chmod(dir, 0o755)
	pp := proxyPortsFrom(*basePort)
	sp := portsFrom(*basePort)
	extra := ""
	if o.authCache && !isNginx(name) {
		extra += "    auth_http_cache memory;\n    auth_http_cache_valid 1m;\n"
	}
	if o.sessionCache {
		extra += "    ssl_session_cache shared:MAIL:10m;\n"
	}
	conf := fmt.Sprintf(`load_module %s;
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log %s/error.log error;
pid %s/proxy.pid;
events { worker_connections 20000; }
mail {
    auth_http %s/auth;
    ssl_certificate %s;
    ssl_certificate_key %s;
%s    server { listen 127.0.0.1:%d; protocol pop3; }
    server { listen 127.0.0.1:%d; protocol imap; }
    server { listen 127.0.0.1:%d; protocol smtp; }
    server { listen 127.0.0.1:%d ssl; protocol pop3; }
    server { listen 127.0.0.1:%d ssl; protocol imap; }
    server {
        listen 127.0.0.1:%d ssl;
        protocol imap;
        ssl_certificate %s;
        ssl_certificate_key %s;
    }
}
`, *mailModule, dir, dir, addr(sp.auth), certs.rsaCert, certs.rsaKey, extra,
		pp.pop3, pp.imap, pp.smtp, pp.pop3s, pp.imapsRSA, pp.imapsEC, certs.ecCert, certs.ecKey)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(bin, "-p", dir+"/", "-c", "nginx.conf", "-e", dir+"/stderr.log")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fatalf("start %s: %v", name, err)
	}
	p := &proxy{name: name, master: cmd.Process.Pid, pid: cmd.Process.Pid, ports: pp, cmd: cmd, dir: dir}
	track(p)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr(pp.pop3))
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			fatalf("%s did not start listening on %s\n%s", name, addr(pp.pop3), b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if isNginx(name) {
		// The master forks the worker: measure the worker.
		for i := 0; i < 100; i++ {
			if kids := children(p.master); len(kids) > 0 {
				p.pid = kids[0]
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if p.pid == p.master {
			fatalf("no nginx worker process under %d", p.master)
		}
	}
	time.Sleep(200 * time.Millisecond)
	return p
}

func (p *proxy) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	if b, _ := os.ReadFile(filepath.Join(p.dir, "error.log")); len(bytes.TrimSpace(b)) > 0 && *verbose {
		fmt.Fprintf(os.Stderr, "--- %s error.log:\n%s", p.name, lastLines(b, 10))
	}
	os.RemoveAll(p.dir)
	time.Sleep(200 * time.Millisecond)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func rssKiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fatalf("%v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// cpuTime is the CPU time of a process: the sum of its threads' run time
// from /proc/PID/task/*/schedstat (nanoseconds; /proc/PID/stat counts in
// 10 ms ticks, too coarse for a -quick transfer of 16 MiB), or utime+stime
// from /proc/PID/stat if schedstat is missing. A thread that exits takes
// its schedstat time with it; neither proxy's threads exit under load.
func cpuTime(pid int) time.Duration {
	if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		var sum time.Duration
		ok := true
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				ok = false
				break
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				ok = false
				break
			}
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
		if ok && len(tasks) > 0 {
			return sum
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fatalf("%v", err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

func raiseNofile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func dialRetry(address string) (net.Conn, error) {
	var err error
	for i := 0; i < 20; i++ {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", address, 2*time.Second); err == nil {
			return c, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}
