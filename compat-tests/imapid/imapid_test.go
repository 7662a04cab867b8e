// Package imapid tests the mailgate-only IMAP ID directives (imap_id,
// imap_id_fields, imap_forward_id; docs/imap.md "ID") against real
// Dovecot, and that with imap_id off (the default) ID gets nginx 1.22.1's
// bytes. nginx refuses the directives, so the ID-on tests run mailgate
// only.
package imapid

import (
	"bufio"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

const pass = "s3cret-pw"

// TestIDOffLikeNginx: without the directives ID is an unknown command to
// both, wherever it comes, and the login after it goes through.
func TestIDOffLikeNginx(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": pass}, "auth_failure_delay = 0")
	up, rec := harness.Record(t, dc.IMAPAddr)
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: pass, Upstream: up},
	}})
	suite := &harness.Suite{
		Name: "imapid off",
		Config: harness.Config{Mail: `
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
        imap_capabilities IMAP4rev1 ID;
    }`},
		Auth:       as,
		Upstreams:  map[string]*harness.Recorder{"dovecot": rec},
		CompareLog: true,
	}
	suite.Run(t, []harness.Scenario{{
		Name: "ID before login",
		Steps: []harness.Step{
			harness.Lines(1),
			harness.Send("a1 CAPABILITY\r\n"), harness.Lines(2),
			harness.Send(`a2 ID ("name" "Thunderbird" "version" "115.3")` + "\r\n"), harness.Lines(1),
			harness.Send("a3 ID NIL\r\n"), harness.Lines(1),
			harness.Send("a4 id ({4}\r\nname NIL)\r\n"), harness.Quiet(300 * time.Millisecond),
			harness.Send("a5 LOGIN alice " + pass + "\r\n"), harness.Until(`(?m)^a5 `),
			harness.Send("a6 ID NIL\r\n"), harness.Until(`(?m)^a6 `),
			harness.Send("a7 LOGOUT\r\n"), harness.Closed(),
		},
		Check: func(t testing.TB, tr *harness.Transcript) {
			for _, want := range []string{
				"\r\na2 BAD invalid command\r\n", "\r\na3 BAD invalid command\r\n", "\r\na5 OK",
				// after login ID is Dovecot's
				"\r\n* ID (\"name\" \"Dovecot\")\r\na6 OK",
			} {
				if !strings.Contains(string(tr.Received), want) {
					t.Errorf("the client did not get %q:\n%s", want, tr.Client)
				}
			}
		},
	}, {
		Name: "ID fills max_errors",
		Steps: []harness.Step{
			harness.Lines(1),
			harness.Send(strings.Repeat("a ID NIL\r\n", 6)), harness.Closed(),
		},
	}})
}

// dovecotWithID is a Dovecot that trusts 127.0.0.0/8 to forward the
// client's address in ID and logs every ID field.
func dovecotWithID(t *testing.T) *harness.Dovecot {
	return harness.StartDovecot(t, map[string]string{"alice": pass},
		"auth_failure_delay = 0", "login_trusted_networks = 127.0.0.0/8", "imap_id_log = *")
}

type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr, proxyHeader string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	if proxyHeader != "" {
		if _, err := c.Write([]byte(proxyHeader)); err != nil {
			t.Fatal(err)
		}
	}
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// cmd sends line and reads up to the line that starts with tag.
func (c *client) cmd(tag, line string) string {
	c.t.Helper()
	if line != "" {
		if _, err := c.c.Write([]byte(line)); err != nil {
			c.t.Fatal(err)
		}
	}
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			c.t.Fatalf("reading the reply to %q: %v (got %q)", line, err, b.String())
		}
		if strings.HasPrefix(l, tag) {
			return b.String()
		}
	}
}

// waitLog waits for re in Dovecot's log.
func waitLog(t *testing.T, dc *harness.Dovecot, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := dc.Log()
		if m := rx.FindString(log); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot.log lacks /%s/:\n%s", re, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIDForwardedToDovecot: the client's ID is answered with
// imap_id_fields, reaches auth_http in Auth-IMAP-ID, and Dovecot gets it
// with the client's real address (from the PROXY header) and logs both,
// taking x-originating-ip as the client's address.
func TestIDForwardedToDovecot(t *testing.T) {
	dc := dovecotWithID(t)
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: pass, Upstream: dc.IMAPAddr},
	}})
	p := harness.StartMailgate(t, harness.Config{Vars: map[string]string{"auth": as.URL()}, Mail: `
    auth_http {{auth}};
    imap_id on;
    imap_id_fields "name" "mailgate" "support-url" "mailto:postmaster@example.test";
    imap_forward_id on;
    server {
        listen 127.0.0.1:{{port imap}} proxy_protocol;
        set_real_ip_from 127.0.0.1;
        protocol imap;
    }`})
	_, lport, _ := net.SplitHostPort(p.Addr("imap"))
	c := dial(t, p.Addr("imap"), "PROXY TCP4 192.0.2.7 127.0.0.1 40001 "+lport+"\r\n")
	if g := c.cmd("* OK", ""); g != "* OK IMAP4 ready\r\n" {
		t.Fatalf("greeting %q", g)
	}
	if got := c.cmd("a1 ", "a1 CAPABILITY\r\n"); got != "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS ID AUTH=PLAIN\r\na1 OK completed\r\n" {
		t.Errorf("capability: %q", got)
	}
	got := c.cmd("a2 ", `a2 ID ("name" "Thunderbird" "version" "115.3" "x-originating-ip" "6.6.6.6")`+"\r\n")
	if want := `* ID ("name" "mailgate" "support-url" "mailto:postmaster@example.test")` + "\r\na2 OK ID completed\r\n"; got != want {
		t.Errorf("ID: %q, want %q", got, want)
	}
	if got := c.cmd("a3 ", "a3 LOGIN alice "+pass+"\r\n"); !strings.HasPrefix(got, "a3 OK") && !strings.Contains(got, "\r\na3 OK") {
		t.Fatalf("login: %q\nmailgate:\n%s\ndovecot:\n%s", got, p.ErrorLog(), dc.Log())
	}
	c.cmd("a4 ", "a4 LOGOUT\r\n")

	reqs := as.Parsed()
	if len(reqs) != 1 {
		t.Fatalf("%d auth requests", len(reqs))
	}
	if h := reqs[0].Get("Auth-IMAP-ID"); h != `"name" "Thunderbird" "version" "115.3" "x-originating-ip" "6.6.6.6"` {
		t.Errorf("Auth-IMAP-ID %q", h)
	}
	if ip := reqs[0].Get("Client-IP"); ip != "192.0.2.7" {
		t.Errorf("Client-IP %q", ip)
	}
	// Dovecot logs the fields it got (the client's own x-originating-ip
	// never reaches it) and takes the forwarded address as rip.
	idLine := waitLog(t, dc, `ID sent: [^\n]*`)
	t.Logf("dovecot: %s", idLine)
	for _, want := range []string{"ID sent: name=Thunderbird, version=115.3, x-originating-ip=192.0.2.7, x-originating-port=40001, " +
		"x-connected-ip=127.0.0.1, x-connected-port=" + lport + ":", "rip=192.0.2.7"} {
		if !strings.Contains(idLine, want) {
			t.Errorf("dovecot's ID line lacks %q: %s", want, idLine)
		}
	}
	if strings.Contains(dc.Log(), "6.6.6.6") {
		t.Errorf("the client's own x-originating-ip reached Dovecot:\n%s", dc.Log())
	}
	waitLog(t, dc, `Login: user=<alice>, method=PLAIN, rip=192\.0\.2\.7, lip=127\.0\.0\.1`)
}

// TestForwardIDWithoutClientID: with imap_forward_id alone, a client that
// sends no ID (and could not: imap_id is off) still reaches Dovecot with
// its address.
func TestForwardIDWithoutClientID(t *testing.T) {
	dc := dovecotWithID(t)
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: pass, Upstream: dc.IMAPAddr},
	}})
	p := harness.StartMailgate(t, harness.Config{Vars: map[string]string{"auth": as.URL()}, Mail: `
    auth_http {{auth}};
    imap_forward_id on;
    server {
        listen 127.0.0.1:{{port imap}} proxy_protocol;
        set_real_ip_from 127.0.0.1;
        protocol imap;
    }`})
	c := dial(t, p.Addr("imap"), "PROXY TCP4 198.51.100.9 127.0.0.1 40002 143\r\n")
	c.cmd("* OK", "")
	if got := c.cmd("a1 ", "a1 ID NIL\r\n"); got != "a1 BAD invalid command\r\n" {
		t.Errorf("ID with imap_id off: %q", got)
	}
	if got := c.cmd("a2 ", "a2 LOGIN alice "+pass+"\r\n"); !strings.Contains(got, "a2 OK") {
		t.Fatalf("login: %q\n%s", got, dc.Log())
	}
	c.cmd("a3 ", "a3 LOGOUT\r\n")
	if r := as.Parsed(); len(r) != 1 || r[0].Has("Auth-IMAP-ID") {
		t.Errorf("auth requests: %+v", r)
	}
	waitLog(t, dc, `Login: user=<alice>, method=PLAIN, rip=198\.51\.100\.9`)
}
