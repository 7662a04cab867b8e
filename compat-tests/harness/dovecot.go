package harness

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DovecotBin is the dovecot binary used by StartDovecot.
var DovecotBin = "/usr/sbin/dovecot"

// Dovecot is a private Dovecot instance serving IMAP and POP3 on loopback.
//
// Users log in with plain passwords (PLAIN and LOGIN, plaintext allowed,
// no TLS). Mail is in maildirs under Dir, owned by the system user "mail"
// (Dovecot will not run mail processes as root). POP3 UIDLs are the IMAP
// UIDs (pop3_uidl_format = %08Xu) so they do not depend on the instance.
type Dovecot struct {
	IMAPAddr string // "127.0.0.1:port"
	POP3Addr string
	Dir      string

	t        testing.TB
	uid, gid int
	users    map[string]string
	cmd      *exec.Cmd
	done     chan struct{}
	mu       sync.Mutex
	seq      int
}

// StartDovecot starts a private Dovecot for users (name → password) and
// stops it at cleanup. extra lines are appended to dovecot.conf.
func StartDovecot(t testing.TB, users map[string]string, extra ...string) *Dovecot {
	t.Helper()
	var last error
	for try := 0; try < 3; try++ {
		d, err := startDovecot(t, users, extra)
		if err == nil {
			return d
		}
		last = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("harness: dovecot: %v", last)
	return nil
}

func mailUser() (uid, gid int, err error) {
	u, err := user.Lookup("mail")
	if err != nil {
		return 0, 0, fmt.Errorf("need the system user \"mail\": %w", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func startDovecot(t testing.TB, users map[string]string, extra []string) (*Dovecot, error) {
	uid, gid, err := mailUser()
	if err != nil {
		return nil, err
	}
	dir, err := shortTempDir(t, "hx-dc-")
	if err != nil {
		return nil, err
	}
	d := &Dovecot{Dir: dir, t: t, uid: uid, gid: gid, users: users, done: make(chan struct{})}
	imapPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	pop3Port, err := FreePort()
	if err != nil {
		return nil, err
	}
	d.IMAPAddr = fmt.Sprintf("127.0.0.1:%d", imapPort)
	d.POP3Addr = fmt.Sprintf("127.0.0.1:%d", pop3Port)
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	var pw strings.Builder
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s:%d:%d::%s\n", name, users[name], uid, gid, d.home(name))
		if err := d.makeMaildir(name); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o644); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
first_valid_gid = 1
mail_max_userip_connections = 1000
pop3_uidl_format = %%08Xu
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = %[1]s/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[3]d
  }
  inet_listener pop3s {
    port = 0
  }
}
%[4]s
`, dir, imapPort, pop3Port, strings.Join(extra, "\n"))
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "stdout.txt"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	d.cmd = exec.Command(DovecotBin, "-F", "-c", confPath)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w%s", err, installHint(DovecotBin, "dovecot-imapd dovecot-pop3d"))
	}
	go func() {
		d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { stopProcess(d.cmd, d.done, syscall.SIGTERM) })
	fail := func(err error) (*Dovecot, error) {
		stopProcess(d.cmd, d.done, syscall.SIGTERM)
		return nil, fmt.Errorf("%v\n--- stdout/stderr:\n%s--- dovecot.log:\n%s", err, d.readFile("stdout.txt"), d.Log())
	}
	if err := waitListening([]int{imapPort, pop3Port}, d.done, 15*time.Second); err != nil {
		return fail(err)
	}
	// The first logins after start-up may see "* OK Waiting for
	// authentication process to respond.." (IMAP) or a slow greeting:
	// probe until the auth process answers promptly.
	if err := d.warmUp(10 * time.Second); err != nil {
		return fail(err)
	}
	return d, nil
}

func (d *Dovecot) readFile(name string) string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, name))
	return string(b)
}

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string { return d.readFile("dovecot.log") }

func (d *Dovecot) warmUp(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := probeGreeting(d.IMAPAddr, "* OK [CAPABILITY")
		if err == nil {
			err = probeGreeting(d.POP3Addr, "+OK")
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func probeGreeting(addr, want string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, want) || strings.Contains(line, "Waiting") {
		return fmt.Errorf("greeting %q", line)
	}
	return nil
}

func (d *Dovecot) home(user string) string { return filepath.Join(d.Dir, "mail", user) }

// Maildir is the path of user's INBOX maildir.
func (d *Dovecot) Maildir(user string) string { return filepath.Join(d.home(user), "Maildir") }

func (d *Dovecot) makeMaildir(user string) error {
	for _, p := range []string{d.home(user), d.Maildir(user),
		filepath.Join(d.Maildir(user), "cur"), filepath.Join(d.Maildir(user), "new"), filepath.Join(d.Maildir(user), "tmp")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
		if err := os.Chown(p, d.uid, d.gid); err != nil {
			return err
		}
	}
	return nil
}

// Deliver puts msg into user's INBOX (maildir new/). Messages delivered
// in order get increasing UIDs. Line endings are sent as stored: use
// "\n" (Dovecot converts to CRLF on the wire).
func (d *Dovecot) Deliver(user string, msg string) {
	d.t.Helper()
	d.mu.Lock()
	d.seq++
	seq := d.seq
	d.mu.Unlock()
	name := fmt.Sprintf("1700000000.M%06dP1.harness", seq)
	tmp := filepath.Join(d.Maildir(user), "tmp", name)
	if err := os.WriteFile(tmp, []byte(msg), 0o600); err != nil {
		d.t.Fatalf("harness: deliver: %v", err)
	}
	if err := os.Chown(tmp, d.uid, d.gid); err != nil {
		d.t.Fatalf("harness: deliver: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Maildir(user), "new", name)); err != nil {
		d.t.Fatalf("harness: deliver: %v", err)
	}
}

// SetMailbox empties user's mail (messages and Dovecot's index and UID
// list) and delivers msgs. Use it between runs that change the mailbox.
// The UIDVALIDITY changes; normalise it (NormUIDValidity) if it is seen.
func (d *Dovecot) SetMailbox(user string, msgs ...string) {
	d.t.Helper()
	if err := os.RemoveAll(d.home(user)); err != nil {
		d.t.Fatalf("harness: %v", err)
	}
	if err := d.makeMaildir(user); err != nil {
		d.t.Fatalf("harness: %v", err)
	}
	for _, m := range msgs {
		d.Deliver(user, m)
	}
}

// Messages returns the messages in user's INBOX (new/ and cur/), in
// delivery order (by file name), as stored.
func (d *Dovecot) Messages(user string) []string {
	d.t.Helper()
	type file struct{ name, path string }
	var files []file
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(d.Maildir(user), sub))
		if err != nil {
			d.t.Fatalf("harness: %v", err)
		}
		for _, e := range ents {
			files = append(files, file{e.Name(), filepath.Join(d.Maildir(user), sub, e.Name())})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			d.t.Fatalf("harness: %v", err)
		}
		out = append(out, string(b))
	}
	return out
}
