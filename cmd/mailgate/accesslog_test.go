package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The access log of the real binary: a relative path opens against the
// prefix, buffered lines go to the old file when USR1 reopens it, new
// lines to the new file, and QUIT flushes the buffer.
func TestAccessLogReopen(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := "pid run.pid;\nerror_log main.log notice;\nevents {}\nmail {\n" +
		"  log_format short '$remote_addr $protocol $status $login \"$end_reason\"';\n" +
		"  access_log logs/access.log short buffer=64k;\n" +
		"  server { listen " + addr + "; protocol imap; auth_http 127.0.0.1:9/auth; }\n}\n"
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
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
	waitFor(t, "pid file", func() bool { return readPid(t, filepath.Join(dir, "run.pid")) == cmd.Process.Pid })
	access, errLog := filepath.Join(dir, "logs/access.log"), filepath.Join(dir, "main.log")
	if _, err := os.Stat(access); err != nil {
		t.Fatalf("access log not opened at start: %v", err)
	}

	session := func() {
		c, line := greeting(t, addr)
		if !strings.HasPrefix(line, "* OK") {
			t.Fatalf("greeting %q", line)
		}
		io.WriteString(c, "a1 LOGOUT\r\n")
		io.ReadAll(c)
		c.Close()
	}
	session()
	time.Sleep(200 * time.Millisecond)
	if got := readFile(access); got != "" {
		t.Fatalf("buffered line written at once: %q", got)
	}

	if err := os.Rename(access, access+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "reopened logs", fileHas(errLog, "reopening logs"))
	want := "127.0.0.1 imap 200 - \"client_closed\"\n"
	if got := readFile(access + ".1"); got != want {
		t.Errorf("renamed file after USR1: %q, want %q", got, want)
	}
	if _, err := os.Stat(access); err != nil {
		t.Fatalf("USR1 did not create a new access log: %v", err)
	}

	session()
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after QUIT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mailgate did not exit on QUIT")
	}
	if got := readFile(access); got != want {
		t.Errorf("new file after QUIT: %q, want %q", got, want)
	}
}
