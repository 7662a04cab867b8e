package smtp

// Real clients: swaks sends many messages of assorted sizes through
// mailgate to a real Postfix, with AUTH (submission) and without (inbound
// MX mode, smtp_auth none), and every message must arrive whole: the body
// Postfix delivered has the checksum of the body swaks sent.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// Size distribution: mostly small, some medium, a few of 20 MB.
// Overridable with SMTP_SWAKS_N (messages per mode).
func messageSizes(n int, rng *rand.Rand) []int {
	sizes := make([]int, n)
	for i := range sizes {
		switch {
		case i%100 == 99:
			sizes[i] = 20 << 20 // 20 MB
		case i%25 == 24:
			sizes[i] = 1<<20 + rng.Intn(4<<20) // 1-5 MB
		case i%5 == 4:
			sizes[i] = 64<<10 + rng.Intn(512<<10) // 64-576 KB
		default:
			sizes[i] = 200 + rng.Intn(16<<10) // up to 16 KB
		}
	}
	return sizes
}

// writeMessage writes message seq of about size bytes (LF line ends; swaks
// sends CRLF) and returns the checksum of its body as delivered (LF).
func writeMessage(dir string, seq, size int, rng *rand.Rand) (string, string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <sender@example.org>\nTo: <rcpt@example.com>\nSubject: swaks %d\nX-Seq: %d\nMessage-ID: <%d.swaks@example.org>\n\n", seq, seq, seq)
	head := b.Len()
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_"
	line := make([]byte, 0, 100)
	for b.Len() < size {
		line = line[:0]
		n := 1 + rng.Intn(98)
		for i := 0; i < n; i++ {
			line = append(line, alphabet[rng.Intn(len(alphabet))])
		}
		// Lines starting with a dot test transparency.
		if rng.Intn(50) == 0 {
			line[0] = '.'
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	// The file lacks the last LF: swaks ends the data with CRLF itself.
	body := b.Bytes()[head:]
	sum := sha256.Sum256(body)
	path := filepath.Join(dir, fmt.Sprintf("m%04d.eml", seq))
	if err := os.WriteFile(path, b.Bytes()[:b.Len()-1], 0o644); err != nil {
		return "", "", err
	}
	return path, hex.EncodeToString(sum[:]), nil
}

var seqRe = regexp.MustCompile(`(?m)^X-Seq: (\d+)\r?$`)

// deliveredSums maps X-Seq to the checksum of each delivered body.
func deliveredSums(msgs []string) map[int]string {
	out := map[int]string{}
	for _, m := range msgs {
		m = strings.ReplaceAll(m, "\r\n", "\n")
		i := strings.Index(m, "\n\n")
		if i < 0 {
			continue
		}
		sm := seqRe.FindStringSubmatch(m[:i])
		if sm == nil {
			continue
		}
		seq, _ := strconv.Atoi(sm[1])
		sum := sha256.Sum256([]byte(m[i+2:]))
		out[seq] = hex.EncodeToString(sum[:])
	}
	return out
}

func swaksCount(t *testing.T) int {
	if v := os.Getenv("SMTP_SWAKS_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil && n > 0 {
			return n
		}
	}
	return 500
}

func TestSwaksThroughMailgate(t *testing.T) {
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Fatalf("swaks not installed: %v", err)
	}
	n := swaksCount(t)
	modes := []struct {
		name   string
		listen string
		args   []string
	}{
		{"submission with AUTH", "sub", []string{"--auth", "PLAIN", "--auth-user", "good", "--auth-password", "pw"}},
		{"inbound MX without AUTH", "mx", nil},
	}

	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	sizes := messageSizes(n, rng)
	paths := make([]string, n)
	sums := make([]string, n)
	total := 0
	for i, size := range sizes {
		p, sum, err := writeMessage(dir, i, size, rng)
		if err != nil {
			t.Fatal(err)
		}
		paths[i], sums[i] = p, sum
		total += size
	}
	t.Logf("%d messages per mode, %.1f MB in all, largest %d MB", n, float64(total)/(1<<20), 20)

	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			pf := harness.StartPostfix(t, "message_size_limit = 52428800", "mailbox_size_limit = 0",
				"virtual_mailbox_limit = 0", "default_process_limit = 20")
			as := harness.StartAuth(t, authserver.Script{
				Users:        map[string]authserver.User{"good": {Password: "pw", Upstream: pf.Addr}},
				NoneUpstream: pf.Addr,
			})
			p := harness.StartMailgate(t, harness.Config{
				Vars: map[string]string{"auth": as.URL()},
				Mail: `
    auth_http {{auth}};
    server_name mx.example.test;
    server {
        listen 127.0.0.1:{{port sub}};
        protocol smtp;
        smtp_capabilities PIPELINING "SIZE 52428800" 8BITMIME;
    }
    server {
        listen 127.0.0.1:{{port mx}};
        protocol smtp;
        smtp_auth none;
        smtp_capabilities PIPELINING "SIZE 52428800" 8BITMIME;
    }`,
			})
			addr := p.Addr(mode.listen)
			start := time.Now()
			const workers = 6
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				errs []string
				next = make(chan int)
			)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						args := append([]string{
							"--server", addr, "--from", "sender@example.org", "--to", "rcpt@example.com",
							"--helo", "client.example", "--data", paths[i], "--hide-all", "--timeout", "60",
						}, mode.args...)
						out, err := exec.Command("swaks", args...).CombinedOutput()
						if err != nil {
							mu.Lock()
							errs = append(errs, fmt.Sprintf("message %d (%d bytes): %v\n%s", i, sizes[i], err, out))
							mu.Unlock()
						}
					}
				}()
			}
			for i := 0; i < n; i++ {
				next <- i
			}
			close(next)
			wg.Wait()
			sent := time.Since(start)
			if len(errs) > 0 {
				t.Fatalf("%d of %d sends failed; first: %s", len(errs), n, errs[0])
			}
			msgs := pf.WaitMessages(n, 3*time.Minute)
			got := deliveredSums(msgs)
			if d := os.Getenv("SMTP_SWAKS_DEBUG"); d != "" {
				for i, m := range msgs {
					os.WriteFile(filepath.Join(d, fmt.Sprintf("got%d", i)), []byte(m), 0o644) //nolint:errcheck
				}
			}
			bad := 0
			for i := 0; i < n; i++ {
				if got[i] != sums[i] {
					bad++
					if bad <= 3 {
						t.Errorf("message %d (%d bytes): delivered checksum %q, sent %q", i, sizes[i], got[i], sums[i])
					}
				}
			}
			if len(got) != n || bad > 0 {
				t.Fatalf("%d messages delivered intact of %d (%d delivered, %d wrong)", n-bad, n, len(got), bad)
			}
			t.Logf("%s: %d messages sent in %v, all delivered intact after %v", mode.name, n, sent.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}
