package imap_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// Real clients through the proxy to a private Dovecot: mbsync (isync)
// mirrors a mailbox of 240 messages, curl fetches a 6 MB message. Both run
// against each implementation, so a failure shows whether nginx fails the
// same way.

func clientImpls() []harness.Impl {
	if env := os.Getenv("HARNESS_IMPLS"); env != "" {
		var out []harness.Impl
		for _, f := range strings.Split(env, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, harness.Impl(f))
			}
		}
		return out
	}
	return []harness.Impl{harness.Nginx, harness.Mailgate}
}

// startProxy starts impl with a one-server IMAP config asking auth.
func startProxy(t *testing.T, impl harness.Impl, auth *authserver.Server, extra string) *harness.Proxy {
	t.Helper()
	conf := *serverConf(extra)
	conf.Vars = map[string]string{"auth": auth.URL()}
	return harness.Start(t, impl, conf)
}

func randomMessage(r *rand.Rand, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: sender%d@example.test\nTo: alice@example.test\nSubject: message %d\nMessage-ID: <%d.harness@example.test>\n\n", i, i, i)
	lines := 1 + r.Intn(60)
	for l := 0; l < lines; l++ {
		n := r.Intn(90)
		for k := 0; k < n; k++ {
			b.WriteByte(byte('a' + r.Intn(26)))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestMbsyncMirrorsMailbox(t *testing.T) {
	if _, err := exec.LookPath("mbsync"); err != nil {
		t.Fatalf("mbsync (isync) is required: %v", err)
	}
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"}, "auth_failure_delay = 0")
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.IMAPAddr},
	}})
	r := rand.New(rand.NewSource(1))
	var msgs []string
	for i := 0; i < 240; i++ {
		msgs = append(msgs, randomMessage(r, i))
	}
	for _, impl := range clientImpls() {
		t.Run(string(impl), func(t *testing.T) {
			dc.SetMailbox("alice", msgs...)
			p := startProxy(t, impl, auth, "")
			dir := t.TempDir()
			port := strings.TrimPrefix(p.Addr("imap"), "127.0.0.1:")
			rc := filepath.Join(dir, "mbsyncrc")
			local := filepath.Join(dir, "mail")
			if err := os.MkdirAll(local, 0o755); err != nil {
				t.Fatal(err)
			}
			conf := fmt.Sprintf(`IMAPAccount gate
Host 127.0.0.1
Port %s
User alice
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account gate

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel mirror
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
`, port, local, local)
			if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("mbsync", "-c", rc, "-a")
			cmd.Env = append(os.Environ(), "HOME="+dir)
			out, err := runWithTimeout(cmd, 120*time.Second)
			if err != nil {
				t.Fatalf("mbsync: %v\n%s\nproxy log:\n%s", err, out, p.ErrorLog())
			}
			// mbsync adds its own X-TUID header to what it stores.
			got := readMaildir(t, filepath.Join(local, "INBOX"))
			for i := range got {
				got[i] = tuid.ReplaceAllString(got[i], "")
			}
			want := dc.Messages("alice")
			if len(want) != len(msgs) {
				t.Fatalf("server has %d messages, want %d", len(want), len(msgs))
			}
			norm := func(ss []string) []string {
				out := make([]string, len(ss))
				for i, s := range ss {
					out[i] = strings.ReplaceAll(s, "\r\n", "\n")
				}
				sort.Strings(out)
				return out
			}
			g, w := norm(got), norm(want)
			if len(g) != len(w) {
				t.Fatalf("local copy has %d messages, server %d\nmbsync output:\n%s", len(g), len(w), out)
			}
			for i := range g {
				if g[i] != w[i] {
					t.Fatalf("message %d differs:\nlocal  %q\nserver %q", i, g[i], w[i])
				}
			}
			if !strings.Contains(p.ErrorLog(), "client logged in") {
				t.Errorf("no login in the proxy log:\n%s", p.ErrorLog())
			}
		})
	}
}

var tuid = regexp.MustCompile(`(?m)^X-TUID: \S+\n`)

func readMaildir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("local maildir: %v", err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

func runWithTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.Bytes(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return buf.Bytes(), fmt.Errorf("timed out after %v", d)
	}
}

func TestCurlFetchesLargeMessage(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is required: %v", err)
	}
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"}, "auth_failure_delay = 0")
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.IMAPAddr},
	}})
	r := rand.New(rand.NewSource(2))
	var b strings.Builder
	b.WriteString("From: big@example.test\nSubject: large\n\n")
	for b.Len() < 6<<20 {
		n := 1 + r.Intn(120)
		for k := 0; k < n; k++ {
			b.WriteByte(byte(' ' + r.Intn(95)))
		}
		b.WriteByte('\n')
	}
	big := b.String()
	small := "From: a@example.test\nSubject: small\n\nhello\n"
	for _, impl := range clientImpls() {
		t.Run(string(impl), func(t *testing.T) {
			dc.SetMailbox("alice", small, big)
			// curl's AUTHENTICATE PLAIN goes through the "+ " continuation;
			// imap_client_buffer must hold its base64 line.
			p := startProxy(t, impl, auth, "        imap_auth plain login;")
			url := "imap://" + p.Addr("imap") + "/INBOX;UID=2"
			out := filepath.Join(t.TempDir(), "msg")
			cmd := exec.Command("curl", "-sS", "--max-time", "60", "--user", "alice:secret", "-o", out, url)
			logb, err := runWithTimeout(cmd, 90*time.Second)
			if err != nil {
				t.Fatalf("curl: %v\n%s\nproxy log:\n%s", err, logb, p.ErrorLog())
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(big, "\n", "\r\n")
			if string(got) != want {
				t.Fatalf("fetched %d bytes, want %d (first difference at %d)", len(got), len(want), firstDiff(string(got), want))
			}
			// And the small one with AUTHENTICATE LOGIN (imap_auth login
			// advertises it).
			cmd = exec.Command("curl", "-sS", "--max-time", "30", "--login-options", "AUTH=LOGIN", "--user", "alice:secret",
				"imap://"+p.Addr("imap")+"/INBOX;UID=1")
			got2, err := runWithTimeout(cmd, 60*time.Second)
			if err != nil {
				t.Fatalf("curl (LOGIN): %v\n%s", err, got2)
			}
			if w := strings.ReplaceAll(small, "\n", "\r\n"); string(got2) != w {
				t.Fatalf("small message %q, want %q", got2, w)
			}
			if n := strings.Count(p.ErrorLog(), "client logged in"); n != 2 {
				t.Errorf("%d logins in the proxy log, want 2:\n%s", n, p.ErrorLog())
			}
		})
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
