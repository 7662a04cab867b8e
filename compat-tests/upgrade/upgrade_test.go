// Package upgrade_test hands the listening sockets of a running nginx
// over to mailgate with nginx's own binary upgrade (USR2, WINCH, QUIT),
// the way nginx users replace one nginx binary by another: the path the
// nginx master was started from now leads to mailgate. Mail clients see
// no refused connection, and a session opened on nginx ends normally.
package upgrade_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailgate/compat-tests/harness"
)

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// running is kill(pid, 0) without zombies (an orphan may wait for a
// reaper that never comes in some sandboxes).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialGreeting connects and reads the greeting line.
func dialGreeting(t *testing.T, addr string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	return c, r, line
}

func TestNginxToMailgate(t *testing.T) {
	mailgate := harness.MailgateBinary(t)
	dir := t.TempDir()
	for _, d := range []string{"sbin", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "sbin", "nginx")
	if err := os.Symlink(harness.NginxBin, exe); err != nil {
		t.Fatal(err)
	}
	imapPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	imap := "127.0.0.1:" + strconv.Itoa(imapPort)
	conf := "load_module " + harness.NginxMailModule + ";\n" +
		"pid logs/nginx.pid;\nerror_log logs/error.log info;\nevents {}\n" +
		"http { access_log off; server { listen 127.0.0.1:" + strconv.Itoa(httpPort) + "; return 200; } }\n" +
		"mail {\n  auth_http 127.0.0.1:1/auth;\n  server { listen " + imap + "; protocol imap; }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "logs", "nginx.pid")
	errorLog := filepath.Join(dir, "logs", "error.log")
	t.Cleanup(func() {
		for _, f := range []string{pidFile, pidFile + ".oldbin"} {
			if pid := readPid(f); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(errorLog)
			t.Logf("error.log:\n%s", b)
		}
	})

	// nginx as a daemon with a master process, started by the path that
	// will lead to mailgate.
	cmd := exec.Command(exe, "-p", dir+"/", "-c", "nginx.conf")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nginx: %v\n%s", err, out)
	}
	nginxPid := readPid(pidFile)
	waitFor(t, "nginx's pid file", func() bool { nginxPid = readPid(pidFile); return nginxPid > 0 })
	old, oldR, greeting := dialGreeting(t, imap)
	defer old.Close()
	if greeting != "* OK IMAP4 ready\r\n" {
		t.Fatalf("nginx greeting %q", greeting)
	}

	// Replace the binary, then nginx's upgrade signal.
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mailgate, exe); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(nginxPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var mgPid int
	waitFor(t, "mailgate's pid file", func() bool { mgPid = readPid(pidFile); return mgPid > 0 && mgPid != nginxPid })
	if got := readPid(pidFile + ".oldbin"); got != nginxPid {
		t.Fatalf("nginx.pid.oldbin holds %d, want nginx's pid %d", got, nginxPid)
	}
	mgLine := func(s string) func() bool {
		return func() bool {
			b, _ := os.ReadFile(errorLog)
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, " "+strconv.Itoa(mgPid)+"#") && strings.Contains(l, s) {
					return true
				}
			}
			return false
		}
	}
	waitFor(t, "mailgate's inherited sockets line", mgLine("using inherited sockets from "))
	waitFor(t, "mailgate's start line", mgLine("mailgate/"))

	// nginx stops accepting; every new client is mailgate's, and none is
	// refused.
	if err := syscall.Kill(nginxPid, syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nginx's worker to stop accepting", func() bool {
		b, _ := os.ReadFile(errorLog)
		return strings.Contains(string(b), "gracefully shutting down")
	})
	for i := 0; i < 10; i++ {
		c, r, line := dialGreeting(t, imap)
		if line != "* OK IMAP4 ready\r\n" {
			t.Fatalf("greeting %d after WINCH: %q", i, line)
		}
		c.Write([]byte("a1 LOGOUT\r\n"))
		if bye, _ := r.ReadString('\n'); bye != "* BYE\r\n" {
			t.Errorf("LOGOUT %d: %q", i, bye)
		}
		c.Close()
	}
	waitFor(t, "mailgate to log its clients", mgLine("client 127.0.0.1:"))
	// The http socket was not mailgate's to keep: it closed its copy, and
	// nginx still holds it.
	if b, _ := os.ReadFile(errorLog); strings.Contains(string(b), strconv.Itoa(httpPort)+" failed") {
		t.Errorf("mailgate complained about the http socket:\n%s", b)
	}

	// The session opened on nginx stays nginx's and goes on working; its
	// worker exits once it ends.
	old.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Write([]byte("a1 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if reply, err := oldR.ReadString('\n'); reply != "a1 OK completed\r\n" {
		t.Fatalf("NOOP on nginx's session: %q %v", reply, err)
	}
	old.Close()
	waitFor(t, "nginx's worker to exit", func() bool {
		b, _ := os.ReadFile(errorLog)
		return strings.Contains(string(b), "exited with code 0")
	})

	if err := syscall.Kill(nginxPid, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nginx to exit", func() bool { return !running(nginxPid) })
	if _, err := os.Stat(pidFile + ".oldbin"); !os.IsNotExist(err) {
		t.Errorf("nginx.pid.oldbin left behind: %v", err)
	}
	c, _, line := dialGreeting(t, imap)
	c.Close()
	if line != "* OK IMAP4 ready\r\n" {
		t.Fatalf("greeting after nginx exited: %q", line)
	}
	if err := syscall.Kill(mgPid, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mailgate to exit", func() bool { return !running(mgPid) })
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}
