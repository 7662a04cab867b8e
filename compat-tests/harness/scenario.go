package harness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
)

// Step is one client action of a scenario.
type Step struct {
	kind  stepKind
	data  []byte
	n     int
	re    *regexp.Regexp
	d     time.Duration
	label string
}

type stepKind int

const (
	stepSend stepKind = iota
	stepLines
	stepUntil
	stepClosed
	stepQuiet
	stepSleep
	stepCloseWrite
	stepClose
)

// Send writes s to the proxy as it is (write "\r\n" yourself).
func Send(s string) Step { return Step{kind: stepSend, data: []byte(s), label: "Send"} }

// Lines reads until n more LF-terminated lines have arrived.
func Lines(n int) Step { return Step{kind: stepLines, n: n, label: fmt.Sprintf("Lines(%d)", n)} }

// Until reads until the bytes received in this step match the regexp
// (use (?m) for ^ and $ at line boundaries, e.g. `(?m)^\.\r\n`).
func Until(re string) Step {
	return Step{kind: stepUntil, re: regexp.MustCompile(re), label: fmt.Sprintf("Until(%q)", re)}
}

// Closed reads until the proxy closes the connection.
func Closed() Step { return Step{kind: stepClosed, label: "Closed()"} }

// Quiet reads until nothing has arrived for d.
func Quiet(d time.Duration) Step {
	return Step{kind: stepQuiet, d: d, label: fmt.Sprintf("Quiet(%v)", d)}
}

// Sleep waits d without reading.
func Sleep(d time.Duration) Step {
	return Step{kind: stepSleep, d: d, label: fmt.Sprintf("Sleep(%v)", d)}
}

// CloseWrite half-closes the client connection (the proxy reads EOF).
func CloseWrite() Step { return Step{kind: stepCloseWrite, label: "CloseWrite()"} }

// Close closes the client connection; later steps are not run.
func Close() Step { return Step{kind: stepClose, label: "Close()"} }

// Scenario is one client session run against each implementation.
type Scenario struct {
	Name string
	// Listen is the {{port NAME}} to connect to; empty: the config's only
	// port.
	Listen string
	// Client6 dials the proxy at [::1] instead of 127.0.0.1 (the config
	// must listen there).
	Client6 bool
	Steps   []Step
	// Config replaces Suite.Config for this scenario.
	Config *Config
	// Differ declares an expected difference and why (newer nginx
	// behaviour, a deliberate improvement). A differing run is then
	// reported, not failed.
	Differ string
	// Check, if set, runs on every implementation's transcript to assert
	// absolute facts (both may be equally wrong).
	Check func(t testing.TB, tr *Transcript)
	// Normalize adds normalisers for this scenario.
	Normalize []Normalizer
}

// Suite is the shared environment of a package's scenarios.
type Suite struct {
	// Name labels the summary line ("pop3 compat: ...").
	Name string
	// Config is the proxy configuration; Suite.Run adds {{auth}}, the auth
	// server's URL.
	Config Config
	// Auth is the auth_http server both implementations ask; its recorded
	// requests are reset before every run.
	Auth *authserver.Server
	// Upstreams are recorders between the proxy and the real upstreams,
	// by a name used in transcripts.
	Upstreams map[string]*Recorder
	// Reset runs before every run of every scenario (restore mailboxes).
	Reset func(t testing.TB)
	// Impls to run, in order; default: $HARNESS_IMPLS (comma-separated)
	// or nginx,mailgate. The first is the reference.
	Impls []Impl
	// CompareLog also compares the connection lines ("*N ...") of
	// error.log.
	CompareLog bool
	// Normalize adds normalisers to DefaultNormalizers for every scenario.
	Normalize []Normalizer
	// ReadTimeout bounds each read step (default 5s).
	ReadTimeout time.Duration

	mu                                   sync.Mutex
	total, identical, declared, failures int
}

// Transcript is what one implementation did in one scenario.
type Transcript struct {
	Impl     Impl
	Scenario string
	// Client is the rendered client dialogue: "C: ..." sent, "S: ..."
	// received (one line per LF, escaped), "[closed]", "[timeout in ...]".
	Client string
	// Received is every byte the client received.
	Received []byte
	// Closed: the proxy closed the connection (seen by a read step).
	Closed bool
	// Auth are the raw auth_http requests of the run.
	Auth [][]byte
	// Upstream are the recorded upstream connections of the run, by
	// recorder name.
	Upstream map[string][]RecordedConn
	// Log are the error.log lines of the run.
	Log string
	// Proxy is the proxy the run used (stopped).
	Proxy *Proxy
}

// Render is the transcript as text, the form Compare diffs.
func (tr *Transcript) Render(withLog bool) string {
	var b strings.Builder
	b.WriteString("== client\n")
	b.WriteString(tr.Client)
	for i, r := range tr.Auth {
		fmt.Fprintf(&b, "== auth_http request %d\n", i+1)
		writeEscapedLines(&b, "", r)
	}
	names := make([]string, 0, len(tr.Upstream))
	for n := range tr.Upstream {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for i, c := range tr.Upstream[n] {
			fmt.Fprintf(&b, "== upstream %s connection %d\n", n, i+1)
			if c.DialErr != "" {
				fmt.Fprintf(&b, "[dial error]\n")
				continue
			}
			// Coalesce by direction: chunk boundaries are timing, not
			// behaviour.
			var cur []byte
			up := false
			flush := func() {
				if len(cur) > 0 {
					p := "<: "
					if up {
						p = ">: "
					}
					writeEscapedLines(&b, p, cur)
				}
				cur = nil
			}
			for _, ch := range c.Chunks {
				if ch.Up != up {
					flush()
					up = ch.Up
				}
				cur = append(cur, ch.Data...)
			}
			flush()
			if c.ProxyClosed {
				b.WriteString("[proxy closed]\n")
			}
		}
	}
	if withLog {
		b.WriteString("== error.log\n")
		b.WriteString(tr.Log)
	}
	return b.String()
}

// writeEscapedLines writes data one line per LF, with prefix, escaping
// CR, LF, tabs and non-printable bytes so every byte is visible.
func writeEscapedLines(b *strings.Builder, prefix string, data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i+1], data[i+1:]
		}
		b.WriteString(prefix)
		b.WriteString(Escape(line))
		b.WriteByte('\n')
	}
}

// Escape renders bytes with \r, \n, \t, \\ and \xNN escapes.
func Escape(p []byte) string {
	var b strings.Builder
	for _, c := range p {
		switch {
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// impls returns the implementations to run.
func (s *Suite) impls() []Impl {
	if len(s.Impls) > 0 {
		return s.Impls
	}
	if env := os.Getenv("HARNESS_IMPLS"); env != "" {
		var out []Impl
		for _, f := range strings.Split(env, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, Impl(f))
			}
		}
		return out
	}
	return []Impl{Nginx, Mailgate}
}

// Run runs every scenario as a subtest against each implementation,
// compares the transcripts to the first implementation's, and logs (and
// appends to $HARNESS_SUMMARY) a summary line:
//
//	pop3 compat: 37 scenarios, 35 identical, 2 declared differences, 0 failures
func (s *Suite) Run(t *testing.T, scenarios []Scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			s.runScenario(t, sc)
		})
	}
	s.mu.Lock()
	line := fmt.Sprintf("%s compat: %d scenarios, %d identical, %d declared differences, %d failures",
		s.Name, s.total, s.identical, s.declared, s.failures)
	s.mu.Unlock()
	if impls := s.impls(); len(impls) < 2 {
		line += fmt.Sprintf(" (only %v ran: nothing compared)", impls)
	}
	t.Log(line)
	fmt.Println(line)
	if f := os.Getenv("HARNESS_SUMMARY"); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(fh, line)
			fh.Close()
		}
	}
}

// Counts returns the tallies of the scenarios run so far.
func (s *Suite) Counts() (total, identical, declared, failures int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.identical, s.declared, s.failures
}

func (s *Suite) runScenario(t *testing.T, sc Scenario) {
	outcome := "failure"
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total++
		if t.Failed() {
			outcome = "failure"
		}
		switch outcome {
		case "identical":
			s.identical++
		case "declared":
			s.declared++
		default:
			s.failures++
		}
	}()
	if err := s.writeFuzzSeed(sc); err != nil {
		t.Errorf("fuzz seed: %v", err)
	}
	impls := s.impls()
	var trs []*Transcript
	for _, impl := range impls {
		tr := s.RunOne(t, impl, sc)
		if sc.Check != nil {
			sc.Check(t, tr)
		}
		trs = append(trs, tr)
	}
	norms := append(append(DefaultNormalizers(), s.Normalize...), sc.Normalize...)
	outcome = "identical"
	for _, tr := range trs[1:] {
		d := Diff(trs[0], tr, s.CompareLog, norms...)
		if d == "" {
			continue
		}
		if sc.Differ != "" {
			t.Logf("declared difference (%s):\n%s", sc.Differ, d)
			outcome = "declared"
			continue
		}
		t.Errorf("%s and %s differ:\n%s", trs[0].Impl, tr.Impl, d)
		outcome = "failure"
	}
	if outcome == "identical" && sc.Differ != "" && len(trs) > 1 {
		t.Logf("declared difference not seen, transcripts identical (%s)", sc.Differ)
	}
	if testing.Verbose() || t.Failed() {
		t.Logf("%s transcript:\n%s", trs[0].Impl, trs[0].Render(s.CompareLog))
	}
}

// RunOne runs sc against impl: resets the environment, starts a fresh
// proxy, runs the client steps, waits for the upstream connections to end,
// stops the proxy and returns the transcript.
func (s *Suite) RunOne(t testing.TB, impl Impl, sc Scenario) *Transcript {
	t.Helper()
	if s.Reset != nil {
		s.Reset(t)
	}
	conf := s.Config
	if sc.Config != nil {
		conf = *sc.Config
	}
	vars := map[string]string{}
	for k, v := range conf.Vars {
		vars[k] = v
	}
	if s.Auth != nil {
		vars["auth"] = s.Auth.URL()
	}
	conf.Vars = vars
	trace := newTracer(t, string(impl)+" "+sc.Name)
	p := Start(t, impl, conf)
	trace("proxy started")
	if s.Auth != nil {
		s.Auth.Reset()
	}
	marks := map[string]int{}
	for n, r := range s.Upstreams {
		marks[n] = r.Len()
	}
	listen := sc.Listen
	if listen == "" {
		if len(p.Ports) != 1 {
			t.Fatalf("harness: scenario %q: set Listen, the config has %d ports", sc.Name, len(p.Ports))
		}
		for n := range p.Ports {
			listen = n
		}
	}
	timeout := s.ReadTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	addr := p.Addr(listen)
	if sc.Client6 {
		addr = "[::1]:" + strconv.Itoa(p.Ports[listen])
	}
	tr := RunClient(t, addr, sc.Steps, timeout)
	trace("client done")
	tr.Impl, tr.Scenario, tr.Proxy = impl, sc.Name, p
	tr.Upstream = map[string][]RecordedConn{}
	for n, r := range s.Upstreams {
		if !r.WaitIdle(marks[n], 5*time.Second) {
			t.Logf("harness: upstream %s connections still open after 5s", n)
		}
		if conns := r.Since(marks[n]); len(conns) > 0 {
			tr.Upstream[n] = conns
		}
	}
	trace("upstreams idle")
	if s.Auth != nil {
		tr.Auth = s.Auth.Requests()
	}
	// Let the proxy see the client go and log the end of the session
	// before it stops.
	ports := make([]int, 0, len(p.Ports))
	for _, port := range p.Ports {
		ports = append(ports, port)
	}
	if !waitConnsClosed(ports, 2*time.Second) {
		t.Logf("harness: %s still has client connections open 2s after the client closed", impl)
	}
	time.Sleep(30 * time.Millisecond)
	trace("client connections closed")
	p.Stop()
	trace("proxy stopped")
	tr.Log = ConnLogLines(p.ErrorLog())
	// Name the proxy's ports so both implementations read alike.
	for name, port := range p.Ports {
		tr.Client = replacePort(tr.Client, port, name)
		tr.Log = replacePort(tr.Log, port, name)
	}
	return tr
}

// newTracer returns a function logging the time of each phase of a run
// when $HARNESS_TRACE is set.
func newTracer(t testing.TB, what string) func(string) {
	if os.Getenv("HARNESS_TRACE") == "" {
		return func(string) {}
	}
	start := time.Now()
	return func(phase string) {
		t.Logf("harness trace: %s: %s at %v", what, phase, time.Since(start).Round(time.Millisecond))
	}
}

func replacePort(s string, port int, name string) string {
	s = strings.ReplaceAll(s, "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:{{port "+name+"}}")
	// IPv6 listeners: [::1]:PORT and [::]:PORT.
	return strings.ReplaceAll(s, "]:"+strconv.Itoa(port), "]:{{port "+name+"}}")
}

var connLine = regexp.MustCompile(`^\S+ \S+ \[\w+\] \d+#\d+: \*\d+ `)

// ConnLogLines keeps the error.log lines about connections ("... *N ...").
func ConnLogLines(log string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(log, "\n") {
		if connLine.MatchString(l) {
			b.WriteString(l)
		}
	}
	return b.String()
}

// RunClient dials addr and runs steps, returning the client part of a
// transcript. Each read step gives up after timeout ("[timeout in ...]").
func RunClient(t testing.TB, addr string, steps []Step, timeout time.Duration) *Transcript {
	t.Helper()
	tr := &Transcript{}
	var b strings.Builder
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	// A refused connect reaches no server, so trying again for a moment
	// changes no transcript; it rides out a proxy whose listening socket
	// is not there yet when many test packages start servers at once.
	for deadline := time.Now().Add(2 * time.Second); errors.Is(err, syscall.ECONNREFUSED) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatalf("harness: dial %s: %v", addr, err)
	}
	defer c.Close()
	var pending []byte
	eof := false
	buf := make([]byte, 64*1024)
	// fill reads once with deadline; false on timeout or EOF.
	fill := func(deadline time.Time) bool {
		if eof {
			return false
		}
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		pending = append(pending, buf[:n]...)
		tr.Received = append(tr.Received, buf[:n]...)
		if err != nil {
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				eof = true
			}
			return n > 0
		}
		return true
	}
	emit := func(n int) {
		writeEscapedLines(&b, "S: ", pending[:n])
		pending = pending[n:]
	}
	closed := false
	for _, st := range steps {
		deadline := time.Now().Add(timeout)
		switch st.kind {
		case stepSend:
			writeEscapedLines(&b, "C: ", st.data)
			if _, err := c.Write(st.data); err != nil {
				fmt.Fprintf(&b, "[write error]\n")
			}
		case stepSleep:
			time.Sleep(st.d)
		case stepCloseWrite:
			b.WriteString("C: [shutdown write]\n")
			if tc, ok := c.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		case stepClose:
			b.WriteString("C: [close]\n")
			c.Close()
			closed = true
		case stepLines:
			for {
				if n := nthLF(pending, st.n); n > 0 {
					emit(n)
					break
				}
				if !fill(deadline) && (eof || time.Now().After(deadline)) {
					emit(len(pending))
					fmt.Fprintf(&b, "[%s in %s]\n", endReason(eof), st.label)
					break
				}
			}
		case stepUntil:
			for {
				if loc := st.re.FindIndex(pending); loc != nil {
					emit(loc[1])
					break
				}
				if !fill(deadline) && (eof || time.Now().After(deadline)) {
					emit(len(pending))
					fmt.Fprintf(&b, "[%s in %s]\n", endReason(eof), st.label)
					break
				}
			}
		case stepClosed:
			for !eof && time.Now().Before(deadline) {
				fill(deadline)
			}
			emit(len(pending))
			if !eof {
				fmt.Fprintf(&b, "[timeout in %s]\n", st.label)
			}
		case stepQuiet:
			for {
				if !fill(time.Now().Add(st.d)) || time.Now().After(deadline) {
					break
				}
			}
			emit(len(pending))
		}
		// The close is shown once everything before it was read.
		if eof && !tr.Closed && len(pending) == 0 {
			tr.Closed = true
			b.WriteString("[closed]\n")
		}
		if closed {
			break
		}
	}
	if !closed {
		// Anything the scenario did not read is shown, not dropped.
		for !eof && fill(time.Now().Add(100*time.Millisecond)) {
		}
		if len(pending) > 0 {
			b.WriteString("[unread]\n")
			emit(len(pending))
		}
		if eof && !tr.Closed {
			tr.Closed = true
			b.WriteString("[closed]\n")
		}
	}
	tr.Client = b.String()
	return tr
}

func endReason(eof bool) string {
	if eof {
		return "closed"
	}
	return "timeout"
}

// nthLF returns the length of the prefix holding n LFs, or 0.
func nthLF(p []byte, n int) int {
	off := 0
	for i := 0; i < n; i++ {
		j := bytes.IndexByte(p[off:], '\n')
		if j < 0 {
			return 0
		}
		off += j + 1
	}
	return off
}

// Normalizer rewrites volatile parts of a rendered transcript.
type Normalizer func(string) string

// Replace is a Normalizer replacing every match of the regexp pattern with
// repl (regexp.ReplaceAllString syntax).
func Replace(pattern, repl string) Normalizer {
	re := regexp.MustCompile(pattern)
	return func(s string) string { return re.ReplaceAllString(s, repl) }
}

// Common normalisers.
var (
	// NormSalt: APOP and CRAM-MD5 salts "<12345.1700000000@host>".
	NormSalt = Replace(`<\d+\.\d+@[^>\s]*>`, "<SALT>")
	// NormLogTime: error.log timestamps and pid#tid.
	NormLogTime = Replace(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: `, "$1 ")
	// NormClientPort: the client's ephemeral port in log lines.
	NormClientPort = Replace(`client (127\.0\.0\.1|\[[0-9a-f:.]+\]):\d+ connected`, "client $1:PORT connected")
	// NormDovecotTime: Dovecot's "[2026-11-26 04:32:38]" in error replies
	// and "(0.001 + 0.000 secs)" timings.
	NormDovecotTime = Replace(`\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]|\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)`, "[TIME]")
	// NormUIDValidity: IMAP UIDVALIDITY values.
	NormUIDValidity = Replace(`UIDVALIDITY \d+`, "UIDVALIDITY N")
	// NormPostfixQueueID: "queued as 309E498464A".
	NormPostfixQueueID = Replace(`queued as [0-9A-Za-z]+`, "queued as QUEUEID")
	// NormCRAMChallenge: base64 challenges after "334 " or "+ " that decode
	// to a salt.
	NormCRAMChallenge Normalizer = normCRAM
)

var cramLine = regexp.MustCompile(`(?m)^(S: |<: )(334 |\+ )([A-Za-z0-9+/]{16,}={0,2})(\\r\\n)$`)

func normCRAM(s string) string {
	return cramLine.ReplaceAllStringFunc(s, func(m string) string {
		sub := cramLine.FindStringSubmatch(m)
		dec, err := base64Decode(sub[3])
		if err != nil || !NormSaltMatch(dec) {
			return m
		}
		return sub[1] + sub[2] + "<BASE64-SALT>" + sub[4]
	})
}

var saltRe = regexp.MustCompile(`^<\d+\.\d+@[^>\s]*>$`)

// NormSaltMatch reports whether b is a whole salt "<R.T@host>".
func NormSaltMatch(b []byte) bool { return saltRe.Match(b) }

// DefaultNormalizers are applied by Suite.Run before the scenario's own.
func DefaultNormalizers() []Normalizer {
	return []Normalizer{NormCRAMChallenge, NormSalt, NormLogTime, NormClientPort,
		NormDovecotTime, NormUIDValidity, NormPostfixQueueID}
}

// Diff renders a and b (with the error.log lines if withLog), normalises
// them and returns a line diff ("" when identical).
func Diff(a, b *Transcript, withLog bool, norms ...Normalizer) string {
	ra, rb := a.Render(withLog), b.Render(withLog)
	for _, n := range norms {
		ra, rb = n(ra), n(rb)
	}
	if ra == rb {
		return ""
	}
	return lineDiff(string(a.Impl), string(b.Impl), ra, rb)
}

// Compare fails t with a readable diff when the normalised transcripts
// of a and b differ (error.log lines included). It reports whether they
// were identical.
func Compare(t testing.TB, a, b *Transcript, norms ...Normalizer) bool {
	t.Helper()
	d := Diff(a, b, true, append(DefaultNormalizers(), norms...)...)
	if d != "" {
		t.Errorf("%s and %s differ:\n%s", a.Impl, b.Impl, d)
		return false
	}
	return true
}

// lineDiff is a small LCS line diff with 3 lines of context.
func lineDiff(na, nb, a, b string) string {
	la := strings.SplitAfter(a, "\n")
	lb := strings.SplitAfter(b, "\n")
	n, m := len(la), len(lb)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if la[i] == lb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		c    byte
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && la[i] == lb[j]:
			ops = append(ops, op{' ', la[i]})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', la[i]})
			i++
		default:
			ops = append(ops, op{'+', lb[j]})
			j++
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", na, nb)
	const ctx = 3
	last := -1
	for k, o := range ops {
		if o.c == ' ' {
			near := false
			for d := -ctx; d <= ctx; d++ {
				if k+d >= 0 && k+d < len(ops) && ops[k+d].c != ' ' {
					near = true
				}
			}
			if !near {
				continue
			}
		}
		if last >= 0 && k != last+1 {
			out.WriteString("@@\n")
		}
		last = k
		text := o.text
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		out.WriteByte(o.c)
		out.WriteString(text)
	}
	return out.String()
}

// StartAuth starts the auth_http test server with script on a free
// loopback port and closes it at cleanup.
func StartAuth(t testing.TB, script authserver.Script) *authserver.Server {
	t.Helper()
	s, err := authserver.Start("127.0.0.1:0", script)
	if err != nil {
		t.Fatalf("harness: auth server: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
