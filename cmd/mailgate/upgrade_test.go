package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseInheritVar(t *testing.T) {
	tests := []struct {
		in   string
		fds  []int
		bad  string
		rest bool
	}{
		{"3;4;", []int{3, 4}, "", false},
		{"3:4:5:", []int{3, 4, 5}, "", false},
		{"", nil, "", false},
		{"3;4", []int{3}, "4", false},      // unterminated: ignored
		{"3;x;5;", []int{3}, "x;5;", true}, // invalid: the rest is ignored
		{";", nil, ";", true},
		{"-1;", nil, "-1;", true},
		{"12345678901;", nil, "12345678901;", true}, // no descriptor: beyond a C int
	}
	for _, tt := range tests {
		fds, bad, rest := parseInheritVar(tt.in)
		if len(fds) != len(tt.fds) || bad != tt.bad || rest != tt.rest {
			t.Errorf("parseInheritVar(%q) = %v %q %v, want %v %q %v", tt.in, fds, bad, rest, tt.fds, tt.bad, tt.rest)
			continue
		}
		for i := range fds {
			if fds[i] != tt.fds[i] {
				t.Errorf("parseInheritVar(%q) = %v, want %v", tt.in, fds, tt.fds)
			}
		}
	}
}

// TestBinaryUpgrade walks through nginx's "upgrading executable on the
// fly": USR2 starts a second process on the same sockets, WINCH stops the
// old one accepting, QUIT ends it once its sessions are done; then a
// failed upgrade (the new process exits) gives the pid file back.
func TestBinaryUpgrade(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := "pid run.pid;\nerror_log logs/error.log notice;\nevents {}\nmail {\n  auth_http 127.0.0.1:1/auth;\n" +
		"  server {\n    listen " + addr + ";\n    protocol imap;\n  }\n}\n"
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "run.pid")
	errorLog := filepath.Join(dir, "logs", "error.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(errorLog)
			t.Logf("error.log:\n%s", b)
		}
	})
	if out, err := runToFile(t, bin, "-p", dir+"/", "-c", "nginx.conf"); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	oldPid := readPid(t, pidFile)
	if oldPid == 0 {
		t.Fatal("no pid file after start")
	}
	defer syscall.Kill(oldPid, syscall.SIGKILL)

	// A session on the old process survives the whole upgrade.
	c, line := greeting(t, addr)
	defer c.Close()
	if !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting %q", line)
	}
	r := bufio.NewReader(c)

	if err := syscall.Kill(oldPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var newPid int
	waitFor(t, "the new binary's pid file", func() bool {
		newPid = readPid(t, pidFile)
		return newPid != 0 && newPid != oldPid
	})
	defer syscall.Kill(newPid, syscall.SIGKILL)
	if got := readPid(t, pidFile+".oldbin"); got != oldPid {
		t.Fatalf("run.pid.oldbin holds %d, want the old pid %d", got, oldPid)
	}
	waitFor(t, "the inherited sockets line", fileHas(errorLog, `[notice] `))
	waitFor(t, "the inherited sockets line", fileHas(errorLog, `using inherited sockets from "3;"`))

	// The old process stops accepting; the new one has the socket.
	if err := syscall.Kill(oldPid, syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stop accepting", fileHas(errorLog, "signal 28 (SIGWINCH) received, stop accepting connections"))
	for i := 0; i < 5; i++ {
		c2, line := greeting(t, addr)
		c2.Close()
		if !strings.HasPrefix(line, "* OK") {
			t.Fatalf("greeting after WINCH %q", line)
		}
	}
	// A second USR2 is refused while the new binary runs.
	syscall.Kill(oldPid, syscall.SIGUSR2)
	waitFor(t, "the refusal", fileHas(errorLog, "the changing binary signal is ignored"))

	// QUIT: the old process waits for its session, then exits and removes
	// its .oldbin pid file.
	if err := syscall.Kill(oldPid, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if !alive(oldPid) {
		t.Fatal("the old process exited with a session still open")
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("a1 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "a1 OK completed\r\n" {
		t.Fatalf("NOOP on the old session: %q %v", line, err)
	}
	c.Close()
	waitFor(t, "the old process to exit", func() bool { return !running(oldPid) })
	if _, err := os.Stat(pidFile + ".oldbin"); !os.IsNotExist(err) {
		t.Errorf("run.pid.oldbin left behind: %v", err)
	}
	if got := readPid(t, pidFile); got != newPid {
		t.Fatalf("run.pid holds %d, want the new pid %d", got, newPid)
	}

	// A failed upgrade: the next binary exits at once (its configuration
	// no longer loads), and the pid file is renamed back.
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("events {}\nmail { bad; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(newPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed binary's exit", fileHas(errorLog, "exited with code 1"))
	if _, err := os.Stat(pidFile + ".oldbin"); !os.IsNotExist(err) {
		t.Errorf("run.pid.oldbin still there after the new binary exited: %v", err)
	}
	if got := readPid(t, pidFile); got != newPid {
		t.Errorf("run.pid holds %d after the failed upgrade, want %d", got, newPid)
	}
	if b, _ := os.ReadFile(errorLog); !strings.Contains(string(b), "start new binary process") {
		t.Errorf("no start line in the error log:\n%s", b)
	}
	c3, line := greeting(t, addr)
	c3.Close()
	if !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting after the failed upgrade %q", line)
	}
	if err := syscall.Kill(newPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new process to exit", func() bool { return !running(newPid) })
}

// running is alive without zombies: a process whose parent exited may
// wait for a reaper that never comes in some sandboxes.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
