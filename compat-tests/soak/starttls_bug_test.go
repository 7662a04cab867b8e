//go:build soakbugs

package soak

import (
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TestStartTLSIdleCloseLikeNginx: a client that sends IMAP STARTTLS,
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
	got := map[harness.Impl]time.Duration{}
	for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
		p := harness.Start(t, impl, conf)
		res := runAttack(p.Addr("imap"), "imap", a)
		if res.err != "" || !res.closed {
			t.Fatalf("%s: %+v", impl, res)
		}
		got[impl] = res.after
	}
	t.Logf("closed after the greeting: nginx %v, mailgate %v (timeout %v)",
		got[harness.Nginx].Round(time.Millisecond), got[harness.Mailgate].Round(time.Millisecond), hostileTimeout)
	if d := got[harness.Mailgate] - got[harness.Nginx]; d < -time.Second || d > time.Second {
		t.Errorf("mailgate closes an idle connection after STARTTLS %v after the greeting, nginx %v",
			got[harness.Mailgate].Round(time.Millisecond), got[harness.Nginx].Round(time.Millisecond))
	}
}
