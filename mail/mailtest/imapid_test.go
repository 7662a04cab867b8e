package mailtest_test

// IMAP ID (RFC 2971, mailgate-only imap_id, imap_id_fields,
// imap_forward_id) through the real engine, auth_http client and upstream
// login: nginx's refusal when off, the answer and CAPABILITY when on, the
// client's fields in Auth-IMAP-ID, and the ID sent upstream before the
// login.

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/mail/errlog"
	"mailgate/mail/mailtest"
)

type idCase struct {
	name, conf string
	auth       []string
	up         []string
	steps      []exch
	startTLS   bool // a TLS handshake after steps, then after
	after      []exch
	closed     bool
	authHas    []string // in the first auth_http request
	authLacks  []string
	upGot      string // regexp, anchored, of what the upstream received
}

func runID(t *testing.T, tc idCase) {
	t.Helper()
	as := mailtest.StartAuthServer(t)
	up := &mailtest.Upstream{Replies: tc.up}
	cert, key := writeCert(t)
	tc.conf = strings.ReplaceAll(tc.conf, "{{tls}}", "ssl_certificate "+cert+"; ssl_certificate_key "+key+";")
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; "+tc.conf+" }")
	env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: up.Dial, LogLevel: errlog.Debug})
	var auths [][]byte
	for _, a := range tc.auth {
		auths = append(auths, []byte(a))
	}
	as.Script(nil, auths...)
	c := env.Dial(t, mailtest.TCP, 0)
	if g := c.ReadN(len(oauthGreeting["imap"]), 5*time.Second); g != oauthGreeting["imap"] {
		t.Fatalf("greeting %q", g)
	}
	for i, st := range tc.steps {
		if err := c.Send(st.send); err != nil {
			t.Fatalf("step %d: send: %v", i, err)
		}
		if got := c.ReadN(len(st.want), 5*time.Second); got != st.want {
			t.Fatalf("step %d: sent %.80q, got %.300q, want %.300q\nlog:\n%s", i, st.send, got, st.want, env.Log)
		}
	}
	if tc.startTLS {
		if err := c.StartTLS(); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
	}
	for i, st := range tc.after {
		if err := c.Send(st.send); err != nil {
			t.Fatalf("after TLS, step %d: send: %v", i, err)
		}
		if got := c.ReadN(len(st.want), 5*time.Second); got != st.want {
			t.Fatalf("after TLS, step %d: sent %.80q, got %.300q, want %.300q\nlog:\n%s", i, st.send, got, st.want, env.Log)
		}
	}
	if msg := c.End(tc.closed); msg != "" {
		t.Errorf("end: %s\nlog:\n%s", msg, env.Log)
	}
	up.Wait()
	if tc.up != nil {
		got := up.Received(0)
		if !regexp.MustCompile(`\A` + tc.upGot + `\z`).MatchString(got) {
			t.Errorf("upstream got %q, want /%s/", got, tc.upGot)
		}
	} else if up.Dials() != 0 {
		t.Errorf("upstream dialled %d times", up.Dials())
	}
	reqs := as.Requests()
	for _, h := range tc.authHas {
		if len(reqs) == 0 || !strings.Contains(string(reqs[0]), h) {
			t.Errorf("auth request lacks %q: %q", h, reqs)
		}
	}
	for _, h := range tc.authLacks {
		if len(reqs) > 0 && strings.Contains(string(reqs[0]), h) {
			t.Errorf("auth request has %q: %q", h, reqs)
		}
	}
	if strings.Contains(env.Log.String(), "secret") {
		t.Errorf("the log holds the password:\n%s", env.Log)
	}
}

const (
	idAuthOK = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"
	tbID     = `a1 ID ("name" "Thunderbird" "version" "115.3")` + "\r\n"
	upLogin  = `a2 LOGIN \{5\}\r\nalice \{6\}\r\nsecret\r\n`
	// what the upstream's ID gets after the client's fields: our
	// addresses on the TCP pair.
	idAddrs = `"x-originating-ip" "127\.0\.0\.1" "x-originating-port" "[0-9]+" "x-connected-ip" "127\.0\.0\.1" "x-connected-port" "[0-9]+"`
)

func TestIMAPID(t *testing.T) {
	login := exch{"a2 LOGIN alice secret\r\n", "a2 OK done\r\n"}
	upOK := []string{"* OK up\r\n", "+ go\r\n", "+ go\r\n", "a2 OK done\r\n"}
	upID := []string{"* OK up\r\n", "* ID (\"name\" \"Dovecot\")\r\nmgid1 OK ID completed.\r\n", "+ go\r\n", "+ go\r\n", "a2 OK done\r\n"}
	cases := []idCase{
		{name: "off: nginx's invalid command", conf: "",
			steps: []exch{{tbID, "a1 BAD invalid command\r\n"},
				{"a3 CAPABILITY\r\n", "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na3 OK completed\r\n"}}},
		{name: "off: imap_id_fields alone changes nothing", conf: `imap_id_fields "name" "mailgate";`,
			steps: []exch{{"a1 ID NIL\r\n", "a1 BAD invalid command\r\n"}}},
		{name: "on: capability", conf: "imap_id on;",
			steps: []exch{{"a1 CAPABILITY\r\n", "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS ID AUTH=PLAIN\r\na1 OK completed\r\n"}}},
		{name: "on: ID listed once", conf: "imap_id on; imap_capabilities IMAP4rev1 ID;",
			steps: []exch{{"a1 CAPABILITY\r\n", "* CAPABILITY IMAP4rev1 ID AUTH=PLAIN\r\na1 OK completed\r\n"}}},
		{name: "on: starttls only capability", conf: "imap_id on; starttls only; {{tls}}",
			steps: []exch{{"a1 CAPABILITY\r\n", "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS ID STARTTLS LOGINDISABLED\r\na1 OK completed\r\n"}}},
		{name: "on: NIL answer", conf: "imap_id on;",
			steps: []exch{{tbID, "* ID NIL\r\na1 OK ID completed\r\n"}, {"a3 NOOP\r\n", "a3 OK completed\r\n"}}},
		{name: "on: configured fields", conf: `imap_id on; imap_id_fields "name" "mailgate" "support-url" "mailto:postmaster@example.org" "q" "a\"b";`,
			steps: []exch{{"a1 id nil\r\n", `* ID ("name" "mailgate" "support-url" "mailto:postmaster@example.org" "q" "a\"b")` + "\r\na1 OK ID completed\r\n"}}},
		{name: "on: empty list", conf: "imap_id on;",
			steps: []exch{{"a1 ID ()\r\n", "* ID NIL\r\na1 OK ID completed\r\n"}}},
		{name: "on: literals", conf: "imap_id on;",
			steps: []exch{{"a1 ID ({4}\r\n", "+ OK\r\n"}, {"name {3+}\r\nx\ny \"v\" NIL)\r\n", "* ID NIL\r\na1 OK ID completed\r\n"}, login},
			auth:  []string{idAuthOK}, up: upOK, upGot: upLogin, closed: true,
			authHas: []string{"Auth-IMAP-ID: \"name\" \"x y\" \"v\" NIL\r\n"}},
		{name: "on: bad syntax", conf: "imap_id on; max_errors 20;",
			steps: []exch{
				{"a1 ID (name \"x\")\r\n", "a1 BAD invalid command\r\n"},
				{"a1 ID (\"name\"  \"x\")\r\n", "a1 BAD invalid command\r\n"},
				{"a1 ID (\"name\" \"x\") \r\n", "a1 BAD invalid command\r\n"},
				{"a1 ID (\"name\")\r\n", "a1 BAD invalid command\r\n"},
				{"a1 ID\r\n", "a1 BAD invalid command\r\n"},
				{"a1 ID (NIL \"x\")\r\n", "a1 BAD invalid command\r\n"},
				{"a1 ID (\"" + strings.Repeat("f", 31) + "\" \"x\")\r\n", "a1 BAD invalid command\r\n"},
			}},
		{name: "on: too many pairs closes after max_errors", conf: "imap_id on; max_errors 1; imap_client_buffer 8k;",
			steps:  []exch{{"a1 ID (" + strings.TrimSpace(strings.Repeat(`"f" "v" `, 31)) + ")\r\n", "a1 BAD invalid command\r\n"}},
			closed: true},
		{name: "on: 30 pairs", conf: "imap_id on; imap_client_buffer 8k;",
			steps: []exch{{"a1 ID (" + strings.TrimSpace(strings.Repeat(`"f" "v" `, 30)) + ")\r\n", "* ID NIL\r\na1 OK ID completed\r\n"}}},
		{name: "on: fields to auth_http", conf: "imap_id on;",
			steps: []exch{{tbID, "* ID NIL\r\na1 OK ID completed\r\n"}, login},
			auth:  []string{idAuthOK}, up: upOK, upGot: upLogin, closed: true,
			authHas: []string{"Client-IP: 127.0.0.1\r\nAuth-IMAP-ID: \"name\" \"Thunderbird\" \"version\" \"115.3\"\r\n"}},
		{name: "on: no ID, no header", conf: "imap_id on;",
			steps: []exch{login}, auth: []string{idAuthOK}, up: upOK, upGot: upLogin, closed: true,
			authLacks: []string{"Auth-IMAP-ID"}},
		{name: "on: ID NIL header", conf: "imap_id on;",
			steps: []exch{{"a1 ID NIL\r\n", "* ID NIL\r\na1 OK ID completed\r\n"}, login},
			auth:  []string{idAuthOK}, up: upOK, upGot: upLogin, closed: true,
			authHas: []string{"Auth-IMAP-ID: NIL\r\n"}},
		{name: "on: long values are cut in the header", conf: "imap_id on;",
			steps: []exch{{`a1 ID ("name" "` + strings.Repeat("v", 1024) + `")` + "\r\n", "* ID NIL\r\na1 OK ID completed\r\n"}, login},
			auth:  []string{idAuthOK}, up: upOK, upGot: upLogin, closed: true,
			authHas: []string{"Auth-IMAP-ID: \"name\" \"" + strings.Repeat("v", 256) + "\"\r\n"}},
		{name: "STARTTLS forgets an ID sent in plain text", conf: "imap_id on; starttls on; {{tls}}",
			steps:    []exch{{tbID, "* ID NIL\r\na1 OK ID completed\r\n"}, {"a3 STARTTLS\r\n", "a3 OK completed\r\n"}},
			startTLS: true, after: []exch{login},
			auth: []string{idAuthOK}, up: upOK, upGot: upLogin, closed: true,
			authLacks: []string{"Auth-IMAP-ID"}},
		{name: "forward: client fields and addresses before the login", conf: "imap_id on; imap_forward_id on;",
			steps: []exch{{tbID, "* ID NIL\r\na1 OK ID completed\r\n"}, login},
			auth:  []string{idAuthOK}, up: upID, closed: true,
			upGot: `mgid1 ID \("name" "Thunderbird" "version" "115\.3" ` + idAddrs + `\)\r\n` + upLogin},
		{name: "forward: the client's own x-originating-ip is dropped", conf: "imap_id on; imap_forward_id on;",
			steps: []exch{{`a1 ID ("X-Originating-IP" "6.6.6.6" "x-connected-port" "1" "name" "evil")` + "\r\n", "* ID NIL\r\na1 OK ID completed\r\n"}, login},
			auth:  []string{idAuthOK}, up: upID, closed: true,
			upGot: `mgid1 ID \("name" "evil" ` + idAddrs + `\)\r\n` + upLogin},
		{name: "forward: without a client ID", conf: "imap_forward_id on;",
			steps: []exch{login}, auth: []string{idAuthOK}, up: upID, closed: true,
			authLacks: []string{"Auth-IMAP-ID"},
			upGot:     `mgid1 ID \(` + idAddrs + `\)\r\n` + upLogin},
		{name: "forward: NO to ID does not stop the login", conf: "imap_id on; imap_forward_id on;",
			steps: []exch{login}, auth: []string{idAuthOK}, closed: true,
			up:    []string{"* OK up\r\n", "mgid1 BAD unknown command\r\n", "+ go\r\n", "+ go\r\n", "a2 OK done\r\n"},
			upGot: `mgid1 ID \(` + idAddrs + `\)\r\n` + upLogin},
		{name: "forward: client tag mgid1", conf: "imap_forward_id on;",
			steps: []exch{{"mgid1 LOGIN alice secret\r\n", "mgid1 OK done\r\n"}}, auth: []string{idAuthOK}, closed: true,
			up:    []string{"* OK up\r\n", "mgid2 NO no\r\n", "+ go\r\n", "+ go\r\n", "mgid1 OK done\r\n"},
			upGot: `mgid2 ID \(` + idAddrs + `\)\r\nmgid1 LOGIN \{5\}\r\nalice \{6\}\r\nsecret\r\n`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runID(t, tc) })
	}
}
