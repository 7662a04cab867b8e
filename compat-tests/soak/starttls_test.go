package soak

import (
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TestStartTLSIdleCloseLikeNginx: a client that sends STARTTLS (POP3
// STLS, IMAP and SMTP STARTTLS),
// gets the OK and then never starts the handshake. nginx 1.22.1 closes
// it about 2×timeout after the greeting, mailgate at 1×timeout. From
// nginx's source (src/mail/ngx_mail_handler.c): the session's `timeout`
// timer fires on the read handler STARTTLS installed,
// ngx_mail_starttls_handler, which does not look at rev->timedout and
// calls ngx_mail_ssl_init_connection; ngx_ssl_handshake returns
// NGX_AGAIN, and as the timer is no longer set it adds a fresh
// `timeout`; when that one fires ngx_ssl_handshake_handler calls
// ngx_mail_ssl_handshake_handler, which closes the unhandshaked
// connection (no "client timed out" line). Found by TestHostile (its
// starttls-idle row: nginx 10.0s, mailgate 5.0s with timeout 5s).
//
// Run: go test -tags soakbugs -run TestStartTLSIdleCloseLikeNginx ./compat-tests/soak/
func TestStartTLSIdleCloseLikeNginx(t *testing.T) {
	as := harness.StartAuth(t, authserver.Script{})
	conf := hostileConfig(as)
	var a attack
	for _, x := range attacks() {
		if x.name == "starttls-idle" {
			a = x
		}
	}
	procs := map[harness.Impl]*harness.Proxy{
		harness.Nginx:    harness.StartNginx(t, conf),
		harness.Mailgate: harness.StartMailgate(t, conf),
	}
	type key struct {
		impl  harness.Impl
		proto string
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		got = map[key]attackResult{}
	)
	for _, proto := range allProtos {
		for impl, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := runAttack(p.Addr(proto), proto, a)
				mu.Lock()
				got[key{impl, proto}] = res
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for _, proto := range allProtos {
		for impl := range procs {
			if res := got[key{impl, proto}]; res.err != "" || !res.closed {
				t.Fatalf("%s %s: %+v", impl, proto, res)
			}
		}
		ng := got[key{harness.Nginx, proto}].after.Round(time.Millisecond)
		mg := got[key{harness.Mailgate, proto}].after.Round(time.Millisecond)
		t.Logf("%s: closed after the greeting: nginx %v, mailgate %v (timeout %v)", proto, ng, mg, hostileTimeout)
		if d := mg - ng; d < -time.Second || d > time.Second {
			t.Errorf("%s: mailgate closes an idle connection after %q %v after the greeting, nginx %v",
				proto, strings.TrimSpace(starttls[proto]), mg, ng)
		}
	}
}

// TestTLSHandshakeTimeoutLogLikeNginx: when a TLS handshake (on a
// `listen … ssl` port, or after STARTTLS) times out, nginx 1.22.1 closes
// the connection without a log line (ngx_ssl_handshake_handler hands the
// timed-out event to ngx_mail_ssl_handshake_handler, which closes an
// unhandshaked connection silently). mailgate logs "client timed out
// (110: Connection timed out) while SSL handshaking" or "... while in
// starttls state" at info. Found by TestHostile's error.log summaries.
func TestTLSHandshakeTimeoutLogLikeNginx(t *testing.T) {
	as := harness.StartAuth(t, authserver.Script{})
	conf := hostileConfig(as)
	byName := map[string]attack{}
	for _, x := range attacks() {
		byName[x.name] = x
	}
	var wg sync.WaitGroup
	logs := map[harness.Impl]string{}
	for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
		p := harness.Start(t, impl, conf)
		for _, c := range []struct{ attack, port string }{{"tls-idle", "pop3s"}, {"starttls-idle", "imap"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runAttack(p.Addr(c.port), c.port, byName[c.attack])
			}()
		}
		wg.Wait()
		time.Sleep(200 * time.Millisecond)
		logs[impl] = p.ErrorLog()
	}
	count := func(log string) int { return strings.Count(log, "client timed out") }
	t.Logf(`"client timed out" lines: nginx %d, mailgate %d`, count(logs[harness.Nginx]), count(logs[harness.Mailgate]))
	if count(logs[harness.Nginx]) != count(logs[harness.Mailgate]) {
		t.Errorf("mailgate's error.log:\n%s\nnginx's:\n%s", logs[harness.Mailgate], logs[harness.Nginx])
	}
}
