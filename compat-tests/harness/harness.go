// Package harness runs real nginx and mailgate side by side with real
// upstreams (Dovecot, Postfix) and the scriptable auth_http server, so
// compat tests can compare the bytes each one produces.
//
// The pieces:
//
//   - StartNginx / StartMailgate: a proxy with a private prefix, a given
//     mail{} config, listening on free loopback ports ({{port NAME}}).
//   - StartDovecot / StartPostfix: private upstream instances on free
//     loopback ports, with helpers to fill and read mailboxes.
//   - StartAuth: the auth_http test server, stopped at cleanup.
//   - Record: a recording TCP pass-through between a proxy and an upstream.
//   - Suite.Run: runs client scenarios against nginx and mailgate with the
//     same config, auth script and upstreams and compares the transcripts.
//
// See compat-tests/README.md for a worked example.
package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NginxBin is the nginx binary used by StartNginx.
var NginxBin = "/usr/sbin/nginx"

// NginxMailModule is the dynamic mail module the generated config loads.
var NginxMailModule = "/usr/lib/nginx/modules/ngx_mail_module.so"

// Impl names one proxy implementation.
type Impl string

// The two implementations compared.
const (
	Nginx    Impl = "nginx"
	Mailgate Impl = "mailgate"
)

// Config is what a test gives a proxy. Mail is the body of the mail{} block
// (without "mail {" and "}"); Main are extra main-context directives. Both
// are templates:
//
//	{{port NAME}}  a free loopback TCP port, the same number everywhere
//	               NAME appears in one start; Proxy.Addr(NAME) dials it
//	{{prefix}}     the proxy's private prefix directory (trailing '/')
//	{{KEY}}        Vars[KEY] (Suite.Run adds {{auth}}: the auth_http URL)
//
// Files are written under the prefix before start (certificates,
// included files); their contents are templates too.
type Config struct {
	Main  string
	Mail  string
	Vars  map[string]string
	Files map[string]string
	// LogLevel of the generated error_log (default "info").
	LogLevel string
	// NoMail leaves out the mail{} wrapper: Mail is then written verbatim
	// after the generated main-context lines (for tests of whole configs).
	NoMail bool
	// WorkerConnections is events{}' worker_connections (default 256);
	// load tests need more, as nginx would.
	WorkerConnections int
}

// Proxy is a running nginx or mailgate.
type Proxy struct {
	Impl   Impl
	Prefix string         // private prefix directory, with trailing '/'
	Conf   string         // the nginx.conf text that was written
	Ports  map[string]int // {{port NAME}} allocations

	t       testing.TB
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stopped bool
	mu      sync.Mutex
}

// Addr is "127.0.0.1:PORT" for the {{port NAME}} allocation name.
func (p *Proxy) Addr(name string) string {
	port, ok := p.Ports[name]
	if !ok {
		p.t.Fatalf("harness: no {{port %s}} in the config", name)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// ErrorLogPath is the error_log file the generated config writes.
func (p *Proxy) ErrorLogPath() string { return p.Prefix + "error.log" }

// ErrorLog returns the error log written so far.
func (p *Proxy) ErrorLog() string {
	b, _ := os.ReadFile(p.ErrorLogPath())
	return string(b)
}

// Stderr returns what the process wrote to its -e file, stdout and stderr.
func (p *Proxy) Stderr() string {
	var out []byte
	for _, f := range []string{"stderr.log", "stdout.txt"} {
		b, _ := os.ReadFile(p.Prefix + f)
		out = append(out, b...)
	}
	return string(out)
}

// Exited reports whether the process has exited (and its wait error).
func (p *Proxy) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 5s) and waits for it.
// It is called at test cleanup; calling it earlier is fine.
func (p *Proxy) Stop() {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if already {
		<-p.done
		return
	}
	stopProcess(p.cmd, p.done, syscall.SIGTERM)
}

func stopProcess(cmd *exec.Cmd, done chan struct{}, sig syscall.Signal) {
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// StartNginx starts real nginx with conf and stops it at cleanup.
func StartNginx(t testing.TB, conf Config) *Proxy {
	t.Helper()
	return Start(t, Nginx, conf)
}

// StartMailgate starts the mailgate binary (built once per test process)
// with conf and stops it at cleanup.
func StartMailgate(t testing.TB, conf Config) *Proxy {
	t.Helper()
	return Start(t, Mailgate, conf)
}

// Start starts impl with conf; the test fails if it does not come up.
func Start(t testing.TB, impl Impl, conf Config) *Proxy {
	t.Helper()
	var last error
	for try := 0; try < 3; try++ {
		p, err := TryStart(t, impl, conf)
		if err == nil {
			return p
		}
		last = err
		// A port taken between allocation and bind is worth a retry.
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("harness: %v", last)
	return nil
}

// TryStart is Start returning the failure (with the process's stderr and
// error log) instead of failing the test.
func TryStart(t testing.TB, impl Impl, conf Config) (*Proxy, error) {
	t.Helper()
	bin := NginxBin
	if impl == Mailgate {
		bin = MailgateBinary(t)
	}
	prefix, err := shortTempDir(t, "hx-"+string(impl)[:2]+"-")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Impl: impl, Prefix: prefix + "/", Ports: map[string]int{}, t: t, done: make(chan struct{})}
	vars := map[string]string{"prefix": p.Prefix}
	for k, v := range conf.Vars {
		vars[k] = v
	}
	expand := func(s string) (string, error) { return expandTemplate(s, vars, p.Ports) }

	for name, body := range conf.Files {
		text, err := expand(body)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(prefix, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	level := conf.LogLevel
	if level == "" {
		level = "info"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "load_module %s;\n", NginxMailModule)
	b.WriteString("daemon off;\nmaster_process off;\n")
	fmt.Fprintf(&b, "error_log %serror.log %s;\n", p.Prefix, level)
	fmt.Fprintf(&b, "pid %snginx.pid;\n", p.Prefix)
	wc := conf.WorkerConnections
	if wc == 0 {
		wc = 256
	}
	fmt.Fprintf(&b, "events {\n    worker_connections %d;\n}\n", wc)
	if conf.Main != "" {
		m, err := expand(conf.Main)
		if err != nil {
			return nil, err
		}
		b.WriteString(m + "\n")
	}
	mail, err := expand(conf.Mail)
	if err != nil {
		return nil, err
	}
	if conf.NoMail {
		b.WriteString(mail + "\n")
	} else {
		b.WriteString("mail {\n" + mail + "\n}\n")
	}
	p.Conf = b.String()
	if err := os.MkdirAll(p.Prefix+"logs", 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.Prefix+"nginx.conf", []byte(p.Conf), 0o644); err != nil {
		return nil, err
	}

	out, err := os.Create(p.Prefix + "stdout.txt")
	if err != nil {
		return nil, err
	}
	defer out.Close()
	p.cmd = exec.Command(bin, "-p", p.Prefix, "-c", "nginx.conf", "-e", p.Prefix+"stderr.log")
	p.cmd.Dir = p.Prefix
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if impl == Mailgate {
		// A -race binary sleeps 1s at exit by default: a second per run.
		p.cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w%s", impl, err, installHint(bin, "nginx-core libnginx-mod-mail"))
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if impl == Mailgate {
			if s := p.Stderr(); strings.Contains(s, "WARNING: DATA RACE") {
				t.Errorf("harness: mailgate reported a data race:\n%s", s)
			}
		}
	})

	ports := make([]int, 0, len(p.Ports))
	for _, port := range p.Ports {
		ports = append(ports, port)
	}
	if err := waitListening(ports, p.done, 15*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s did not come up: %v\n--- config:\n%s--- stderr:\n%s--- error.log:\n%s",
			impl, err, p.Conf, p.Stderr(), p.ErrorLog())
	}
	return p, nil
}

// installHint tells how to get bin when it is missing.
func installHint(bin, pkgs string) string {
	if _, err := os.Stat(bin); err == nil {
		return ""
	}
	return fmt.Sprintf(" (install it: apt-get install %s, or run compat-tests/test-all.sh as root)", pkgs)
}

var tmplRe = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.-]+)(?:\s+([A-Za-z0-9_.-]+))?\s*\}\}`)

// expandTemplate replaces {{port NAME}} (allocating into ports) and
// {{KEY}} from vars.
func expandTemplate(s string, vars map[string]string, ports map[string]int) (string, error) {
	var err error
	out := tmplRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := tmplRe.FindStringSubmatch(m)
		if sub[1] == "port" && sub[2] != "" {
			port, ok := ports[sub[2]]
			if !ok {
				var e error
				port, e = FreePort()
				if e != nil {
					err = e
					return m
				}
				ports[sub[2]] = port
			}
			return strconv.Itoa(port)
		}
		if sub[2] == "" {
			if v, ok := vars[sub[1]]; ok {
				return v
			}
		}
		err = fmt.Errorf("harness: unknown template %s", m)
		return m
	})
	return out, err
}

var (
	portMu   sync.Mutex
	portSeen = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago and was
// not handed out before by this process.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 50 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portSeen[port] {
			portSeen[port] = true
			return port, nil
		}
	}
	return 0, errors.New("harness: no free port")
}

// shortTempDir makes a 0755 directory under /tmp with a short name (unix
// socket paths are limited to 108 bytes) removed at cleanup.
func shortTempDir(t testing.TB, pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	t.Cleanup(func() {
		if os.Getenv("HARNESS_KEEP") != "" {
			t.Logf("harness: kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir, nil
}

// waitListening waits until every port is in LISTEN state on this host
// (read from /proc, so no connection is made and no log line is caused),
// or the process ends, or the timeout passes.
func waitListening(ports []int, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		listening := listeningPorts()
		var missing []int
		for _, p := range ports {
			if !listening[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-done:
			return errors.New("process exited")
		default:
		}
		if time.Now().After(deadline) {
			sort.Ints(missing)
			return fmt.Errorf("ports %v not listening after %v", missing, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitConnsClosed waits until no connection to one of ports is still
// open on the server side (ESTABLISHED, SYN_RECV or CLOSE_WAIT in
// /proc/net/tcp), so the proxy has seen the client go and logged it. It
// reports whether that happened within timeout.
func waitConnsClosed(ports []int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	for {
		open := false
		for port := range localPorts("01", "03", "08") { // ESTABLISHED, SYN_RECV, CLOSE_WAIT
			if want[port] {
				open = true
			}
		}
		if !open {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listeningPorts reads the local ports in LISTEN state from /proc/net/tcp
// and /proc/net/tcp6.
func listeningPorts() map[int]bool { return localPorts("0A") }

// localPorts reads the local ports of the sockets in /proc/net/tcp and
// /proc/net/tcp6 whose state (kernel hex code) is one of states.
func localPorts(states ...string) map[int]bool {
	out := map[int]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || !slices.Contains(states, fields[3]) {
				continue
			}
			_, portHex, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			if port, err := strconv.ParseInt(portHex, 16, 32); err == nil {
				out[int(port)] = true
			}
		}
	}
	return out
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// MailgateBinary returns the path of the mailgate binary, built once per
// test process with `go build` (with -race when the tests run with -race).
// $MAILGATE_BIN overrides it.
func MailgateBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MAILGATE_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "mailgate-harness")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		// Binaries of test processes that have ended go (named by pid).
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				pid, ok := strings.CutPrefix(e.Name(), "mailgate-")
				if !ok {
					continue
				}
				if _, err := os.Stat("/proc/" + pid); errors.Is(err, os.ErrNotExist) {
					os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		}
		buildPath = filepath.Join(dir, fmt.Sprintf("mailgate-%d", os.Getpid()))
		args := []string{"build", "-o", buildPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "mailgate/cmd/mailgate")
		cmd := exec.Command(goTool(), args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build mailgate: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("harness: %v", buildErr)
	}
	return buildPath
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "/usr/local/go/bin/go"
}

// FakeServer listens on a free loopback port and runs serve, in a
// goroutine of its own, on every connection until the test ends. It
// returns the address. serve owns the connection: it closes it.
func FakeServer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}
