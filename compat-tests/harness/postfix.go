package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostfixMaster is Postfix's master daemon, run in the foreground (-d).
var PostfixMaster = "/usr/lib/postfix/sbin/master"

// Postfix is a private Postfix instance with one smtpd on loopback.
//
// It trusts 127.0.0.0/8 (mynetworks, XCLIENT), accepts mail for any
// address in the domains example.com, example.org and example.net and
// delivers all of it into one maildir (read it with Messages; each
// message starts with Return-Path and Delivered-To headers). Everything
// else is refused at delivery (no DNS, no relaying). The banner is
// "220 upstream.test ESMTP".
//
// Gotchas handled here:
//   - own config, queue and data directories under a short /tmp path
//     (unix socket paths are limited to 108 bytes);
//   - data_directory must belong to the postfix user;
//   - maillog_file must match maillog_file_prefixes;
//   - the queue tree is made here with the owners and modes of
//     postfix-files (`postfix check` would take seconds);
//   - Postfix sleeps while a config file is only seconds old, so main.cf
//     and master.cf are back-dated;
//   - master -d keeps the master in the foreground, in its own process
//     group, so the test owns it and SIGTERM ends all of it;
//   - virtual_mailbox_maps regexp tables may not use $1, so a static map
//     sends everything to one maildir.
//
// Several instances can run at once.
type Postfix struct {
	Addr string // smtpd, "127.0.0.1:port"
	Dir  string

	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPostfix starts a private Postfix and stops it at cleanup. extra
// lines are appended to main.cf (e.g. "smtpd_client_restrictions = ...").
func StartPostfix(t testing.TB, extra ...string) *Postfix {
	t.Helper()
	var last error
	for try := 0; try < 3; try++ {
		p, err := startPostfix(t, extra)
		if err == nil {
			return p
		}
		last = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("harness: postfix: %v", last)
	return nil
}

func startPostfix(t testing.TB, extra []string) (*Postfix, error) {
	uid, gid, err := mailUser()
	if err != nil {
		return nil, err
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("need the postfix user (apt-get install postfix): %w", err)
	}
	pfUID, _ := strconv.Atoi(pfUser.Uid)
	dir, err := shortTempDir(t, "hx-pf-")
	if err != nil {
		return nil, err
	}
	p := &Postfix{Dir: dir, t: t, done: make(chan struct{})}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	for _, sub := range []string{"conf", "queue", "data", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), pfUID, -1); err != nil {
		return nil, err
	}
	if err := os.Chown(filepath.Join(dir, "mail"), uid, gid); err != nil {
		return nil, err
	}
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = upstream.test
mydomain = upstream.test
myorigin = upstream.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_authorized_xclient_hosts = 127.0.0.0/8
disable_dns_lookups = yes
smtp_host_lookup = native
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:local delivery disabled
default_transport = error:relay disabled
relay_transport = error:relay disabled
virtual_mailbox_domains = example.com example.org example.net
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = static:sink/
virtual_uid_maps = static:%[2]d
virtual_gid_maps = static:%[3]d
virtual_minimum_uid = 1
maillog_file_prefixes = %[1]s
maillog_file = %[1]s/maillog
smtpd_banner = $myhostname ESMTP
biff = no
smtputf8_enable = no
%[4]s
`, dir, uid, gid, strings.Join(extra, "\n"))
	master := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
proxymap  unix  - - n - - proxymap
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
showq     unix  n - n - - showq
flush     unix  n - n 1000? 0 flush
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
`, port)
	conf := filepath.Join(dir, "conf")
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(master), 0o644); err != nil {
		return nil, err
	}
	// Postfix waits for a config file modified within the last seconds to
	// "settle" (300ms sleeps, ~2s): date them in the past.
	past := time.Now().Add(-time.Hour)
	for _, f := range []string{"main.cf", "master.cf"} {
		if err := os.Chtimes(filepath.Join(conf, f), past, past); err != nil {
			return nil, err
		}
	}
	// The queue tree as postfix-files describes it; `postfix check` would
	// make it too, but its shell script takes seconds.
	postdrop, err := user.LookupGroup("postdrop")
	if err != nil {
		return nil, fmt.Errorf("need the postdrop group (apt-get install postfix): %w", err)
	}
	pdGID, _ := strconv.Atoi(postdrop.Gid)
	queue := filepath.Join(dir, "queue")
	for _, q := range []struct {
		name     string
		uid, gid int
		mode     os.FileMode
	}{
		{"active", pfUID, -1, 0o700}, {"bounce", pfUID, -1, 0o700}, {"corrupt", pfUID, -1, 0o700},
		{"defer", pfUID, -1, 0o700}, {"deferred", pfUID, -1, 0o700}, {"flush", pfUID, -1, 0o700},
		{"hold", pfUID, -1, 0o700}, {"incoming", pfUID, -1, 0o700}, {"saved", pfUID, -1, 0o700},
		{"trace", pfUID, -1, 0o700}, {"private", pfUID, -1, 0o700},
		{"maildrop", pfUID, pdGID, 0o730}, {"public", pfUID, pdGID, 0o710}, {"pid", 0, 0, 0o755},
	} {
		path := filepath.Join(queue, q.name)
		if err := os.Mkdir(path, q.mode); err != nil {
			return nil, err
		}
		if err := os.Chown(path, q.uid, q.gid); err != nil {
			return nil, err
		}
		if err := os.Chmod(path, q.mode); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "stdout.txt"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	p.cmd = exec.Command(PostfixMaster, "-d", "-c", conf)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	// Its own process group: master signals the group when it stops.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w%s", err, installHint(PostfixMaster, "postfix"))
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { stopProcess(p.cmd, p.done, syscall.SIGTERM) })
	if err := waitListening([]int{port}, p.done, 15*time.Second); err != nil {
		stopProcess(p.cmd, p.done, syscall.SIGTERM)
		b, _ := os.ReadFile(filepath.Join(dir, "stdout.txt"))
		return nil, fmt.Errorf("%v\n--- stdout/stderr:\n%s--- maillog:\n%s", err, b, p.Log())
	}
	return p, nil
}

// Log returns the instance's mail log so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}

// Messages returns the delivered messages in delivery order.
func (p *Postfix) Messages() []string {
	p.t.Helper()
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(p.Dir, "mail", "sink", sub))
		if err != nil {
			continue // nothing delivered yet
		}
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				continue
			}
			files = append(files, file{filepath.Join(p.Dir, "mail", "sink", sub, e.Name()), info.ModTime()})
		}
	}
	sort.SliceStable(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].path < files[j].path
	})
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

// WaitMessages waits until at least n messages were delivered (delivery is
// asynchronous) and returns them; the test fails after timeout.
func (p *Postfix) WaitMessages(n int, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := p.Messages()
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("harness: postfix delivered %d messages, want %d\n--- maillog:\n%s", len(msgs), n, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Dial connects to the smtpd (for tests that talk to Postfix directly).
func (p *Postfix) Dial() (net.Conn, error) { return net.DialTimeout("tcp", p.Addr, 5*time.Second) }
