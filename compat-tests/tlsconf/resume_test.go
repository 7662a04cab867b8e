package tlsconf_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/harness"
)

// sessionRun is one connection of `openssl s_client` saving its session
// to a file or offering the one saved.
type sessionRun struct {
	outcome string   // "New", "Reused", or "no saved session" (nothing to offer)
	hints   []string // "TLS session ticket lifetime hint" values seen
	saved   bool     // a session file was written
}

var (
	reNewReused = regexp.MustCompile(`(?m)^(New|Reused), `)
	reHint      = regexp.MustCompile(`TLS session ticket lifetime hint: (\d+)`)
)

// sessClient connects to addr with s_client, saving the session to out
// (if not "") and offering the one in in (if not ""). It waits a second
// before closing, so that TLS 1.3 tickets arrive.
func sessClient(t *testing.T, addr, in, out string, args ...string) sessionRun {
	t.Helper()
	a := []string{"s_client", "-connect", addr, "-servername", "mx.test"}
	if in != "" {
		if _, err := os.Stat(in); err != nil {
			return sessionRun{outcome: "no saved session"}
		}
		a = append(a, "-sess_in", in)
	}
	if out != "" {
		os.Remove(out)
		a = append(a, "-sess_out", out)
	}
	cmd := exec.Command("openssl", append(a, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	stdin.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill() //nolint:errcheck
		<-done
	}
	r := sessionRun{outcome: "no handshake"}
	if m := reNewReused.FindStringSubmatch(b.String()); m != nil {
		r.outcome = m[1]
	}
	for _, m := range reHint.FindAllStringSubmatch(b.String(), -1) {
		if !slices.Contains(r.hints, m[1]) {
			r.hints = append(r.hints, m[1])
		}
	}
	if out != "" {
		_, err := os.Stat(out)
		r.saved = err == nil
	}
	return r
}

type resumeScenario struct {
	name   string
	server string // directives of the servers
	// second: the second and third connections go to the second server
	// (same directives) instead of the first
	second bool
	// wait between the first connection and the others
	wait   time.Duration
	client []string
	resume bool // what both must do on the second and third connections
	// detailDiffer, if set, declares why the details (session saved,
	// lifetime hints) may differ; the outcome may not.
	detailDiffer string
	// mailgateResume, if set, is mailgate's outcome where Go forces one
	// other than nginx's (resume), with outcomeDiffer saying why.
	mailgateResume *bool
	outcomeDiffer  string
}

// Go's TLS 1.3 tickets carry its own lifetime (7 days) and its TLS 1.2
// tickets none; the session still expires after ssl_session_timeout.
const hintDiffer = "crypto/tls sends its own ticket lifetime hint (TLS 1.3: 604800 s; TLS 1.2: none) where OpenSSL sends ssl_session_timeout; the session still expires after ssl_session_timeout"

// TestSessionResumptionAgainstNginx compares what `openssl s_client
// -sess_out` then `-sess_in` observes (New or Reused) for each
// ssl_session_cache and ssl_session_tickets mode, TLS 1.2 and 1.3, on
// "listen ... ssl" and STARTTLS.
func TestSessionResumptionAgainstNginx(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl (the command) is needed: apt-get install openssl")
	}
	cert, key := harness.SelfSigned("mx.test")
	files := map[string]string{"cert.pem": cert, "key.pem": key}
	type mode struct {
		name, server string
		resume       bool
		differ12     string // TLS 1.2 details
		differ13     string
	}
	modes := []mode{
		{"default (none, tickets on)", "", true, hintDiffer, hintDiffer},
		{"builtin, tickets on", "ssl_session_cache builtin:1000;", true, hintDiffer, hintDiffer},
		{"builtin, tickets off", "ssl_session_cache builtin:1000; ssl_session_tickets off;", true,
			"", hintDiffer},
		{"shared, tickets off", "ssl_session_cache shared:S:1m; ssl_session_tickets off;", true, "", hintDiffer},
		{"builtin and shared, tickets off", "ssl_session_cache builtin:100 shared:S2:1m; ssl_session_tickets off;", true, "", hintDiffer},
		{"none, tickets off", "ssl_session_cache none; ssl_session_tickets off;", false,
			"with \"none\" OpenSSL sends a session ID it never caches, so s_client saves a session it cannot resume; crypto/tls sends no session ID and s_client saves nothing",
			"OpenSSL still sends TLS 1.3 tickets it will not accept; crypto/tls sends none, so s_client saves nothing"},
		{"off, tickets off", "ssl_session_cache off; ssl_session_tickets off;", false, "",
			"OpenSSL still sends TLS 1.3 tickets it will not accept; crypto/tls sends none, so s_client saves nothing"},
		{"off, tickets on", "ssl_session_cache off;", true, hintDiffer, hintDiffer},
		{"Options -SessionTicket", "ssl_conf_command Options -SessionTicket;", false,
			"with \"none\" OpenSSL sends a session ID it never caches, so s_client saves a session it cannot resume; crypto/tls sends no session ID and s_client saves nothing",
			"OpenSSL still sends TLS 1.3 tickets it will not accept; crypto/tls sends none, so s_client saves nothing"},
		{"Options -SessionTicket, builtin", "ssl_session_cache builtin; ssl_conf_command Options -SessionTicket;", true, "", hintDiffer},
	}
	var scenarios []resumeScenario
	for _, m := range modes {
		for _, v := range []string{"-tls1_2", "-tls1_3"} {
			d := m.differ12
			if v == "-tls1_3" {
				d = m.differ13
			}
			scenarios = append(scenarios, resumeScenario{name: m.name + " " + v, server: m.server, client: []string{v}, resume: m.resume, detailDiffer: d})
		}
	}
	scenarios = append(scenarios,
		resumeScenario{name: "STARTTLS, builtin, tickets off -tls1_2", server: "ssl_session_cache builtin; ssl_session_tickets off;",
			client: []string{"-tls1_2", "-starttls", "imap"}, resume: true},
		resumeScenario{name: "STARTTLS, builtin, tickets off -tls1_3", server: "ssl_session_cache builtin; ssl_session_tickets off;",
			client: []string{"-tls1_3", "-starttls", "imap"}, resume: true, detailDiffer: hintDiffer},
		resumeScenario{name: "STARTTLS, none, tickets off -tls1_3", server: "ssl_session_cache none; ssl_session_tickets off;",
			client: []string{"-tls1_3", "-starttls", "imap"}, resume: false,
			detailDiffer: "OpenSSL still sends TLS 1.3 tickets it will not accept; crypto/tls sends none, so s_client saves nothing"},
		// One cache per server block for builtin; shared by name.
		resumeScenario{name: "builtin, another server -tls1_2", server: "ssl_session_cache builtin; ssl_session_tickets off;", second: true,
			client: []string{"-tls1_2"}, resume: false},
		resumeScenario{name: "builtin, another server -tls1_3", server: "ssl_session_cache builtin; ssl_session_tickets off;", second: true,
			client: []string{"-tls1_3"}, resume: false, detailDiffer: hintDiffer},
		resumeScenario{name: "shared, another server -tls1_2", server: "ssl_session_cache shared:S:1m; ssl_session_tickets off;", second: true,
			client: []string{"-tls1_2"}, resume: true},
		resumeScenario{name: "shared, another server -tls1_3", server: "ssl_session_cache shared:S:1m; ssl_session_tickets off;", second: true,
			client: []string{"-tls1_3"}, resume: true, detailDiffer: hintDiffer},
		// A TLS 1.2 client without tickets: nginx resumes by session ID,
		// which crypto/tls cannot do.
		resumeScenario{name: "builtin, tickets off, client without tickets -tls1_2", server: "ssl_session_cache builtin; ssl_session_tickets off;",
			client: []string{"-tls1_2", "-no_ticket"}, resume: true, mailgateResume: new(bool),
			outcomeDiffer: "crypto/tls has no session-ID resumption: a TLS 1.2 client that does not accept tickets gets a full handshake each time",
			detailDiffer:  "crypto/tls sends no session ID, so s_client saves nothing"},
		// ssl_session_timeout: expired after 2s, in the cache and in tickets.
		resumeScenario{name: "timeout, builtin, tickets off -tls1_3", server: "ssl_session_cache builtin; ssl_session_tickets off; ssl_session_timeout 2s;",
			wait: 3 * time.Second, client: []string{"-tls1_3"}, resume: false, detailDiffer: hintDiffer},
		resumeScenario{name: "timeout, tickets on -tls1_2", server: "ssl_session_timeout 2s;",
			wait: 3 * time.Second, client: []string{"-tls1_2"}, resume: false, detailDiffer: hintDiffer},
	)

	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			starttls := slices.Contains(s.client, "-starttls")
			listen := "listen 127.0.0.1:{{port imaps}} ssl;"
			listen2 := "listen 127.0.0.1:{{port imaps2}} ssl;"
			if starttls {
				listen = "listen 127.0.0.1:{{port imaps}}; starttls on;"
				listen2 = "listen 127.0.0.1:{{port imaps2}}; starttls on;"
			}
			conf := harness.Config{Mail: `
    server_name mx.test;
    auth_http 127.0.0.1:9/auth;
    ssl_certificate {{prefix}}cert.pem;
    ssl_certificate_key {{prefix}}key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        ` + listen + `
        protocol imap;
        ` + s.server + `
    }
    server {
        ` + listen2 + `
        protocol imap;
        ` + s.server + `
    }`, Files: files}
			var outcomes, details []string
			for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
				p := harness.Start(t, impl, conf)
				sess := filepath.Join(t.TempDir(), "sess.pem")
				second := p.Addr("imaps")
				if s.second {
					second = p.Addr("imaps2")
				}
				runs := []sessionRun{sessClient(t, p.Addr("imaps"), "", sess, s.client...)}
				time.Sleep(s.wait)
				runs = append(runs, sessClient(t, second, sess, "", s.client...), sessClient(t, second, sess, "", s.client...))
				p.Stop()
				var o, d strings.Builder
				for i, r := range runs {
					res := "not resumed"
					if r.outcome == "Reused" {
						res = "resumed"
					}
					if i > 0 {
						fmt.Fprintf(&o, "connection %d: %s\n", i+1, res)
					} else {
						fmt.Fprintf(&o, "connection 1: %s\n", r.outcome)
					}
					fmt.Fprintf(&d, "connection %d: %s saved=%v hints=%v\n", i+1, r.outcome, r.saved, r.hints)
				}
				want, resume := "not resumed", s.resume
				if impl == harness.Mailgate && s.mailgateResume != nil {
					resume = *s.mailgateResume
				}
				if resume {
					want = "resumed"
				}
				if got := o.String(); !strings.Contains(got, "connection 1: New\n") ||
					!strings.Contains(got, "connection 2: "+want+"\n") || !strings.Contains(got, "connection 3: "+want+"\n") {
					t.Errorf("%s: want the first connection New and the others %s:\n%s%s", impl, want, got, d.String())
				}
				outcomes, details = append(outcomes, o.String()), append(details, d.String())
			}
			if outcomes[0] != outcomes[1] && s.outcomeDiffer != "" {
				t.Logf("declared difference (%s):\nnginx:\n%s\nmailgate:\n%s", s.outcomeDiffer, outcomes[0], outcomes[1])
			} else if outcomes[0] != outcomes[1] {
				t.Errorf("nginx and mailgate resume differently:\nnginx:\n%s\nmailgate:\n%s", outcomes[0], outcomes[1])
			}
			switch {
			case details[0] == details[1]:
				t.Logf("identical:\n%s", details[0])
			case s.detailDiffer != "":
				t.Logf("declared difference (%s):\nnginx:\n%s\nmailgate:\n%s", s.detailDiffer, details[0], details[1])
			default:
				t.Errorf("nginx and mailgate differ:\nnginx:\n%s\nmailgate:\n%s", details[0], details[1])
			}
		})
	}
}
