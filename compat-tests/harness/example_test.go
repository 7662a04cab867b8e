package harness_test

import (
	"strings"
	"testing"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TestExamplePOP3 is the worked example of compat-tests/README.md: a
// POP3 suite through the proxy to a real Dovecot, with the auth_http test
// server, compared between implementations.
// Impls is left empty: nginx is the reference, mailgate is compared with
// it ($HARNESS_IMPLS=nginx runs nginx alone).
func TestExamplePOP3(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	up, rec := harness.Record(t, dc.POP3Addr)
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: up},
	}})
	suite := &harness.Suite{
		Name: "example pop3",
		Config: harness.Config{Mail: `
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;
    }`},
		Auth:       auth,
		Upstreams:  map[string]*harness.Recorder{"dovecot": rec},
		Reset:      func(t testing.TB) { dc.SetMailbox("alice", "Subject: hi\n\nhello\n") },
		CompareLog: true,
	}
	suite.Run(t, []harness.Scenario{{
		Name: "capa",
		Steps: []harness.Step{
			harness.Lines(1),
			harness.Send("CAPA\r\n"),
			harness.Until(`(?m)^\.\r\n`),
			harness.Send("QUIT\r\n"),
			harness.Closed(),
		},
		Check: func(t testing.TB, tr *harness.Transcript) {
			if !strings.HasPrefix(string(tr.Received), "+OK ") || !strings.Contains(tr.Client, "S: USER\\r\\n") {
				t.Errorf("unexpected CAPA dialogue:\n%s", tr.Client)
			}
			if !tr.Closed || len(tr.Auth) != 0 {
				t.Errorf("closed=%v auth requests=%d", tr.Closed, len(tr.Auth))
			}
		},
	}, {
		Name: "login and retr",
		Steps: []harness.Step{
			harness.Lines(1),
			harness.Send("USER alice\r\n"),
			harness.Lines(1),
			harness.Send("PASS secret\r\n"),
			harness.Lines(1),
			harness.Send("RETR 1\r\n"),
			harness.Until(`(?m)^\.\r\n`),
			harness.Send("QUIT\r\n"),
			harness.Closed(),
		},
		Check: func(t testing.TB, tr *harness.Transcript) {
			if !strings.Contains(tr.Client, "S: hello\\r\\n") {
				t.Errorf("message not relayed:\n%s", tr.Client)
			}
			if len(tr.Auth) != 1 || !strings.Contains(string(tr.Auth[0]), "Auth-User: alice\r\n") {
				t.Errorf("auth requests: %q", tr.Auth)
			}
			conns := tr.Upstream["dovecot"]
			if len(conns) != 1 || !strings.HasPrefix(string(conns[0].Sent()), "USER alice\r\nPASS secret\r\n") {
				t.Errorf("upstream saw: %+v", conns)
			}
			if !strings.Contains(tr.Log, "client logged in") {
				t.Errorf("error.log lacks the login line:\n%s", tr.Log)
			}
		},
	}})
}
