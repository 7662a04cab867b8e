package soak

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

var (
	attackConns = flag.Int("soak.attackconns", mustInt(envOr("SOAK_ATTACK_CONNS", "3")),
		"connections per attack and protocol, on each proxy ($SOAK_ATTACK_CONNS)")
	attackPerKind = flag.Bool("soak.perkind", envOr("SOAK_PER_KIND", "") != "",
		"one round per attack, so RSS per connection is per attack ($SOAK_PER_KIND=1)")
)

// hostileTimeout is the config's timeout; an attack connection must be
// closed within it plus hostileSlack after the greeting.
const (
	hostileTimeout = 5 * time.Second
	hostileSlack   = 3 * time.Second
	attackMax      = hostileTimeout + 10*time.Second // give up on an attack
)

const hostileMail = `
    auth_http {{auth}};
    timeout 5s;
    ssl_certificate {{prefix}}cert.pem;
    ssl_certificate_key {{prefix}}key.pem;
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;
        starttls on;
    }
    server {
        listen 127.0.0.1:{{port pop3s}} ssl;
        protocol pop3;
    }
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
        starttls on;
    }
    server {
        listen 127.0.0.1:{{port smtp}};
        protocol smtp;
        starttls on;
    }`

// hostileConfig is hostileMail with as for auth_http and a throw-away
// certificate.
func hostileConfig(as *authserver.Server) harness.Config {
	cert, key := harness.SelfSigned("mail.soak.test")
	return harness.Config{Mail: hostileMail, Vars: map[string]string{"auth": as.URL()},
		Files: map[string]string{"cert.pem": cert, "key.pem": key}}
}

// attack is what a hostile client does after the greeting. write is
// called repeatedly until it returns false or the connection ends; read
// says whether the client reads what the server sends.
type attack struct {
	name   string
	protos []string
	read   bool
	write  func(w io.Writer, proto string, i int) (more bool, err error)
	// tls: the port speaks TLS at once (no greeting to wait for): the
	// close time counts from the connect.
	tls bool
}

// valid is a command each protocol accepts before login, any number of
// times, so a flood of it is never ended by max_errors.
var valid = map[string]string{"pop3": "CAPA\r\n", "imap": "a CAPABILITY\r\n", "smtp": "NOOP\r\n"}

var allProtos = []string{"pop3", "imap", "smtp"}

// starttls is each protocol's command to start TLS.
var starttls = map[string]string{"pop3": "STLS\r\n", "imap": "a STARTTLS\r\n", "smtp": "STARTTLS\r\n"}

func attacks() []attack {
	flood := func(w io.Writer, proto string, _ int) (bool, error) {
		_, err := io.WriteString(w, strings.Repeat(valid[proto], 100))
		time.Sleep(10 * time.Millisecond)
		return true, err
	}
	return []attack{
		{name: "idle", protos: allProtos, read: true,
			write: func(io.Writer, string, int) (bool, error) { return false, nil }},
		{name: "slowloris", protos: allProtos, read: true,
			write: func(w io.Writer, _ string, i int) (bool, error) {
				if i > 0 {
					time.Sleep(2 * time.Second)
				}
				_, err := w.Write([]byte{"USER aaaaaaaaaaaaaaaaaaaa"[i%25]})
				return true, err
			}},
		{name: "garbage", protos: allProtos, read: true,
			write: func(w io.Writer, _ string, i int) (bool, error) {
				b := make([]byte, 64)
				for j := range b {
					b[j] = byte(rand.IntN(256))
				}
				_, err := w.Write(b)
				time.Sleep(100 * time.Millisecond)
				return true, err
			}},
		{name: "overlong", protos: allProtos, read: true,
			write: func(w io.Writer, _ string, i int) (bool, error) {
				_, err := w.Write(bytes.Repeat([]byte("A"), 8192))
				time.Sleep(50 * time.Millisecond)
				return i < 64, err
			}},
		{name: "literal", protos: []string{"imap"}, read: true,
			write: func(w io.Writer, _ string, i int) (bool, error) {
				if i == 0 {
					_, err := io.WriteString(w, "a1 LOGIN {4294967295}\r\n")
					return true, err
				}
				_, err := io.WriteString(w, "xxxxxxxxxxxxxxxx")
				time.Sleep(200 * time.Millisecond)
				return true, err
			}},
		{name: "tls-idle", protos: []string{"pop3s"}, read: true, tls: true,
			write: func(io.Writer, string, int) (bool, error) { return false, nil }},
		{name: "tls-slowhello", protos: []string{"pop3s"}, read: true, tls: true,
			write: func(w io.Writer, _ string, i int) (bool, error) {
				// A TLS record header announcing a 512-byte ClientHello,
				// then one byte a second.
				hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
				if i > 0 {
					time.Sleep(time.Second)
				}
				_, err := w.Write([]byte{hello[min(i, len(hello)-1)]})
				return true, err
			}},
		{name: "starttls-idle", protos: allProtos, read: true,
			write: func(w io.Writer, proto string, i int) (bool, error) {
				_, err := io.WriteString(w, starttls[proto])
				return false, err
			}},
		{name: "flood", protos: allProtos, read: true, write: flood},
		{name: "flood-noread", protos: allProtos, read: false, write: flood},
	}
}

// attackResult is one attack connection.
type attackResult struct {
	attack, proto string
	closed        bool          // the server closed it
	after         time.Duration // from the greeting to the close
	err           string        // no greeting
}

// runAttack connects, reads the greeting and attacks until the server
// closes the connection or attackMax passes.
func runAttack(addr, proto string, a attack) attackResult {
	res := attackResult{attack: a.name, proto: proto}
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		res.err = err.Error()
		return res
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if !a.tls {
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		if _, err := r.ReadString('\n'); err != nil {
			res.err = "greeting: " + err.Error()
			return res
		}
	}
	t0 := time.Now()
	end := t0.Add(attackMax)
	c.SetDeadline(end) //nolint:errcheck
	closed := make(chan time.Time, 2)
	var wg sync.WaitGroup
	if a.read {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := io.Copy(io.Discard, r)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return
			}
			closed <- time.Now() // EOF or reset
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			more, err := a.write(c, proto, i)
			if err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					closed <- time.Now() // reset or broken pipe
				}
				return
			}
			if !more || time.Now().After(end) {
				return
			}
		}
	}()
	select {
	case at := <-closed:
		res.closed, res.after = true, at.Sub(t0)
	case <-time.After(time.Until(end)):
	}
	c.Close()
	wg.Wait()
	return res
}

// control logs in through the proxy's POP3 port at once and then every
// interval until stop, and records each login's latency (connect to +OK
// after PASS).
type control struct {
	mu       sync.Mutex
	lat      []time.Duration
	failures []string
	done     chan struct{}
}

func startControl(addr string, interval time.Duration, stop <-chan struct{}) *control {
	ct := &control{done: make(chan struct{})}
	go func() {
		defer close(ct.done)
		// The first login starts at once, so even a round that ends
		// within the interval has one.
		for first := true; ; first = false {
			if !first {
				select {
				case <-stop:
					return
				case <-time.After(interval):
				}
			}
			t0 := time.Now()
			err := controlLogin(addr)
			ct.mu.Lock()
			if err != nil {
				ct.failures = append(ct.failures, err.Error())
			} else {
				ct.lat = append(ct.lat, time.Since(t0))
			}
			ct.mu.Unlock()
		}
	}()
	return ct
}

func controlLogin(addr string) error {
	w, err := dialWire(addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer w.Close()
	for _, step := range []struct{ send, want string }{{"", "+OK"}, {"USER alice\r\n", "+OK"}, {"PASS secret\r\n", "+OK"}} {
		if step.send != "" {
			w.send(step.send) //nolint:errcheck
		}
		if l, err := w.line(); err != nil || !strings.HasPrefix(l, step.want) {
			return fmt.Errorf("control login at %q: %q %v", step.send, l, err)
		}
	}
	w.send("QUIT\r\n") //nolint:errcheck
	return nil
}

// roundResult is what runRound saw on one proxy.
type roundResult struct {
	results           []attackResult
	rssBefore, peak   int
	conns             int
	ctlLat            []time.Duration
	ctlFailures       []string
	alive             bool
	exitErr           error
	sockets, sockets0 int
}

// runRound runs attacks (each on its protocols, n connections each)
// against proxy p while a control client logs in, and measures p's RSS
// growth and its sockets before and after.
func runRound(p *harness.Proxy, as []attack, n int) roundResult {
	var rr roundResult
	st, _ := harness.ReadProcStats(p.Pid())
	rr.rssBefore, rr.peak = st.RSSKiB, st.RSSKiB
	rr.sockets0 = countFDs(p.Pid()).sockets
	stop := make(chan struct{})
	ct := startControl(p.Addr("pop3"), 200*time.Millisecond, stop)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range as {
		for _, proto := range a.protos {
			for range n {
				rr.conns++
				wg.Add(1)
				go func() {
					defer wg.Done()
					res := runAttack(p.Addr(proto), proto, a)
					mu.Lock()
					rr.results = append(rr.results, res)
					mu.Unlock()
				}()
			}
		}
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tk := time.NewTicker(100 * time.Millisecond)
sample:
	for {
		select {
		case <-finished:
			break sample
		case <-tk.C:
			if st, err := harness.ReadProcStats(p.Pid()); err == nil {
				rr.peak = max(rr.peak, st.RSSKiB)
			}
		}
	}
	tk.Stop()
	close(stop)
	<-ct.done
	rr.ctlLat, rr.ctlFailures = ct.lat, ct.failures
	exited, err := p.Exited()
	rr.alive, rr.exitErr = !exited, err
	// The proxy's own sockets once every attack connection is gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rr.sockets = countFDs(p.Pid()).sockets
		if rr.sockets <= rr.sockets0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return rr
}

// TestHostile runs the pre-auth attacks against nginx and mailgate at
// the same time, with the same config (timeout 5s), while a control
// client keeps logging in to each. It asserts behaviour only: mailgate
// closes every attack connection within the timeout (+ slack) after the
// greeting, stays up, and the control client always logs in. Close
// times, RSS per attack connection and control login latency of both
// are logged side by side.
func TestHostile(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.POP3Addr},
	}})
	conf := hostileConfig(as)
	impls := []harness.Impl{harness.Nginx, harness.Mailgate}
	// Each round gets a fresh nginx and mailgate, so its RSS growth is
	// not hidden by memory an earlier round left in the process.
	start := func() map[harness.Impl]*harness.Proxy {
		procs := map[harness.Impl]*harness.Proxy{
			harness.Nginx:    harness.StartNginx(t, conf),
			harness.Mailgate: harness.StartMailgate(t, conf),
		}
		// Warm both up (and check the control login works before attacks).
		for _, impl := range impls {
			if err := controlLogin(procs[impl].Addr("pop3")); err != nil {
				t.Fatalf("%s: %v", impl, err)
			}
		}
		return procs
	}
	logs := map[harness.Impl]*strings.Builder{harness.Nginx: {}, harness.Mailgate: {}}

	var rounds [][]attack
	if *attackPerKind {
		for _, a := range attacks() {
			rounds = append(rounds, []attack{a})
		}
	} else {
		rounds = [][]attack{attacks()}
	}
	type key struct {
		impl          harness.Impl
		attack, proto string
	}
	closes := map[key][]attackResult{}
	rssPer := map[harness.Impl]map[string]float64{harness.Nginx: {}, harness.Mailgate: {}}
	ctl := map[harness.Impl][]time.Duration{}
	for _, round := range rounds {
		procs := start()
		name := "all attacks at once"
		if len(round) == 1 {
			name = round[0].name
		}
		var wg sync.WaitGroup
		rrs := map[harness.Impl]roundResult{}
		var mu sync.Mutex
		for _, impl := range impls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rr := runRound(procs[impl], round, *attackConns)
				mu.Lock()
				rrs[impl] = rr
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, impl := range impls {
			rr := rrs[impl]
			for _, res := range rr.results {
				k := key{impl, res.attack, res.proto}
				closes[k] = append(closes[k], res)
			}
			rssPer[impl][name] = float64(rr.peak-rr.rssBefore) / float64(rr.conns)
			ctl[impl] = append(ctl[impl], rr.ctlLat...)
			if impl != harness.Mailgate {
				continue
			}
			if !rr.alive {
				t.Fatalf("mailgate died during %s: %v\n--- stderr:\n%s", name, rr.exitErr, procs[impl].Stderr())
			}
			if len(rr.ctlFailures) > 0 {
				t.Errorf("during %s the control client failed %d of %d logins to mailgate, e.g. %s",
					name, len(rr.ctlFailures), len(rr.ctlFailures)+len(rr.ctlLat), rr.ctlFailures[0])
			}
			if len(rr.ctlLat) == 0 {
				t.Errorf("during %s the control client never logged in to mailgate", name)
			}
			if rr.sockets > rr.sockets0 {
				t.Errorf("after %s mailgate holds %d sockets, %d before", name, rr.sockets, rr.sockets0)
			}
		}
		if rr := rrs[harness.Nginx]; len(rr.ctlFailures) > 0 {
			t.Logf("during %s the control client failed %d logins to nginx, e.g. %s", name, len(rr.ctlFailures), rr.ctlFailures[0])
		}
		mg := procs[harness.Mailgate]
		if exited, err := mg.Exited(); exited {
			t.Fatalf("mailgate exited after %s: %v", name, err)
		}
		if err := controlLogin(mg.Addr("pop3")); err != nil {
			t.Errorf("after %s: %v", name, err)
		}
		log := mg.ErrorLog()
		for _, bad := range []string{"[alert]", "[emerg]", "panic"} {
			if strings.Contains(log, bad) {
				t.Errorf("mailgate's error.log after %s has %q:\n%s", name, bad, grepLines(log, bad, 10))
			}
		}
		for _, impl := range impls {
			procs[impl].Stop()
			logs[impl].WriteString(procs[impl].ErrorLog())
		}
	}

	// The table, and the behaviour check on mailgate.
	var b strings.Builder
	fmt.Fprintf(&b, "attack connections, timeout %v, %d per attack and protocol; close time after the greeting (min/median/max)\n",
		hostileTimeout, *attackConns)
	fmt.Fprintf(&b, "%-13s %-5s %-28s %-28s\n", "attack", "proto", "nginx", "mailgate")
	for _, a := range attacks() {
		for _, proto := range a.protos {
			fmt.Fprintf(&b, "%-13s %-5s", a.name, proto)
			for _, impl := range impls {
				fmt.Fprintf(&b, " %-28s", closeSummary(closes[key{impl, a.name, proto}]))
			}
			b.WriteString("\n")
			// The bound is the timeout, or nginx's own latest close where
			// nginx takes longer (an IMAP STARTTLS never followed by a
			// handshake: nginx starts the handshake when the first timer
			// fires and gives it a second timeout), plus the slack.
			bound := hostileTimeout
			for _, res := range closes[key{harness.Nginx, a.name, proto}] {
				if res.closed {
					bound = max(bound, res.after)
				}
			}
			bound += hostileSlack
			for _, res := range closes[key{harness.Mailgate, a.name, proto}] {
				switch {
				case res.err != "":
					t.Errorf("mailgate, %s on %s: %s", a.name, proto, res.err)
				case !res.closed:
					t.Errorf("mailgate kept a %s connection on %s open for %v after the greeting (timeout %v)",
						a.name, proto, attackMax, hostileTimeout)
				case res.after > bound:
					t.Errorf("mailgate closed a %s connection on %s %v after the greeting (timeout %v, bound %v)",
						a.name, proto, res.after.Round(time.Millisecond), hostileTimeout, bound)
				}
			}
		}
	}
	fmt.Fprintf(&b, "RSS growth per attack connection (KiB), peak during the round over the RSS before it:\n")
	names := make([]string, 0, len(rssPer[harness.Mailgate]))
	for n := range rssPer[harness.Mailgate] {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-22s nginx %8.1f   mailgate %8.1f\n", n, rssPer[harness.Nginx][n], rssPer[harness.Mailgate][n])
	}
	for _, impl := range impls {
		if len(ctl[impl]) > 0 {
			p50, p99 := percentiles(ctl[impl])
			fmt.Fprintf(&b, "control POP3 login under attack, %-8s %4d logins: p50 %v p99 %v\n", impl, len(ctl[impl]), p50, p99)
		}
	}
	for _, impl := range impls {
		fmt.Fprintf(&b, "%s error.log by message:\n%s", impl, logSummary(logs[impl].String()))
	}
	t.Log(b.String())
}

func closeSummary(rs []attackResult) string {
	var ds []time.Duration
	open, failed := 0, 0
	for _, r := range rs {
		switch {
		case r.err != "":
			failed++
		case !r.closed:
			open++
		default:
			ds = append(ds, r.after)
		}
	}
	s := "-"
	if len(ds) > 0 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		r := func(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
		s = r(ds[0]) + "/" + r(ds[len(ds)/2]) + "/" + r(ds[len(ds)-1])
	}
	if open > 0 {
		s += fmt.Sprintf(" %d open", open)
	}
	if failed > 0 {
		s += fmt.Sprintf(" %d no-greeting", failed)
	}
	return s
}
