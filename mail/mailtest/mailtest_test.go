package mailtest_test

import (
	"strings"
	"testing"
	"time"

	"mailgate/mail"
	"mailgate/mail/imap"
	"mailgate/mail/mailtest"
)

// The harness itself: an IMAP login through the real engine, the real
// auth_http client and the real upstream login, over both pair kinds.
func TestLoginThroughEveryRealPiece(t *testing.T) {
	for _, kind := range []string{mailtest.TCP, mailtest.Unix} {
		t.Run(kind, func(t *testing.T) {
			as := mailtest.StartAuthServer(t)
			up := &mailtest.Upstream{Replies: []string{"* OK up\r\n", "+ go\r\n", "+ go\r\n", "a1 OK done\r\n"}, Tail: "* 1 EXISTS\r\n"}
			cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; proxy_timeout 100ms; }")
			env := mailtest.Start(t, cfg, mailtest.Options{
				Protocols:    map[string]mail.Protocol{"imap": imap.Protocol{}},
				DialUpstream: up.Dial,
			})
			as.Script(nil, []byte(authOK143))
			c := env.Dial(t, kind, 0)
			if l := c.ReadLine(5 * time.Second); l != "* OK IMAP4 ready\r\n" {
				t.Fatalf("greeting %q", l)
			}
			c.Send("a1 LOGIN alice secret\r\n")
			got := c.ReadAll(5 * time.Second)
			if got != "a1 OK done\r\n* 1 EXISTS\r\n" {
				t.Fatalf("client got %q", got)
			}
			<-c.Done()
			up.Wait()
			if r := up.Received(0); r != "a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n" {
				t.Errorf("upstream got %q", r)
			}
			reqs := as.Requests()
			if len(reqs) != 1 || !strings.Contains(string(reqs[0]), "Auth-User: alice\r\nAuth-Pass: secret\r\nAuth-Protocol: imap\r\n") {
				t.Errorf("auth requests %q", reqs)
			}
			if miss := env.Log.Wait(time.Second, `client logged in, client: `, `proxied session done`); miss != "" {
				t.Errorf("log lacks %q:\n%s", miss, env.Log)
			}
		})
	}
}
