package imap_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	mrand "math/rand"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/harness"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// serverConf is a one-server IMAP config with extra server directives.
func serverConf(extra string) *harness.Config {
	return &harness.Config{Mail: `
    server_name mx.example.test;
    auth_http {{auth}};
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
` + extra + `
    }`}
}

// tlsConf is serverConf with a self-signed certificate for STARTTLS.
func tlsConf(extra string) *harness.Config {
	c := serverConf(`        ssl_certificate {{prefix}}cert.pem;
        ssl_certificate_key {{prefix}}key.pem;
` + extra)
	cert, key := harness.SelfSigned("mx.example.test")
	c.Files = map[string]string{"cert.pem": cert, "key.pem": key}
	return c
}

// fakeUpstream is a scripted IMAP server for upstream failures nginx must
// handle: it sends greeting, answers each "{n}" literal announcement with
// "+ OK" (unless noCont), and after the LOGIN's last line sends
// final(tag), then holds the connection until the proxy closes it.
type fakeUpstream struct {
	ln       net.Listener
	greeting string
	final    func(tag string) string
	noCont   string // sent instead of "+ OK" to the first literal
	closeNow bool   // close after reading the first line
}

var literalEnd = regexp.MustCompile(`\{\d+\}\r\n$`)

func startFake(t *testing.T, f *fakeUpstream) string {
	t.Helper()
	ln, err := listenInRange()
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return ln.Addr().String()
}

// listenInRange listens on a free loopback port of this suite's range
// (25500-25999; the harness allocates the proxies' and Dovecot's ports).
func listenInRange() (net.Listener, error) {
	var last error
	start := mrand.Intn(500)
	for i := 0; i < 500; i++ {
		port := 25500 + (start+i)%500
		ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return ln, nil
		}
		last = err
	}
	return nil, last
}

func (f *fakeUpstream) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte(f.greeting))
	if f.closeNow {
		// Read the LOGIN line first so that the proxy sees an orderly
		// close, not a reset, whatever the timing.
		c.Read(make([]byte, 4096))
		return
	}
	var buf []byte
	tag := ""
	lits := 0
	sent := false
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		if err != nil {
			return
		}
		buf = append(buf, b[:n]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			line := string(buf[:i+1])
			buf = buf[i+1:]
			if tag == "" {
				tag, _, _ = strings.Cut(line, " ")
			}
			if literalEnd.MatchString(line) {
				lits++
				if lits == 1 && f.noCont != "" {
					c.Write([]byte(f.noCont))
					continue
				}
				c.Write([]byte("+ OK\r\n"))
				continue
			}
			if lits >= 2 && !sent && f.final != nil {
				c.Write([]byte(f.final(tag + " ")))
				sent = true
			}
		}
	}
}
