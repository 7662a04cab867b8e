package main

// Login rate: N concurrent clients, each login = connect, read the
// greeting, log in (the proxy asks auth_http, then logs in to the
// upstream), one command, QUIT, close.

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type loginResult struct {
	ok, failed int64
	rate       float64 // successful logins per second
	p50, p99   time.Duration
	firstErr   string
	elapsed    time.Duration
	lat        []time.Duration // successful logins, sorted
	cpu        time.Duration   // the proxy's CPU time over the run
}

// merge adds the logins of two runs (the two halves of an ABBA pair).
func (r loginResult) merge(o loginResult) loginResult {
	m := loginResult{ok: r.ok + o.ok, failed: r.failed + o.failed, firstErr: r.firstErr, elapsed: r.elapsed + o.elapsed, cpu: r.cpu + o.cpu}
	if m.firstErr == "" {
		m.firstErr = o.firstErr
	}
	m.lat = append(append([]time.Duration(nil), r.lat...), o.lat...)
	m.finish()
	return m
}

func (r *loginResult) finish() {
	if r.elapsed > 0 {
		r.rate = float64(r.ok) / r.elapsed.Seconds()
	}
	if len(r.lat) > 0 {
		slices.Sort(r.lat)
		r.p50 = r.lat[len(r.lat)*50/100]
		r.p99 = r.lat[min(len(r.lat)-1, len(r.lat)*99/100)]
	}
}

var smtpAuthPlain = base64.StdEncoding.EncodeToString([]byte("\x00bench\x00secret"))

// client is one connection's line reader and writer.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func (cl *client) send(s string) error {
	_, err := io.WriteString(cl.c, s)
	return err
}

// expect reads one line and checks its prefix.
func (cl *client) expect(prefix string) error {
	line, err := cl.r.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("expected %q: %w", prefix, err)
	}
	if !strings.HasPrefix(string(line), prefix) {
		return fmt.Errorf("expected %q, got %q", prefix, strings.TrimSpace(string(line)))
	}
	return nil
}

// expectSMTP reads a (multi-line) SMTP reply and checks its code.
func (cl *client) expectSMTP(code string) error {
	for {
		line, err := cl.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("expected %s: %w", code, err)
		}
		if !strings.HasPrefix(string(line), code) {
			return fmt.Errorf("expected %s, got %q", code, strings.TrimSpace(string(line)))
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}

// expectTagged reads lines up to the one that starts with tag.
func (cl *client) expectTagged(tag string) error {
	for {
		line, err := cl.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("expected %s OK: %w", tag, err)
		}
		s := string(line)
		if strings.HasPrefix(s, tag+" ") {
			if !strings.HasPrefix(s, tag+" OK") {
				return fmt.Errorf("expected %s OK, got %q", tag, strings.TrimSpace(s))
			}
			return nil
		}
		if !strings.HasPrefix(s, "* ") {
			return fmt.Errorf("expected %s OK, got %q", tag, strings.TrimSpace(s))
		}
	}
}

// loginSession logs in on a connected client and stops there: the
// session is relayed from then on.
func loginSession(cl *client, proto string) error {
	switch proto {
	case "pop3":
		if err := cl.expect("+OK"); err != nil {
			return err
		}
		if err := cl.send("USER bench\r\n"); err != nil {
			return err
		}
		if err := cl.expect("+OK"); err != nil {
			return err
		}
		if err := cl.send("PASS secret\r\n"); err != nil {
			return err
		}
		return cl.expect("+OK")
	case "imap":
		if err := cl.expect("* OK"); err != nil {
			return err
		}
		if err := cl.send("a LOGIN bench secret\r\n"); err != nil {
			return err
		}
		return cl.expectTagged("a")
	case "smtp":
		if err := cl.expectSMTP("220"); err != nil {
			return err
		}
		if err := cl.send("EHLO bench.example\r\n"); err != nil {
			return err
		}
		if err := cl.expectSMTP("250"); err != nil {
			return err
		}
		if err := cl.send("AUTH PLAIN " + smtpAuthPlain + "\r\n"); err != nil {
			return err
		}
		return cl.expectSMTP("235")
	}
	return errors.New("unknown protocol " + proto)
}

// commandAndQuit sends the one command and QUIT after a login. The
// replies checked are the synthetic upstream's own words (serve.go), so a
// proxy that answered by itself would fail here.
func commandAndQuit(cl *client, proto string) error {
	switch proto {
	case "pop3":
		if err := cl.send("STAT\r\n"); err != nil {
			return err
		}
		if err := cl.expect("+OK 0 0"); err != nil {
			return err
		}
		if err := cl.send("QUIT\r\n"); err != nil {
			return err
		}
		return cl.expect("+OK")
	case "imap":
		if err := cl.send("b NOOP\r\n"); err != nil {
			return err
		}
		if err := cl.expect("b OK NOOP completed"); err != nil {
			return err
		}
		if err := cl.send("c LOGOUT\r\n"); err != nil {
			return err
		}
		return cl.expectTagged("c")
	case "smtp":
		if err := cl.send("NOOP\r\n"); err != nil {
			return err
		}
		if err := cl.expectSMTP("250 2.0.0 ok"); err != nil {
			return err
		}
		if err := cl.send("QUIT\r\n"); err != nil {
			return err
		}
		return cl.expectSMTP("221")
	}
	return nil
}

// oneLogin is a whole login; tlsConf non-nil wraps the connection in TLS.
func oneLogin(cl *client, address, proto string, tlsConf *tls.Config) error {
	c, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if tlsConf != nil {
		tc := tls.Client(c, tlsConf)
		if err := tc.Handshake(); err != nil {
			return err
		}
		c = tc
	}
	cl.c = c
	cl.r.Reset(c)
	if err := loginSession(cl, proto); err != nil {
		return err
	}
	return commandAndQuit(cl, proto)
}

// cpuPerLogin is the proxy's CPU time per successful login, in ms.
func (r loginResult) cpuPerLogin() float64 {
	return ms(r.cpu) / float64(max(r.ok, 1))
}

// runLogins runs `clients` loops of oneLogin for d (or, with count > 0,
// until count logins are done) and returns the figures.
func runLogins(address, proto string, clients int, d time.Duration, count int64, tlsConf *tls.Config) loginResult {
	var (
		ok, failed atomic.Int64
		started    atomic.Int64
		mu         sync.Mutex
		lat        []time.Duration
		firstErr   string
		wg         sync.WaitGroup
	)
	t0 := time.Now()
	deadline := t0.Add(d)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{r: bufio.NewReaderSize(nil, 4096)}
			mine := make([]time.Duration, 0, 1024)
			for {
				if count > 0 {
					if started.Add(1) > count {
						break
					}
				} else if time.Now().After(deadline) {
					break
				}
				s := time.Now()
				err := oneLogin(cl, address, proto, tlsConf)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
					continue
				}
				ok.Add(1)
				mine = append(mine, time.Since(s))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := loginResult{ok: ok.Load(), failed: failed.Load(), firstErr: firstErr, elapsed: time.Since(t0), lat: lat}
	r.finish()
	return r
}
