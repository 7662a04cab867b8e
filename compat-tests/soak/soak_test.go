package soak

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// Short in CI; long offline with flags or the environment:
//
//	go test -run Soak ./compat-tests/soak -soak.duration=5m -soak.sessions=400
//	SOAK_DURATION=5m SOAK_SESSIONS=400 go test -run Soak ./compat-tests/soak
var (
	soakDuration = flag.Duration("soak.duration", mustDuration(envOr("SOAK_DURATION", "20s")),
		"how long the mixed load runs ($SOAK_DURATION)")
	soakSessions = flag.Int("soak.sessions", mustInt(envOr("SOAK_SESSIONS", "100")),
		"concurrent client sessions ($SOAK_SESSIONS)")
	soakReload = flag.Duration("soak.reload", mustDuration(envOr("SOAK_RELOAD", "3s")),
		"interval between SIGHUPs during the load ($SOAK_RELOAD)")
	soakSettle = flag.Duration("soak.settle", mustDuration(envOr("SOAK_SETTLE", "0s")),
		"after the load, wait up to this long for every descriptor (Go's pooled splice pipes too) to be back ($SOAK_SETTLE)")
	soakSeed = flag.Uint64("soak.seed", uint64(mustInt(envOr("SOAK_SEED", "0"))),
		"random seed (0: from the clock) ($SOAK_SEED)")
)

func mustDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

func mustInt(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// The session kinds: an upstream fault (through a FaultProxy), an
// auth_http fault, or none. Each kind has the outcomes it may end in.
type kind struct {
	name    string
	weight  int
	fault   Fault // upstream fault (Pass: straight to the real upstream)
	auth    *authserver.Behavior
	allowed []outcome
	// CloseMid: the trigger per protocol (default: the command that
	// fetches or sends the message) and the bytes let through after it.
	trigger map[string]string
	cut     int
}

var (
	okOnly  = []outcome{outOK}
	errOnly = []outcome{outError}
)

func soakKinds() []kind {
	return []kind{
		{name: "ok", weight: 50, fault: Pass, allowed: okOnly},
		{name: "trickle", weight: 8, fault: Trickle, allowed: okOnly},
		// A reply cut part way, or (SMTP) the message cut on its way up.
		{name: "closemid", weight: 8, fault: CloseMid, allowed: []outcome{outTruncated}, cut: 1000},
		// The upstream goes silent at RETR/FETCH/DATA: mailgate's
		// proxy_timeout must end the session.
		{name: "freeze", weight: 2, fault: Freeze, allowed: []outcome{outTruncated}},
		// The upstream hangs up on the proxy's login, before its answer.
		{name: "closelogin", weight: 4, fault: CloseMid, allowed: errOnly,
			trigger: map[string]string{"pop3": "PASS ", "imap": "LOGIN ", "smtp": "XCLIENT "}},
		{name: "refuse", weight: 4, fault: Refuse, allowed: errOnly},
		{name: "reset", weight: 4, fault: Reset, allowed: errOnly},
		{name: "stall", weight: 4, fault: Stall, allowed: errOnly},
		{name: "garbage", weight: 4, fault: Garbage, allowed: errOnly},
		{name: "authclose", weight: 3, auth: &authserver.Behavior{Close: true}, allowed: errOnly},
		{name: "authgarbage", weight: 3, auth: &authserver.Behavior{Garbage: true}, allowed: errOnly},
		{name: "authslow", weight: 3, auth: &authserver.Behavior{Delay: 8 * time.Second}, allowed: errOnly},
		{name: "authfail", weight: 3, auth: &authserver.Behavior{Status: "Invalid login or password", Wait: "1",
			ErrorCode: "535 5.7.8"}, allowed: errOnly},
		{name: "authoversize", weight: 2, auth: &authserver.Behavior{Oversize: true}, allowed: errOnly},
		// The client hangs up: while auth_http is slow, while the upstream
		// stalls, or while the message is relayed. Nothing to check on
		// the client; the sockets must come back all the same.
		{name: "abandonlogin", weight: 2, auth: &authserver.Behavior{Delay: 2 * time.Second, Status: "OK"},
			allowed: []outcome{outAbandoned}},
		{name: "abandonstall", weight: 2, fault: Stall, allowed: []outcome{outAbandoned}},
		{name: "abandonrelay", weight: 2, fault: Pass, allowed: []outcome{outAbandoned}},
		{name: "authnoport", weight: 2, auth: &authserver.Behavior{Status: "OK", NoPort: true}, allowed: errOnly},
	}
}

var protocols = []string{"pop3", "imap", "smtp"}

// soakEnv is everything a soak run talks to.
type soakEnv struct {
	mg     *harness.Proxy
	dc     *harness.Dovecot
	pf     *harness.Postfix
	as     *authserver.Server
	mb     mailbox
	kinds  []kind
	faults map[string]*FaultProxy // "proto/kind"
}

// soakMailConf is the mail{} body of the soak: POP3, IMAP and SMTP
// (smtp_auth none) with the given auth_http_timeout, timeout and
// proxy_timeout.
func soakMailConf(authTimeout, timeout, proxyTimeout string) string {
	return `
    auth_http {{auth}};
    auth_http_timeout ` + authTimeout + `;
    timeout ` + timeout + `;
    proxy_timeout ` + proxyTimeout + `;
    server {
        listen 127.0.0.1:{{port pop3}};
        protocol pop3;
    }
    server {
        listen 127.0.0.1:{{port imap}};
        protocol imap;
    }
    server {
        listen 127.0.0.1:{{port smtp}};
        protocol smtp;
        smtp_auth none;
    }`
}

// soakMail: the timeouts are generous so that a busy machine (other
// tests, -race) does not fail fault-free sessions; stall and authslow
// sessions take that long.
var soakMail = soakMailConf("5s", "10s", "15s")

// startSoakEnv starts Dovecot, Postfix, the fault proxies, the auth
// server and mailgate with the mail{} body mail (soakMail).
func startSoakEnv(t *testing.T, mail string) *soakEnv {
	t.Helper()
	e := &soakEnv{kinds: soakKinds(), faults: map[string]*FaultProxy{}}
	// Dovecot's login services in high-performance mode (one process
	// serves many logins): forking one per connection cannot keep up
	// with hundreds of sessions on a busy machine, and connects to it
	// would time out in its listen backlog.
	e.dc = harness.StartDovecot(t, map[string]string{"alice": "secret"},
		"default_process_limit = 1000", "default_client_limit = 4000",
		"service imap-login {\n  service_count = 0\n  process_min_avail = 2\n  client_limit = 1000\n}",
		"service pop3-login {\n  service_count = 0\n  process_min_avail = 2\n  client_limit = 1000\n}")
	e.mb = makeMailbox(2500, 8000, 40000)
	e.dc.SetMailbox("alice", e.mb.stored...)
	e.pf = harness.StartPostfix(t, "default_process_limit = 500", "in_flow_delay = 0s")
	upstream := map[string]string{"pop3": e.dc.POP3Addr, "imap": e.dc.IMAPAddr, "smtp": e.pf.Addr}
	trigger := map[string]string{"pop3": "RETR ", "imap": "FETCH ", "smtp": "DATA\r\n"}
	for _, proto := range protocols {
		for _, k := range e.kinds {
			if k.auth != nil || k.fault == Pass {
				continue
			}
			trig, cutDown := trigger[proto], proto != "smtp"
			if k.trigger != nil {
				trig, cutDown = k.trigger[proto], true
			}
			p := &FaultProxy{Target: upstream[proto], Fault: k.fault, StallFor: 30 * time.Second,
				Trigger: []byte(trig), CutDown: cutDown, CutAfter: k.cut,
				Chunk: 512, Every: 5 * time.Millisecond}
			if _, err := Listen(p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			e.faults[proto+"/"+k.name] = p
		}
	}
	byName := map[string]kind{}
	for _, k := range e.kinds {
		byName[k.name] = k
	}
	answer := func(proto, name string) *authserver.Behavior {
		k, ok := byName[name]
		if !ok {
			return &authserver.Behavior{Status: "unknown soak kind " + name}
		}
		if k.auth != nil && (k.auth.Status != "OK" || k.auth.NoPort) {
			return k.auth
		}
		addr := upstream[proto]
		if fp := e.faults[proto+"/"+name]; fp != nil {
			addr = fp.Addr()
		}
		host, port, _ := net.SplitHostPort(addr)
		b := &authserver.Behavior{Status: "OK", Server: host, Port: port}
		if k.auth != nil {
			b.Delay = k.auth.Delay
		}
		if proto != "smtp" {
			b.User, b.Pass = "alice", "secret"
		}
		return b
	}
	e.as = harness.StartAuth(t, authserver.Script{
		Handler: func(r *authserver.Request) *authserver.Behavior {
			proto := strings.ToLower(r.Get("Auth-Protocol"))
			if proto == "smtp" {
				return answer(proto, kindOf(authserver.Unescape(r.Get("Auth-SMTP-From"))))
			}
			return answer(proto, kindOf(r.User()))
		},
	})
	// Every session holds a client and an upstream connection: give the
	// load room, as an operator would give nginx.
	// The admin endpoint gives the process's goroutine count
	// (go_goroutines), which cannot be read from outside otherwise.
	e.mg = harness.StartMailgate(t, harness.Config{Main: "admin_listen 127.0.0.1:{{port admin}};", Mail: mail,
		Vars: map[string]string{"auth": e.as.URL()}, WorkerConnections: 8192})
	return e
}

// tally counts outcomes by protocol/kind/outcome and keeps examples of
// unexpected ones.
type tally struct {
	mu      sync.Mutex
	counts  map[string]int
	bad     []string
	total   int
	latency []time.Duration // ok sessions, whole session
}

func (ta *tally) add(proto string, k kind, out outcome, detail string, took time.Duration) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.total++
	allowed := false
	for _, a := range k.allowed {
		allowed = allowed || a == out
	}
	key := proto + "/" + k.name + "/" + string(out)
	if !allowed {
		key += " (UNEXPECTED)"
		if len(ta.bad) < 30 {
			ta.bad = append(ta.bad, fmt.Sprintf("%s %s: %s: %s", proto, k.name, out, detail))
		}
	}
	ta.counts[key]++
	if out == outOK && k.name == "ok" {
		ta.latency = append(ta.latency, took)
	}
}

func (ta *tally) report(t *testing.T) (unexpected int) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	for k, n := range ta.counts {
		if strings.HasSuffix(k, "(UNEXPECTED)") {
			unexpected += n
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d sessions by protocol/kind/outcome:\n%s", ta.total, countTable(ta.counts))
	if len(ta.latency) > 0 {
		p50, p99 := percentiles(ta.latency)
		fmt.Fprintf(&b, "  fault-free session time (incl. dwell): p50 %v p99 %v\n", p50, p99)
	}
	t.Log(b.String())
	return unexpected
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond), s[min(len(s)-1, len(s)*99/100)].Round(time.Millisecond)
}

// sampler follows the proxy's /proc figures.
type sampler struct {
	mu       sync.Mutex
	peak     harness.ProcStats
	series   []harness.ProcStats
	deadErr  error
	stop     chan struct{}
	finished chan struct{}
}

func startSampler(p *harness.Proxy, every time.Duration, also func()) *sampler {
	s := &sampler{stop: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(s.finished)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
			if also != nil {
				also()
			}
			st, err := harness.ReadProcStats(p.Pid())
			s.mu.Lock()
			if err != nil {
				if exited, werr := p.Exited(); exited {
					s.deadErr = fmt.Errorf("mailgate exited during the load: %v", werr)
				}
			} else {
				s.series = append(s.series, st)
				s.peak.FDs = max(s.peak.FDs, st.FDs)
				s.peak.RSSKiB = max(s.peak.RSSKiB, st.RSSKiB)
				s.peak.Threads = max(s.peak.Threads, st.Threads)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// quarters is the figures at 25, 50, 75 and 100% of the samples: with
// a steady load, RSS that keeps climbing through them is worth a look.
func (s *sampler) quarters() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.series) == 0 {
		return "no samples"
	}
	var parts []string
	for q := 1; q <= 4; q++ {
		st := s.series[max(0, len(s.series)*q/4-1)]
		parts = append(parts, fmt.Sprintf("%d%%: RSS %d KiB, fds %d", 25*q, st.RSSKiB, st.FDs))
	}
	return strings.Join(parts, "; ")
}

func (s *sampler) Stop() (harness.ProcStats, error) {
	close(s.stop)
	<-s.finished
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.deadErr
}

// TestSoak runs the mixed POP3/IMAP/SMTP load with faults, reloads
// during it, and a graceful stop (SIGQUIT) with sessions still open at
// the end. See README.md for what it checks.
func TestSoak(t *testing.T) {
	// Registered first, so it runs after every other cleanup: nothing the
	// test started in this process (clients, fault proxies, the harness's
	// servers) may outlive it.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-soak.seed), %d sessions for %v, SIGHUP every %v", seed, *soakSessions, *soakDuration, *soakReload)
	e := startSoakEnv(t, soakMail)
	patience := 30 * time.Second // a read that waits this long is a hang (proxy_timeout is 15s)

	var (
		seq      atomic.Int64
		accMu    sync.Mutex
		accepted = map[string]string{} // SMTP id → stored SHA-256, told 250
	)
	acceptedFn := func(id, sum string) {
		accMu.Lock()
		accepted[id] = sum
		accMu.Unlock()
	}
	ta := &tally{counts: map[string]int{}}
	// run one session of protocol proto and kind k.
	run := func(rng *rand.Rand, proto string, k kind, dwell time.Duration) (outcome, string) {
		n := seq.Add(1)
		idx := rng.IntN(len(e.mb.wire))
		switch proto {
		case "pop3":
			return pop3Session(e.mg.Addr("pop3"), k.name, n, e.mb, idx, dwell, patience)
		case "imap":
			return imapSession(e.mg.Addr("imap"), k.name, n, e.mb, idx, dwell, patience)
		default:
			return smtpSession(e.mg.Addr("smtp"), k.name, n, rng, 2000+rng.IntN(20000), dwell, patience, acceptedFn)
		}
	}

	// Warm up (one fault-free session of each protocol must pass), then
	// take the baseline.
	for _, proto := range protocols {
		if out, detail := run(rand.New(rand.NewPCG(seed, 0)), proto, e.kinds[0], 0); out != outOK {
			t.Fatalf("warm-up %s session: %s %s\n--- error.log:\n%s", proto, out, detail, e.mg.ErrorLog())
		}
	}
	time.Sleep(500 * time.Millisecond)
	base, err := harness.ReadProcStats(e.mg.Pid())
	if err != nil {
		t.Fatal(err)
	}
	baseFDs := countFDs(e.mg.Pid())
	baseG := goroutines(t, e.mg.Addr("admin"))

	totalWeight := 0
	for _, k := range e.kinds {
		totalWeight += k.weight
	}
	pick := func(rng *rand.Rand) kind {
		w := rng.IntN(totalWeight)
		for _, k := range e.kinds {
			if w < k.weight {
				return k
			}
			w -= k.weight
		}
		panic("unreachable")
	}

	// The load.
	smp := startSampler(e.mg, 250*time.Millisecond, func() { e.as.Reset() })
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for i := range *soakSessions {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
			// Spread the starts over the first second.
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			for {
				select {
				case <-stop:
					return
				default:
				}
				proto := protocols[rng.IntN(len(protocols))]
				k := pick(rng)
				dwell := time.Duration(rng.IntN(500)) * time.Millisecond
				t0 := time.Now()
				out, detail := run(rng, proto, k, dwell)
				ta.add(proto, k, out, detail, time.Since(t0))
				time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
			}
		}()
	}
	// Reloads cycle through: the same file, a changed one (proxy_timeout),
	// and a broken one (an unknown directive: mailgate must log it at
	// emerg and keep running on the configuration it has).
	confPath := e.mg.Prefix + "nginx.conf"
	changed := strings.Replace(e.mg.Conf, "proxy_timeout 15s;", "proxy_timeout 16s;", 1)
	broken := strings.Replace(e.mg.Conf, "proxy_timeout 15s;", "proxy_timeout 15s;\n    soak_bogus_directive on;", 1)
	if changed == e.mg.Conf || broken == e.mg.Conf {
		t.Fatal("soak: the config has no proxy_timeout 15s to vary")
	}
	reloads, brokenReloads := 0, 0
	end := time.After(*soakDuration)
	tick := time.NewTicker(*soakReload)
loop:
	for {
		select {
		case <-end:
			break loop
		case <-tick.C:
			conf := [...]string{e.mg.Conf, changed, broken}[reloads%3]
			if conf == broken {
				brokenReloads++
			}
			if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := e.mg.Signal(syscall.SIGHUP); err != nil {
				t.Errorf("SIGHUP: %v", err)
			}
			reloads++
		}
	}
	tick.Stop()
	if err := os.WriteFile(confPath, []byte(e.mg.Conf), 0o644); err != nil {
		t.Fatal(err)
	}
	close(stop)
	workers.Wait()
	peak, dead := smp.Stop()
	if dead != nil {
		t.Fatal(dead)
	}

	// Back near the baseline once the sessions are gone? Sockets must
	// come back at once (every session's client, upstream and auth
	// sockets). mailgate keeps the pipes of its splice relay in a sync.Pool
	// (proxy/pool.go) that only a GC empties (an idle Go process runs one
	// every 2 minutes, and a pooled pipe goes at the second), so pipes are counted apart
	// and only -soak.settle waits for them. RSS is reported, not checked:
	// a Go heap is not handed back to the OS on a schedule a test can
	// rely on.
	var after harness.ProcStats
	var afterFDs fdCount
	var afterG int
	deadline := time.Now().Add(30 * time.Second)
	for {
		after, err = harness.ReadProcStats(e.mg.Pid())
		if err != nil {
			t.Fatalf("mailgate after the load: %v", err)
		}
		afterFDs = countFDs(e.mg.Pid())
		afterG = goroutines(t, e.mg.Addr("admin"))
		if afterFDs.sockets <= baseFDs.sockets && afterG <= baseG+goroutineSlack || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("mailgate goroutines: %d before the load, %d after", baseG, afterG)
	if afterG > baseG+goroutineSlack {
		t.Errorf("mailgate runs %d goroutines 30s after the load, %d before: goroutines leak", afterG, baseG)
	}
	t.Logf("mailgate before the load: %v (%v)\n         peak during:     %v\n         after:           %v (%v)\n         during the load: %s",
		base, baseFDs, peak, after, afterFDs, smp.quarters())
	if afterFDs.sockets > baseFDs.sockets {
		t.Errorf("mailgate holds %d sockets 30s after the load, %d before: sockets leak; its sockets:\n%s",
			afterFDs.sockets, baseFDs.sockets, openSockets(e.mg.Pid(), e.portNames()))
	}
	if *soakSettle > 0 {
		// Descriptors must come back within the settle time (checked);
		// RSS is followed for the whole of it, or until it is within a
		// quarter of the baseline (reported only).
		start := time.Now()
		deadline := start.Add(*soakSettle)
		var (
			back    bool
			fdsBack time.Duration
		)
		for {
			afterFDs = countFDs(e.mg.Pid())
			after, err = harness.ReadProcStats(e.mg.Pid())
			if err != nil {
				t.Fatalf("mailgate while settling: %v", err)
			}
			if !back && afterFDs.total() <= baseFDs.total()+2 {
				back, fdsBack = true, time.Since(start)
			}
			if (back && after.RSSKiB <= base.RSSKiB*5/4) || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		backMsg := "descriptors not back"
		if back {
			backMsg = "descriptors back after " + fdsBack.Round(time.Second).String()
		}
		t.Logf("mailgate after settling %v (of up to %v): %v (%v); %s",
			time.Since(start).Round(time.Second), *soakSettle, after, afterFDs, backMsg)
		if !back {
			t.Errorf("mailgate holds %v after settling for %v, %v before", afterFDs, *soakSettle, baseFDs)
		}
	}
	if unexpected := ta.report(t); unexpected > 0 {
		ta.mu.Lock()
		t.Errorf("%d sessions ended unexpectedly; first ones:\n  %s", unexpected, strings.Join(ta.bad, "\n  "))
		ta.mu.Unlock()
		t.Logf("Dovecot's warnings and errors by message:\n%s", upstreamSummary(e.dc.Log()))
		t.Logf("Postfix's warnings and errors by message:\n%s", upstreamSummary(e.pf.Log()))
	}
	if ta.counts["pop3/ok/ok"] == 0 || ta.counts["imap/ok/ok"] == 0 || ta.counts["smtp/ok/ok"] == 0 {
		t.Errorf("not every protocol completed a session: %v", ta.counts)
	}

	// Reloads: each SIGHUP was taken (signals may coalesce, as in
	// nginx), each broken file refused at emerg, nothing crashed.
	log := e.mg.ErrorLog()
	got := strings.Count(log, "(SIGHUP) received")
	emerg := strings.Count(log, `[emerg]`)
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "[emerg]") && !strings.Contains(l, "soak_bogus_directive") {
			t.Errorf("unexpected emerg: %s", l)
		}
	}
	t.Logf("%d SIGHUPs sent (%d with a broken file), %d logged, %d emerg lines", reloads, brokenReloads, got, emerg)
	if reloads > 0 && got == 0 {
		t.Errorf("%d SIGHUPs sent, none logged", reloads)
	}
	if brokenReloads > 0 && emerg == 0 {
		t.Errorf("%d reloads of a broken file, no emerg logged", brokenReloads)
	}
	if emerg > brokenReloads {
		t.Errorf("%d emerg lines for %d broken reloads", emerg, brokenReloads)
	}
	t.Logf("mailgate's error.log by message:\n%s", logSummary(log))
	for _, bad := range []string{"[alert]", "panic", "DATA RACE"} {
		if strings.Contains(log, bad) {
			t.Errorf("error.log has %q:\n%s", bad, grepLines(log, bad, 10))
		}
	}

	// The graceful stop: sessions open at SIGQUIT finish, then mailgate
	// exits 0.
	quitPhase(t, e, acceptedFn)

	// Every message the client was told was accepted reached Postfix whole.
	accMu.Lock()
	want := make(map[string]string, len(accepted))
	for k, v := range accepted {
		want[k] = v
	}
	accMu.Unlock()
	checkDelivered(t, e.pf, want)
}

// checkDelivered waits for Postfix to deliver every accepted message and
// compares the SHA-256 of each with what the client sent.
func checkDelivered(t *testing.T, pf *harness.Postfix, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute + time.Duration(len(want))*10*time.Millisecond)
	var got map[string]string
	for {
		got = map[string]string{}
		for _, m := range pf.Messages() {
			if id, sum := deliveredSum(m); id != "" {
				got[id] = sum
			}
		}
		missing := 0
		for id := range want {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	var missing, differ []string
	for id, sum := range want {
		switch g, ok := got[id]; {
		case !ok:
			missing = append(missing, id)
		case g != sum:
			differ = append(differ, id)
		}
	}
	t.Logf("SMTP: %d messages told 250, %d delivered by Postfix (%d missing, %d with another SHA-256)",
		len(want), len(got), len(missing), len(differ))
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%d accepted messages never reached Postfix, e.g. %v", len(missing), missing[:min(10, len(missing))])
	}
	if len(differ) > 0 {
		t.Errorf("%d messages arrived changed, e.g. %v", len(differ), differ[:min(10, len(differ))])
	}
	if len(want) == 0 {
		t.Error("no SMTP message was accepted")
	}
}

// goroutineSlack is how many goroutines more than before the load are
// not a leak: the admin endpoint's own connection, timers of the runtime.
const goroutineSlack = 5

// goroutines reads go_goroutines from mailgate's admin endpoint.
func goroutines(t *testing.T, admin string) int {
	t.Helper()
	// No keep-alive: an idle admin connection would count as one of
	// mailgate's sockets.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("admin endpoint: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go_goroutines ([0-9]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no go_goroutines in /metrics:\n%s", b)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
