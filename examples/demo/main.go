// Command demo runs mailgate with examples/nginx.conf in front of a private
// Dovecot (POP3, IMAP) and, when Postfix is installed, a private Postfix
// (SMTP), with the auth_http test server on 127.0.0.1:21900 routing the
// demo user (password "demo") to them. Start it with examples/demo/run.sh
// from the repository root; -nginx runs real nginx instead of mailgate.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// tb lets the demo use the harness outside a test: cleanups run at exit
// and failures end the program.
type tb struct {
	testing.TB
	cleanups []func()
}

func (t *tb) Helper()                   {}
func (t *tb) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *tb) Logf(f string, a ...any)   { fmt.Fprintf(os.Stderr, "demo: "+f+"\n", a...) }
func (t *tb) Errorf(f string, a ...any) { t.Logf(f, a...) }
func (t *tb) Fatalf(f string, a ...any) {
	t.Logf(f, a...)
	t.cleanup()
	os.Exit(1)
}

func (t *tb) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

const (
	authAddr = "127.0.0.1:21900"
	user     = "demo"
	password = "demo"
)

var demoMessages = []string{
	"From: Alice <alice@example.com>\nTo: demo@example.com\nSubject: Welcome to mailgate\nDate: Thu, 26 Nov 2026 06:00:00 +0000\n\nThis message was served by Dovecot through mailgate.\n",
	"From: Bob <bob@example.com>\nTo: demo@example.com\nSubject: Second message\nDate: Thu, 26 Nov 2026 06:01:00 +0000\n\nTry: curl -v pop3://demo:demo@127.0.0.1:21110/1\n",
}

func main() {
	useNginx := flag.Bool("nginx", false, "run real nginx instead of mailgate")
	flag.Parse()
	t := &tb{}
	defer t.cleanup()

	root, err := os.Getwd()
	if err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "examples", "nginx.conf")); err != nil {
		t.Fatalf("run me from the repository root: %v", err)
	}

	dc := harness.StartDovecot(t, map[string]string{user: password})
	for _, m := range demoMessages {
		dc.Deliver(user, m)
	}
	t.Logf("dovecot: pop3 %s, imap %s (%s)", dc.POP3Addr, dc.IMAPAddr, dc.Dir)
	smtpUp := ""
	if _, err := os.Stat(harness.PostfixMaster); err == nil {
		pf := harness.StartPostfix(t)
		smtpUp = pf.Addr
		t.Logf("postfix: smtp %s, delivers *@example.com to %s/mail/sink", pf.Addr, pf.Dir)
	} else {
		t.Logf("postfix not installed: the SMTP server will answer, but logins fail upstream")
	}

	upstream := map[string]string{"pop3": dc.POP3Addr, "imap": dc.IMAPAddr, "smtp": smtpUp}
	auth, err := authserver.Start(authAddr, authserver.Script{
		Users:        map[string]authserver.User{user: {Password: password, Upstream: dc.POP3Addr}},
		NoneUpstream: smtpUp,
		// One user, one upstream per protocol.
		Handler: func(r *authserver.Request) *authserver.Behavior {
			host, port, err := net.SplitHostPort(upstream[r.Get("Auth-Protocol")])
			if err != nil || r.Get("Auth-Method") == "none" {
				return nil
			}
			return &authserver.Behavior{Server: host, Port: port}
		},
	})
	if err != nil {
		t.Fatalf("auth server on %s: %v", authAddr, err)
	}
	t.Cleanup(func() { auth.Close() })

	bin := "/usr/sbin/nginx"
	if !*useNginx {
		bin = filepath.Join(os.TempDir(), "mailgate-demo")
		build := exec.Command("go", "build", "-o", bin, "./cmd/mailgate")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			t.Fatalf("go build ./cmd/mailgate: %v", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "examples", "logs"), 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	cmd := exec.Command(bin, "-p", filepath.Join(root, "examples")+"/", "-c", "nginx.conf",
		"-e", "stderr", "-g", "daemon off; master_process off;")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if err := waitPort("127.0.0.1:21110", exited); err != nil {
		t.Fatalf("%s did not start serving: %v", filepath.Base(bin), err)
	}
	fmt.Printf(`
%s is serving examples/nginx.conf (error log: examples/logs/error.log).
Try, in another terminal:

  curl -v pop3://demo:demo@127.0.0.1:21110/
  curl -v 'imap://demo:demo@127.0.0.1:21143/INBOX;UID=1'
  swaks --server 127.0.0.1:21025 --auth-user demo --auth-password demo --to demo@example.com

Ctrl-C stops everything.
`, filepath.Base(bin))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case s := <-sig:
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		t.Logf("stopped (%v)", s)
	case err := <-exited:
		t.Logf("%s exited: %v", filepath.Base(bin), err)
	}
}

// waitPort waits until addr accepts a connection (the greeting is read
// and dropped) or the process exits.
func waitPort(addr string, exited chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+OK") {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not answering", addr)
}
