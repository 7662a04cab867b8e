package main

import (
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

// fakeNotify is a stand-in for systemd's notify socket.
type fakeNotify struct {
	path string
	conn *net.UnixConn
}

func newFakeNotify(t *testing.T, abstract bool) *fakeNotify {
	t.Helper()
	var path string
	if abstract {
		path = "@mailgate-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	} else {
		// unix socket paths are limited to 108 bytes; t.TempDir() can be
		// longer.
		dir, err := os.MkdirTemp("", "sd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "notify")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeNotify{path: path, conn: conn}
}

// next returns the next datagram's assignments.
func (f *fakeNotify) next(t *testing.T) map[string]string {
	t.Helper()
	buf := make([]byte, 4096)
	f.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := f.conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("notification line %q is not KEY=VALUE (datagram %q)", line, buf[:n])
		}
		m[k] = v
	}
	return m
}

func TestSdNotifyUnsetSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1\n"); err != nil {
		t.Fatalf("sdNotify without NOTIFY_SOCKET: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if err := sdNotify("READY=1\n"); err == nil {
		t.Fatal("a vsock: address was accepted")
	}
}

func TestSdNotifyAbstractSocket(t *testing.T) {
	f := newFakeNotify(t, true)
	t.Setenv("NOTIFY_SOCKET", f.path)
	before := monotonicUsec()
	sdReloading()
	after := monotonicUsec()
	m := f.next(t)
	if m["RELOADING"] != "1" {
		t.Fatalf("got %v, want RELOADING=1", m)
	}
	us, err := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
	if err != nil || us < before || us > after {
		t.Fatalf("MONOTONIC_USEC=%q not within [%d, %d]", m["MONOTONIC_USEC"], before, after)
	}
}

// TestSdNotifyLifecycle runs mailgate as systemd would (daemon off,
// $NOTIFY_SOCKET set) and follows its notifications through a good
// reload, a failed one and a graceful stop.
func TestSdNotifyLifecycle(t *testing.T) {
	bin := buildBinary(t)
	f := newFakeNotify(t, false)
	dir := t.TempDir()
	conf := "pid run.pid;\nerror_log main.log notice;\nevents {}\nmail {\n}\n"
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(conf)
	cmd := exec.Command(bin, "-p", dir, "-c", "nginx.conf", "-g", "daemon off;")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+f.path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()
	pid := strconv.Itoa(cmd.Process.Pid)

	m := f.next(t)
	if m["READY"] != "1" || m["MAINPID"] != pid {
		t.Fatalf("first notification %v, want READY=1 MAINPID=%s", m, pid)
	}
	// READY comes after the pid file is written.
	if readPid(t, filepath.Join(dir, "run.pid")) != cmd.Process.Pid {
		t.Error("READY=1 sent before the pid file was written")
	}

	for _, tc := range []struct {
		conf, status string
	}{
		{conf + "# touched\n", "serving"},
		{conf + "bogus_directive on;\n", "reload failed; serving the previous configuration"},
	} {
		write(tc.conf)
		before := monotonicUsec()
		cmd.Process.Signal(syscall.SIGHUP)
		m = f.next(t)
		if m["RELOADING"] != "1" {
			t.Fatalf("after HUP got %v, want RELOADING=1", m)
		}
		us, err := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
		if err != nil || us < before || us > monotonicUsec() {
			t.Errorf("MONOTONIC_USEC=%q is not the time of the reload", m["MONOTONIC_USEC"])
		}
		m = f.next(t)
		if m["READY"] != "1" || m["STATUS"] != tc.status {
			t.Fatalf("after reload got %v, want READY=1 STATUS=%s", m, tc.status)
		}
	}

	cmd.Process.Signal(syscall.SIGQUIT)
	m = f.next(t)
	if m["STOPPING"] != "1" {
		t.Fatalf("after QUIT got %v, want STOPPING=1", m)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after QUIT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mailgate did not exit on QUIT")
	}
}

// TestSdNotifyStopOnTerm: TERM (systemd's stop signal) sends STOPPING=1.
func TestSdNotifyStopOnTerm(t *testing.T) {
	bin := buildBinary(t)
	f := newFakeNotify(t, true)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("pid run.pid;\nevents {}\nmail {\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", "nginx.conf", "-g", "daemon off;")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+f.path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if m := f.next(t); m["READY"] != "1" {
		t.Fatalf("got %v, want READY=1", m)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if m := f.next(t); m["STOPPING"] != "1" {
		t.Fatalf("after TERM got %v, want STOPPING=1", m)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after TERM: %v", err)
	}
}
