package soak

import (
	"net"
	"regexp"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

var sendFailedRe = regexp.MustCompile(`send\(\) failed \(\d+: [^)]*\)[^,]*`)

// TestAbandonedLoginLogLikeNginx: a client sends its login and resets the
// connection while auth_http is still answering (2 s). The proxy logs in
// to the upstream, logs "client logged in", and its first write to the
// client fails. nginx 1.22.1 logs that failure with the relay's action:
//
//	send() failed (104: Connection reset by peer) while proxying and sending to client
//
// mailgate logs "send() failed (104: Connection reset by peer)" with no
// action, for POP3, IMAP and SMTP alike. Found by TestSoak's abandonlogin
// sessions (1045 such lines in the long run).
//
// Run: go test -tags soakbugs -run TestAbandonedLoginLogLikeNginx ./compat-tests/soak/
func TestAbandonedLoginLogLikeNginx(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	pf := harness.StartPostfix(t)
	as := harness.StartAuth(t, authserver.Script{
		Users: map[string]authserver.User{
			"alice": {Password: "secret", Upstream: dc.POP3Addr, Behavior: &authserver.Behavior{Delay: 2 * time.Second}},
		},
		NoneUpstream: pf.Addr,
		Handler: func(r *authserver.Request) *authserver.Behavior {
			if r.Get("Auth-Method") == "none" {
				return &authserver.Behavior{Status: "OK", Delay: 2 * time.Second}
			}
			if r.Get("Auth-Protocol") == "imap" {
				host, port, _ := net.SplitHostPort(dc.IMAPAddr)
				return &authserver.Behavior{Status: "OK", Server: host, Port: port, Delay: 2 * time.Second}
			}
			return nil
		},
	})
	conf := harness.Config{Mail: soakMail, Vars: map[string]string{"auth": as.URL()}}
	scripts := map[string]string{
		"pop3": "USER alice\r\nPASS secret\r\n",
		"imap": "a LOGIN alice secret\r\n",
		"smtp": "EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n",
	}
	got := map[harness.Impl]map[string]string{}
	for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
		p := harness.Start(t, impl, conf)
		for _, proto := range allProtos {
			w, err := dialWire(p.Addr(proto), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			w.line()               //nolint:errcheck
			w.send(scripts[proto]) //nolint:errcheck
			time.Sleep(300 * time.Millisecond)
			w.hangUp()
		}
		time.Sleep(4 * time.Second) // auth (2 s), the upstream login, the failed write
		got[impl] = map[string]string{}
		for _, proto := range allProtos {
			for _, l := range grepAll(p.ErrorLog(), p.Addr(proto)) {
				if m := sendFailedRe.FindString(l); m != "" {
					got[impl][proto] = m
				}
			}
		}
	}
	for _, proto := range allProtos {
		ng, mg := got[harness.Nginx][proto], got[harness.Mailgate][proto]
		t.Logf("%s: nginx %q, mailgate %q", proto, ng, mg)
		if ng == "" {
			t.Fatalf("%s: nginx logged no failed send; the scenario did not happen", proto)
		}
		if mg != ng {
			t.Errorf("%s: mailgate logs %q, nginx %q", proto, mg, ng)
		}
	}
}
