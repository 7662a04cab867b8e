// Package upstreamname tests the mailgate-only auth_http_resolve: an
// Auth-Server host name resolved through `resolver` (a loopback miekg/dns
// server, mail/smtp/dnstest) and proxied to real Dovecot, every address
// tried in turn; and, without the directive, nginx 1.22.1's refusal of the
// name with its bytes and log line, even with a resolver configured.
package upstreamname

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
	"mailgate/mail/smtp/dnstest"
)

const pass = "s3cret-pw"

func startDNS(t *testing.T) *dnstest.Server {
	t.Helper()
	d, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestHostNameRefusedLikeNginx: without auth_http_resolve, a host name in
// Auth-Server is nginx's "sent invalid server address" and the client's
// internal error, resolver or not.
func TestHostNameRefusedLikeNginx(t *testing.T) {
	d := startDNS(t)
	d.Set("dovecot.test", dns.TypeA, dnstest.Answer{RRs: []string{"dovecot.test. 60 IN A 127.0.0.1"}})
	dc := harness.StartDovecot(t, map[string]string{"alice": pass})
	_, port, _ := net.SplitHostPort(dc.IMAPAddr)
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: pass, Upstream: dc.IMAPAddr, Behavior: &authserver.Behavior{Server: "dovecot.test", Port: port}},
	}})
	suite := &harness.Suite{
		Name: "upstream host name off",
		Config: harness.Config{Vars: map[string]string{"dns": d.Addr}, Mail: `
    auth_http {{auth}};
    resolver {{dns}};
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
    }`},
		Auth:       as,
		CompareLog: true,
	}
	suite.Run(t, []harness.Scenario{{
		Name: "host name",
		Steps: []harness.Step{
			harness.Lines(1),
			harness.Send("a1 LOGIN alice " + pass + "\r\n"), harness.Closed(),
		},
		Check: func(t testing.TB, tr *harness.Transcript) {
			if !strings.Contains(string(tr.Received), "* BAD internal server error\r\n") ||
				!strings.Contains(tr.Log, `sent invalid server address:"dovecot.test" while in http auth state`) {
				t.Errorf("not refused:\n%s\n%s", tr.Client, tr.Log)
			}
		},
	}})
	if q := d.Queries(); len(q) != 0 {
		t.Errorf("DNS queried: %q", q)
	}
}

// TestHostNameResolved: with auth_http_resolve on the name is looked up
// (A and AAAA), the first address (where nothing listens) is refused and
// logged, the next one is Dovecot, and the client is logged in there.
func TestHostNameResolved(t *testing.T) {
	d := startDNS(t)
	d.Set("dovecot.test", dns.TypeA, dnstest.Answer{RRs: []string{
		"dovecot.test. 60 IN A 127.0.0.3", "dovecot.test. 60 IN A 127.0.0.1"}})
	d.Set("dovecot.test", dns.TypeAAAA, dnstest.Answer{RRs: []string{"dovecot.test. 60 IN AAAA ::1"}})
	dc := harness.StartDovecot(t, map[string]string{"alice": pass})
	_, port, _ := net.SplitHostPort(dc.IMAPAddr)
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: pass, Upstream: dc.IMAPAddr, Behavior: &authserver.Behavior{Server: "dovecot.test", Port: port}},
	}})
	p := harness.StartMailgate(t, harness.Config{Vars: map[string]string{"auth": as.URL(), "dns": d.Addr}, Mail: `
    auth_http {{auth}};
    resolver {{dns}};
    auth_http_resolve on;
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
    }`})
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", p.Addr("imap"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second)) //nolint:errcheck
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		if string(buf[:n]) != "* OK IMAP4 ready\r\n" {
			t.Fatalf("greeting %q", buf[:n])
		}
		c.Write([]byte("a1 LOGIN alice " + pass + "\r\na2 LOGOUT\r\n")) //nolint:errcheck
		var got []byte
		for !strings.Contains(string(got), "a2 OK") {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		c.Close()
		if !strings.Contains(string(got), "a1 OK") {
			t.Fatalf("session %d: %q\n%s", i, got, p.ErrorLog())
		}
	}
	log := p.ErrorLog()
	for _, want := range []string{
		"connect() to 127.0.0.3:" + port + " failed (111: Connection refused) while connecting to upstream",
		`client logged in, client: 127.0.0.1, server: ` + p.Addr("imap") + `, login: "alice", upstream: dovecot.test:` + port,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("error.log lacks %q:\n%s", want, log)
		}
	}
	// The second session's addresses came from the cache (TTL 60).
	if q := d.Queries(); len(q) != 2 {
		t.Errorf("DNS queries %q, want one A and one AAAA", q)
	}
}
