package pop3

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// bigMessage is a message of about 3 MB with lines that need POP3 dot
// stuffing and a long line, stored with LF line ends.
func bigMessage() string {
	var b strings.Builder
	b.WriteString("From: alice@example.test\nTo: alice@example.test\nSubject: big\nMessage-ID: <big@example.test>\n\n")
	for i := 0; b.Len() < 3<<20; i++ {
		switch i % 50 {
		case 7:
			b.WriteString(".starts with a dot\n")
		case 13:
			b.WriteString(".\n")
		case 21:
			b.WriteString(strings.Repeat("x", 998) + "\n")
		default:
			fmt.Fprintf(&b, "line %07d the quick brown fox jumps over the lazy dog 0123456789\n", i)
		}
	}
	return b.String()
}

// TestRealClients fetches a 3 MB message from Dovecot through mailgate
// (and nginx, as the reference) with curl and fetchmail; what they get
// must equal the stored message.
func TestRealClients(t *testing.T) {
	for _, bin := range []string{"curl", "fetchmail"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is required: %v", bin, err)
		}
	}
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.POP3Addr},
	}})
	msg := bigMessage()
	conf := harness.Config{Mail: `
    auth_http ` + auth.URL() + `;
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;
    }`}
	for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
		t.Run(string(impl), func(t *testing.T) {
			p := harness.Start(t, impl, conf)
			addr := p.Addr("pop3")
			port := addr[strings.LastIndexByte(addr, ':')+1:]

			t.Run("curl", func(t *testing.T) {
				dc.SetMailbox("alice", msg)
				out, err := exec.Command("curl", "-sS", "--max-time", "60", "-u", "alice:secret",
					"pop3://127.0.0.1:"+port+"/1").Output()
				if err != nil {
					t.Fatalf("curl: %v", err)
				}
				// curl gives the message as sent on the wire, CRLF line ends,
				// dot stuffing removed.
				want := strings.ReplaceAll(msg, "\n", "\r\n")
				if !bytes.Equal(out, []byte(want)) {
					t.Errorf("curl got %d bytes, want %d (first difference at %d)", len(out), len(want), firstDiff(out, []byte(want)))
				}
			})

			t.Run("fetchmail", func(t *testing.T) {
				dc.SetMailbox("alice", msg)
				dir := t.TempDir()
				outFile := filepath.Join(dir, "out.eml")
				rc := filepath.Join(dir, "fetchmailrc")
				rcText := fmt.Sprintf("poll 127.0.0.1 protocol pop3 port %s auth password user \"alice\" password \"secret\" keep no rewrite mda \"cat > %s\" sslproto ''\n", port, outFile)
				if err := os.WriteFile(rc, []byte(rcText), 0o600); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("fetchmail", "-f", rc, "--nodetach", "--nosyslog", "--invisible", "-v")
				cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
				done := make(chan struct{})
				var out []byte
				var err error
				go func() { out, err = cmd.CombinedOutput(); close(done) }()
				select {
				case <-done:
				case <-time.After(90 * time.Second):
					cmd.Process.Kill() //nolint:errcheck
					<-done
					t.Fatalf("fetchmail hung:\n%s", out)
				}
				if err != nil {
					t.Fatalf("fetchmail: %v\n%s", err, out)
				}
				got, rerr := os.ReadFile(outFile)
				if rerr != nil {
					t.Fatalf("fetchmail delivered nothing: %v\n%s", rerr, out)
				}
				// fetchmail hands the MDA the message with LF line ends.
				if !bytes.Equal(got, []byte(msg)) {
					t.Errorf("fetchmail got %d bytes, want %d (first difference at %d)", len(got), len(msg), firstDiff(got, []byte(msg)))
				}
			})
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
