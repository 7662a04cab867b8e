package imap_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TLS sessions need a real TLS client, which the scenario runner does not
// have: these tests drive STARTTLS and implicit TLS by hand against each
// implementation and compare the dialogues.

type tlsStep struct {
	send  string // "" for none; "<starttls>" upgrades the connection
	lines int    // lines to read after sending
	until string // or: read until this regexp matches a line
}

// tlsDialogue runs steps and returns the transcript ("C: ..."/"S: ...").
func tlsDialogue(t *testing.T, addr string, implicit bool, steps []tlsStep) string {
	t.Helper()
	var c net.Conn
	var err error
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"}
	if implicit {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	} else {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	var b strings.Builder
	r := bufio.NewReader(c)
	readLine := func() bool {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := r.ReadString('\n')
		if l != "" {
			fmt.Fprintf(&b, "S: %q\n", l)
		}
		if err != nil {
			fmt.Fprintf(&b, "[%v]\n", errText(err))
			return false
		}
		return true
	}
	for _, st := range steps {
		switch {
		case st.send == "<starttls>":
			tc := tls.Client(c, cfg)
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				fmt.Fprintf(&b, "[handshake: %v]\n", err)
				return b.String()
			}
			b.WriteString("[tls]\n")
			c = tc
			r = bufio.NewReader(c)
		case st.send != "":
			fmt.Fprintf(&b, "C: %q\n", st.send)
			c.Write([]byte(st.send))
		}
		for i := 0; i < st.lines; i++ {
			if !readLine() {
				return b.String()
			}
		}
		if st.until != "" {
			re := regexp.MustCompile(st.until)
			for {
				before := b.Len()
				if !readLine() {
					return b.String()
				}
				if re.MatchString(b.String()[before:]) {
					break
				}
			}
		}
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if l, err := r.ReadString('\n'); l != "" || (err != nil && !isTimeout(err)) {
		fmt.Fprintf(&b, "[unread] S: %q [%v]\n", l, errText(err))
	}
	return b.String()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func errText(err error) string {
	if isTimeout(err) {
		return "timeout"
	}
	if strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
		return "closed"
	}
	return err.Error()
}

var dovecotVolatile = regexp.MustCompile(`\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)`)

func TestIMAPTLSCompat(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"}, "auth_failure_delay = 0")
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.IMAPAddr},
	}})
	cases := []struct {
		name     string
		conf     *harness.Config
		implicit bool
		steps    []tlsStep
		want     []string // substrings of the transcript (absolute facts)
	}{
		{name: "starttls then login", conf: tlsConf("        starttls on;"), steps: []tlsStep{
			{lines: 1},
			{send: "a STARTTLS\r\n", lines: 1},
			{send: "<starttls>"},
			{send: "b CAPABILITY\r\n", lines: 2},
			{send: "c STARTTLS\r\n", lines: 1},
			{send: "d LOGIN alice secret\r\n", until: `^S: "d `},
			{send: "e LOGOUT\r\n", until: `^S: "e `},
		}, want: []string{`S: "a OK completed\r\n"`, `S: "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n"`,
			`S: "c BAD invalid command\r\n"`, `S: "d OK`}},
		{name: "starttls only then authenticate", conf: tlsConf("        starttls only;"), steps: []tlsStep{
			{lines: 1},
			{send: "a STARTTLS\r\n", lines: 1},
			{send: "<starttls>"},
			{send: "b CAPABILITY\r\n", lines: 2},
			{send: "c AUTHENTICATE PLAIN " + b64("\x00alice\x00secret") + "\r\n", until: `^S: "c `},
			{send: "d LOGOUT\r\n", until: `^S: "d `},
		}, want: []string{`S: "c OK`}},
		{name: "plain text pipelined after starttls is dropped", conf: tlsConf("        starttls on;"), steps: []tlsStep{
			{lines: 1},
			{send: "a STARTTLS\r\nb NOOP\r\n", lines: 1},
			{send: "<starttls>"},
			{send: "c NOOP\r\n", lines: 1},
		}, want: []string{`S: "c OK completed\r\n"`}},
		{name: "implicit tls", implicit: true, conf: &harness.Config{Mail: `
    server_name mx.example.test;
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port imap}} ssl;
        protocol imap;
        starttls on;
        ssl_certificate {{prefix}}cert.pem;
        ssl_certificate_key {{prefix}}key.pem;
    }`, Files: tlsConf("").Files}, steps: []tlsStep{
			{lines: 1},
			{send: "a CAPABILITY\r\n", lines: 2},
			{send: "b STARTTLS\r\n", lines: 1},
			{send: "c LOGIN alice secret\r\n", until: `^S: "c `},
			{send: "d LOGOUT\r\n", until: `^S: "d `},
		}, want: []string{`S: "* OK IMAP4 ready\r\n"`, `S: "b BAD invalid command\r\n"`, `S: "c OK`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ref string
			var refImpl harness.Impl
			for _, impl := range clientImpls() {
				conf := *tc.conf
				conf.Vars = map[string]string{"auth": auth.URL()}
				p := harness.Start(t, impl, conf)
				got := dovecotVolatile.ReplaceAllString(tlsDialogue(t, p.Addr("imap"), tc.implicit, tc.steps), "(TIME)")
				for _, w := range tc.want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: transcript lacks %s:\n%s", impl, w, got)
					}
				}
				if ref == "" {
					ref, refImpl = got, impl
					continue
				}
				if got != ref {
					t.Errorf("%s and %s differ:\n--- %s\n%s--- %s\n%s", refImpl, impl, refImpl, ref, impl, got)
				}
			}
		})
	}
}
