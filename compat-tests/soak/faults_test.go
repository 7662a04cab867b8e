package soak

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mailgate/compat-tests/harness"
)

// faultsMail is soakMail with short timeouts, so that one session of
// every kind runs quickly.
var faultsMail = soakMailConf("2s", "3s", "5s")

// logNorm makes one session's error.log lines comparable between nginx
// and mailgate: no time, pid or connection number, no ports, no quoted
// text (logins).
var logNorm = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^\S+ \S+ `), ""},
	{regexp.MustCompile(`\d+#\d+: \*\d+ `), ""},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "ADDR"},
	{regexp.MustCompile(`"[^"]*"`), `"…"`},
}

// faultsDiffer are the kinds whose sessions may differ, and why; their
// differences are logged, not failed.
var faultsDiffer = map[string]string{
	// As compat-tests/pop3's oversizeDiffer.
	"authoversize": "auth_http header block over 1024 bytes: nginx may stall until auth_http_timeout, the auth client fails at once",
}

// TestFaultsLikeNginx runs one session of every soak kind but the
// abandon ones (their log difference is abandon_bug_test.go; the wait
// for their last lines would be long) on each protocol through nginx and
// through mailgate, with the same fault proxies and auth answers, and
// compares how each session ended and the error.log lines it left.
func TestFaultsLikeNginx(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	e := startSoakEnv(t, faultsMail)
	// The same garbage for both proxies (random garbage may or may not
	// hold a line end, and the two would see different bytes).
	for name, fp := range e.faults {
		if strings.HasSuffix(name, "/garbage") {
			fp.SetGarbage([]byte("\x16\x03\x01\x00 not a greeting\r\n"))
		}
	}
	procs := map[harness.Impl]*harness.Proxy{
		harness.Nginx:    harness.StartNginx(t, harness.Config{Mail: faultsMail, Vars: map[string]string{"auth": e.as.URL()}}),
		harness.Mailgate: e.mg,
	}
	type result struct{ out, detail, log string }
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = map[string]map[harness.Impl]result{}
	)
	for impl, p := range procs {
		for _, proto := range protocols {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(1, 1))
				for i, k := range e.kinds {
					if strings.HasPrefix(k.name, "abandon") {
						continue
					}
					mark := len(grepAll(p.ErrorLog(), p.Addr(proto)))
					n := int64(i + 1)
					var out outcome
					var detail string
					switch proto {
					case "pop3":
						out, detail = pop3Session(p.Addr(proto), k.name, n, e.mb, 1, 0, 20*time.Second)
					case "imap":
						out, detail = imapSession(p.Addr(proto), k.name, n, e.mb, 1, 0, 20*time.Second)
					default:
						out, detail = smtpSession(p.Addr(proto), k.name, n, rng, 5000, 0, 20*time.Second, func(string, string) {})
					}
					time.Sleep(500 * time.Millisecond) // the proxy's last lines for the session
					lines := grepAll(p.ErrorLog(), p.Addr(proto))[mark:]
					for j := range lines {
						for _, r := range logNorm {
							lines[j] = r.re.ReplaceAllString(lines[j], r.repl)
						}
					}
					mu.Lock()
					key := proto + " " + k.name
					if results[key] == nil {
						results[key] = map[harness.Impl]result{}
					}
					results[key][impl] = result{string(out), detail, strings.Join(lines, "\n")}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	same, declared := 0, 0
	for _, proto := range protocols {
		for _, k := range e.kinds {
			r, ok := results[proto+" "+k.name]
			if !ok {
				continue
			}
			ng, mg := r[harness.Nginx], r[harness.Mailgate]
			if ng.out != mg.out || ng.log != mg.log {
				report := t.Errorf
				if reason, ok := faultsDiffer[k.name]; ok {
					report = t.Logf
					declared++
					t.Logf("%s %s: declared difference: %s", proto, k.name, reason)
				}
				report("%s %s:\n--- nginx: %s %s\n%s\n--- mailgate: %s %s\n%s",
					proto, k.name, ng.out, ng.detail, ng.log, mg.out, mg.detail, mg.log)
				continue
			}
			same++
		}
	}
	t.Logf("%d fault sessions: %d ended alike with the same error.log lines, %d declared differences",
		len(results), same, declared)
}
