package main

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles mailgate once per test that needs a real process
// (signals, daemon re-exec).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mailgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, ok := parsePid(b)
	if !ok {
		return 0
	}
	return pid
}

// runToFile runs bin with stdout and stderr on a file, with a timeout,
// and returns what was written.
func runToFile(t *testing.T, bin string, args ...string) ([]byte, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, rerr := os.ReadFile(f.Name())
	if rerr != nil {
		t.Fatal(rerr)
	}
	return out, err
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func fileHas(path, s string) func() bool {
	return func() bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), s)
	}
}

// TestForegroundSignals runs mailgate with daemon off and walks it through
// reopen, a failed reload, a good reload and a graceful quit.
func TestForegroundSignals(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	conf := "pid run.pid;\nerror_log main.log notice;\nevents {}\nmail {\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", "nginx.conf", "-g", "daemon off;")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()
	pidFile, logFile := filepath.Join(dir, "run.pid"), filepath.Join(dir, "main.log")
	waitFor(t, "pid file", func() bool { return readPid(t, pidFile) == cmd.Process.Pid })
	// Once up, stderr points at the main error_log file, as in nginx.
	if target, err := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/fd/2"); err != nil || target != logFile {
		t.Errorf("stderr of the server is %q (%v), want %s", target, err, logFile)
	}

	// USR1 reopens the log: after a rename, a new file appears.
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "reopened log", fileHas(logFile, "reopening logs"))

	// A broken configuration is reported and the server keeps running.
	bad := conf + "bogus_directive on;\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload error", fileHas(logFile, `[emerg] `+strconv.Itoa(cmd.Process.Pid)+`#`))
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), `unknown directive "bogus_directive" in `+dir+`/nginx.conf:6`) {
		t.Fatalf("log lacks the reload error:\n%s", b)
	}
	select {
	case err := <-done:
		t.Fatalf("mailgate exited after a failed reload: %v", err)
	case <-time.After(100 * time.Millisecond):
	}

	// A good configuration with a new pid path moves the pid file.
	good := strings.Replace(conf, "pid run.pid;", "pid run2.pid;", 1)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "new pid file", func() bool { return readPid(t, filepath.Join(dir, "run2.pid")) == cmd.Process.Pid })
	waitFor(t, "old pid file removed", func() bool { _, err := os.Stat(pidFile); return os.IsNotExist(err) })

	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after QUIT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mailgate did not exit on QUIT")
	}
	if _, err := os.Stat(filepath.Join(dir, "run2.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind after QUIT: %v", err)
	}
	b, _ := os.ReadFile(logFile)
	// The start-up lines went to the file USR1 renamed.
	old, _ := os.ReadFile(logFile + ".1")
	b = append(old, b...)
	for _, want := range []string{"[notice] " + strconv.Itoa(cmd.Process.Pid) + "#" + strconv.Itoa(cmd.Process.Pid) + ": nginx/1.22.1 (mailgate/" + version + ")\n",
		`: using the "epoll" event method` + "\n", ": getrlimit(RLIMIT_NOFILE): ", "signal 1 (SIGHUP) received, reconfiguring", "signal 3 (SIGQUIT) received, shutting down", "] " + strconv.Itoa(cmd.Process.Pid) + "#" + strconv.Itoa(cmd.Process.Pid) + ": exit\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("log lacks %q:\n%s", want, b)
		}
	}
}

// TestDaemon checks daemon on: the parent returns once the child is up,
// the pid file names the child, and -s stop ends it.
func TestDaemon(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	conf := "pid run.pid;\nevents {}\nmail {\n  pop3_auth plain plain;\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The daemon keeps stderr, as nginx does, so its output goes to a file:
	// a pipe would stay open as long as the daemon lives.
	out, err := runToFile(t, bin, "-p", dir, "-c", "nginx.conf")
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	// The warning is shown once, by the parent; the child reads the
	// configuration again without repeating it.
	if got, want := stampRE.ReplaceAllString(string(out), "[$1] "), "[warn] duplicate value \"plain\" in "+dir+"/nginx.conf:4\n"; got != want {
		t.Errorf("start output %q, want %q", got, want)
	}
	pid := readPid(t, filepath.Join(dir, "run.pid"))
	if pid == 0 || !alive(pid) {
		t.Fatalf("no live daemon after start (pid %d)", pid)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	if sid, _ := syscall.Getpgid(pid); sid != pid {
		t.Errorf("daemon pgid %d, want its own session (%d)", sid, pid)
	}
	out, err = runToFile(t, bin, "-p", dir, "-c", "nginx.conf", "-s", "stop")
	if err != nil {
		t.Fatalf("-s stop: %v\n%s", err, out)
	}
	waitFor(t, "daemon exit", func() bool { return !alive(pid) })
	if _, err := os.Stat(filepath.Join(dir, "run.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}

	// A child that cannot start makes the parent fail with its message.
	bad := strings.Replace(conf, "pid run.pid;", "pid nodir/run.pid;", 1)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runToFile(t, bin, "-p", dir, "-c", "nginx.conf")
	if err == nil || !strings.Contains(string(out), `open() "`+dir+`/nodir/run.pid" failed (2: No such file or directory)`) {
		t.Fatalf("failing daemon: err %v, output %q", err, out)
	}
}

// TestBindFailure checks nginx's bind retry messages and the exit status
// when the address is taken.
func TestBindFailure(t *testing.T) {
	if _, ok := protocols()["imap"]; !ok {
		t.Fatal("imap protocol module is not wired in protocols.go")
	}
	ln := listenInRange(t)
	defer ln.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	conf := "pid run.pid;\ndaemon off;\nevents {}\nmail {\n  auth_http 127.0.0.1:1/auth;\n  server {\n    listen " +
		ln.Addr().String() + ";\n    protocol imap;\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", "nginx.conf", "-e", "stderr")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, stampRE.ReplaceAllString(sc.Text(), "[$1] "))
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	inUse := "[emerg] bind() to " + ln.Addr().String() + " failed (98: Address already in use)"
	// nginx 1.22.1 prints exactly this with -e stderr: the "try again"
	// notices are below the default error_log level.
	want := []string{inUse, inUse, inUse, inUse, inUse, "[emerg] still could not bind()"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// Tests listen only on loopback ports in this range (the cli engineer's
// share), picked at random so parallel runs do not collide.
const testPortLo, testPortHi = 20200, 20999

// inRange tries random ports of the test range until open succeeds.
func inRange[T any](t *testing.T, open func(addr string) (T, error)) T {
	t.Helper()
	start := rand.IntN(testPortHi - testPortLo)
	for i := 0; i < testPortHi-testPortLo; i++ {
		port := testPortLo + (start+i)%(testPortHi-testPortLo)
		if v, err := open("127.0.0.1:" + strconv.Itoa(port)); err == nil {
			return v
		}
	}
	t.Fatalf("no free port in %d-%d", testPortLo, testPortHi)
	panic("unreachable")
}

// listenInRange returns an open TCP listener on a test-range port.
func listenInRange(t *testing.T) net.Listener {
	return inRange(t, func(a string) (net.Listener, error) { return net.Listen("tcp", a) })
}

// freeAddr returns a test-range address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln := listenInRange(t)
	defer ln.Close()
	return ln.Addr().String()
}

// greeting dials addr and returns the first line the server sends.
func greeting(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	return c, line
}

// TestReloadKeepsListeners checks that HUP keeps a listening socket that
// stays in the configuration, opens new ones, closes removed ones, and
// leaves open sessions alone.
func TestReloadKeepsListeners(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	imapAddr, pop3Addr, smtpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	write := func(servers string) {
		conf := "pid run.pid;\ndaemon off;\nevents {}\nmail {\n  auth_http 127.0.0.1:1/auth;\n" + servers + "}\n"
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("  server { listen " + imapAddr + "; protocol imap; }\n  server { listen " + smtpAddr + "; protocol smtp; }\n")
	cmd := exec.Command(bin, "-p", dir, "-c", "nginx.conf", "-e", filepath.Join(dir, "err.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "pid file", func() bool { return readPid(t, filepath.Join(dir, "run.pid")) == cmd.Process.Pid })

	old, line := greeting(t, imapAddr)
	defer old.Close()
	if line != "* OK IMAP4 ready\r\n" {
		t.Fatalf("imap greeting %q", line)
	}

	write("  server { listen " + imapAddr + "; protocol imap; }\n  server { listen " + pop3Addr + "; protocol pop3; }\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "new pop3 listener", func() bool {
		c, err := net.DialTimeout("tcp", pop3Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	c, line := greeting(t, pop3Addr)
	c.Close()
	if line != "+OK POP3 ready\r\n" {
		t.Errorf("pop3 greeting %q", line)
	}
	c, line = greeting(t, imapAddr)
	c.Close()
	if line != "* OK IMAP4 ready\r\n" {
		t.Errorf("imap greeting after reload %q", line)
	}
	waitFor(t, "removed smtp listener closed", func() bool {
		c, err := net.DialTimeout("tcp", smtpAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// The session opened before the reload still answers.
	if _, err := old.Write([]byte("a1 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(old)
	if line, err := r.ReadString('\n'); err != nil || line != "a1 OK completed\r\n" {
		t.Errorf("old session after reload: %q, %v", line, err)
	}

	// A reload whose new address is taken fails and leaves the running
	// sockets serving.
	taken := listenInRange(t)
	defer taken.Close()
	write("  server { listen " + imapAddr + "; protocol imap; }\n  server { listen " + pop3Addr + "; protocol pop3; }\n" +
		"  server { listen " + taken.Addr().String() + "; protocol smtp; }\n")
	cmd.Process.Signal(syscall.SIGHUP)
	logFile := filepath.Join(dir, "err.log")
	waitFor(t, "reload bind error", fileHas(logFile, "bind() to "+taken.Addr().String()+" failed (98: Address already in use)"))
	for addr, want := range map[string]string{imapAddr: "* OK IMAP4 ready\r\n", pop3Addr: "+OK POP3 ready\r\n"} {
		c, line := greeting(t, addr)
		c.Close()
		if line != want {
			t.Errorf("%s after a failed reload: %q", addr, line)
		}
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
}

// TestPidFileOfRunningNginx: mailgate must not take over the pid file of
// a running nginx (same nginx.conf, nginx still serving http{}).
func TestPidFileOfRunningNginx(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	// A process whose name is "nginx": a copy of sleep.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "nginx")
	if err := os.WriteFile(fake, data, 0o755); err != nil {
		t.Fatal(err)
	}
	nginx := exec.Command(fake, "30")
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { nginx.Process.Kill(); nginx.Wait() }()
	pidFile := filepath.Join(dir, "nginx.pid")
	nginxPid := strconv.Itoa(nginx.Process.Pid) + "\n"
	if err := os.WriteFile(pidFile, []byte(nginxPid), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "pid nginx.pid;\ndaemon off;\nevents {}\nmail {\n  auth_http 127.0.0.1:1/auth;\n  server {\n    listen " +
		freeAddr(t) + ";\n    protocol imap;\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runToFile(t, bin, "-p", dir+"/", "-c", "nginx.conf", "-e", "stderr")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, out)
	}
	want := `: pid file "` + pidFile + `" belongs to a running nginx (pid ` + strconv.Itoa(nginx.Process.Pid) + `)`
	if !strings.Contains(string(out), want) {
		t.Errorf("output:\n%s\nwant it to contain %s", out, want)
	}
	if b, _ := os.ReadFile(pidFile); string(b) != nginxPid {
		t.Errorf("pid file now %q, want nginx's %q", b, nginxPid)
	}
	// Once nginx is gone, its stale pid file is overwritten as usual.
	nginx.Process.Kill()
	nginx.Wait()
	cmd := exec.Command(bin, "-p", dir+"/", "-c", "nginx.conf", "-e", "stderr")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, "mailgate's pid in the pid file", func() bool { return readPid(t, pidFile) == cmd.Process.Pid })
}

// TestQuitWaitsForEveryGeneration: after reloads, QUIT lets the sessions of
// every generation end on their own, the retired ones included, and exits
// after the last one (issue 9: sessions opened before a reload got EOF
// instead of their reply when the newest generation had no session left).
func TestQuitWaitsForEveryGeneration(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	imapAddr := freeAddr(t)
	logFile := filepath.Join(dir, "err.log")
	conf := "pid run.pid;\ndaemon off;\nerror_log err.log info;\nevents {}\nmail {\n  auth_http 127.0.0.1:1/auth;\n" +
		"  server { listen " + imapAddr + "; protocol imap; }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", "nginx.conf")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, "pid file", func() bool { return readPid(t, filepath.Join(dir, "run.pid")) == cmd.Process.Pid })

	// One session in each of three generations.
	var sessions []net.Conn
	for i := 0; i < 3; i++ {
		if i > 0 {
			cmd.Process.Signal(syscall.SIGHUP)
			waitFor(t, "reload", func() bool {
				b, _ := os.ReadFile(logFile)
				return strings.Count(string(b), "reconfiguring\n") >= i
			})
		}
		c, line := greeting(t, imapAddr)
		defer c.Close()
		if line != "* OK IMAP4 ready\r\n" {
			t.Fatalf("greeting %q", line)
		}
		sessions = append(sessions, c)
	}

	cmd.Process.Signal(syscall.SIGQUIT)
	waitFor(t, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", imapAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// The newest session ends first; the process must still serve the
	// older ones.
	for i := len(sessions) - 1; i >= 0; i-- {
		c := sessions[i]
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("a1 LOGOUT\r\n")); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		b, _ := io.ReadAll(c)
		if string(b) != "* BYE\r\na1 OK completed\r\n" {
			t.Fatalf("session %d (generation %d) got %q after QUIT", i, i+1, b)
		}
		if i > 0 {
			select {
			case err := <-done:
				t.Fatalf("exited (%v) with %d sessions still open", err, i)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after QUIT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mailgate did not exit after its last session")
	}
}

// cpuTicks is the user+system CPU time of pid, in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// TestOutOfDescriptors: with every descriptor in use, accept4() fails with
// EMFILE; nginx logs it at crit, stops accepting for a while instead of
// spinning, and serves again once descriptors are free.
func TestOutOfDescriptors(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	logFile := filepath.Join(dir, "err.log")
	conf := "pid run.pid;\ndaemon off;\nerror_log err.log info;\nevents {}\nmail {\n  auth_http 127.0.0.1:1/auth;\n" +
		"  server { listen " + addr + "; protocol pop3; }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", `ulimit -n 24 && exec "$0" "$@"`, bin, "-p", dir, "-c", "nginx.conf")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, "pid file", func() bool { return readPid(t, filepath.Join(dir, "run.pid")) == cmd.Process.Pid })

	// Open sessions until the server cannot take another.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 40 && !strings.Contains(readFile(logFile), "accept4() failed (24: Too many open files)"); i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "the EMFILE line", fileHas(logFile, "[crit] "+strconv.Itoa(cmd.Process.Pid)+"#"+strconv.Itoa(cmd.Process.Pid)+": accept4() failed (24: Too many open files)"))

	// While nothing can be accepted, the loop waits instead of spinning.
	before := cpuTicks(t, cmd.Process.Pid)
	time.Sleep(time.Second)
	if used := cpuTicks(t, cmd.Process.Pid) - before; used > 50 {
		t.Errorf("%d clock ticks of CPU in one second without descriptors: a busy loop", used)
	}
	select {
	case err := <-done:
		t.Fatalf("mailgate exited: %v", err)
	default:
	}

	// Descriptors free again: a new client is served.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	waitFor(t, "a greeting after descriptors were freed", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line == "+OK POP3 ready\r\n"
	})
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
