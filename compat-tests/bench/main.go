// Command bench measures nginx and mailgate back to back, on the same
// machine, with the same auth_http server, the same synthetic upstream and
// the same load generator, and prints every figure as a table
// nginx | mailgate | mailgate/nginx (issue 11). Nothing here asserts a
// speed: the exit status is non-zero only when the bench cannot run or a
// login, session or transfer fails.
//
//	go build -o /tmp/bench ./compat-tests/bench
//	/tmp/bench -mailgate /path/to/mailgate [-only imap-logins,...] [-duration 10s] [-quick] [-json out.json]
//
// See docs/performance.md for the figures and how to read them.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	mailgateBin = flag.String("mailgate", "", "mailgate binary (required)")
	nginxBin    = flag.String("nginx", "/usr/sbin/nginx", "nginx binary")
	mailModule  = flag.String("module", "/usr/lib/nginx/modules/ngx_mail_module.so", "nginx mail module")
	basePort    = flag.Int("port", 28000, "first loopback port to use (the bench uses 40 from there)")
	only        = flag.String("only", "", "comma-separated figures to run (default all): "+strings.Join(figureNames(), ","))
	duration    = flag.Duration("duration", 10*time.Second, "duration of each login-rate and handshake-rate run")
	clients     = flag.Int("clients", 16, "concurrent clients for the rate figures")
	quick       = flag.Bool("quick", false, "small sizes and counts (CI: build and run in about a minute)")
	jsonOut     = flag.String("json", "", "also write the results to this file as JSON")
	mdOut       = flag.String("md", "", "also write the table to this file as Markdown (for docs/performance.md)")
	verbose     = flag.Bool("v", false, "print the proxies' error.log tails")
	serve       = flag.Bool("serve", false, "internal: run the auth_http server and upstreams (child process)")
)

type figure struct {
	name string
	run  func()
}

// figures in the order they run.
var figures = []figure{
	{"pop3-logins", func() { loginFigure("pop3") }},
	{"imap-logins", func() { loginFigure("imap") }},
	{"smtp-logins", func() { loginFigure("smtp") }},
	{"syscalls", syscallFigure},
	{"idle-memory", idleFigure},
	{"flood", floodFigure},
	{"relay", func() { relayFigure(false) }},
	{"relay-tls", func() { relayFigure(true) }},
	{"tls-handshakes", handshakeFigure},
	{"auth-cache", authCacheFigure},
}

func figureNames() []string {
	var n []string
	for _, f := range figures {
		n = append(n, f.name)
	}
	return n
}

// row is one line of the table.
type row struct {
	Section  string  `json:"section"`
	Figure   string  `json:"figure"`
	Unit     string  `json:"unit"`
	Nginx    float64 `json:"nginx"`
	Mailgate float64 `json:"mailgate"`
	Ratio    float64 `json:"ratio"`  // mailgate/nginx
	Better   string  `json:"better"` // "higher", "lower" or "" (information)
	Note     string  `json:"note,omitempty"`
}

var (
	rowsMu   sync.Mutex
	rows     []row
	notes    []string // printed under the table
	failures []string // logins, sessions or transfers that failed
)

func addRow(section, fig, unit string, n, m float64, better string) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	r := row{Section: section, Figure: fig, Unit: unit, Nginx: n, Mailgate: m, Better: better}
	if n != 0 {
		r.Ratio = m / n
	}
	rows = append(rows, r)
}

func addNote(format string, a ...any) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	notes = append(notes, fmt.Sprintf(format, a...))
}

// fail records a failure: it is printed loudly and makes the exit status 1.
func fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintln(os.Stderr, "bench: FAILED:", msg)
	rowsMu.Lock()
	defer rowsMu.Unlock()
	failures = append(failures, msg)
}

var (
	running   []*proxy
	serveProc *exec.Cmd
)

// fatalf stops what the bench started, then exits.
func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	cleanup()
	os.Exit(2)
}

// cleanupMu serialises cleanup with starting and stopping proxies.
var cleanupMu sync.Mutex

func cleanup() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanupLocked()
}

// track records a started proxy for cleanup; release stops it.
func track(p *proxy) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	running = append(running, p)
}

func release(p *proxy) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	p.stop()
	running = slices.DeleteFunc(running, func(q *proxy) bool { return q == p })
}

func cleanupLocked() {
	for _, p := range running {
		p.stop()
	}
	running = nil
	if serveProc != nil {
		serveProc.Process.Kill()
		serveProc.Wait()
	}
	if certs.dir != "" {
		os.RemoveAll(certs.dir)
	}
}

// withProxies runs f against a fresh nginx, then a fresh mailgate.
func withProxies(o proxyOpts, f func(p *proxy)) {
	for _, name := range []string{"nginx", "mailgate"} {
		p := startProxy(name, o)
		f(p)
		release(p)
	}
}

// withProxiesABBA runs f against nginx, mailgate, mailgate, nginx (fresh
// processes each time): rate figures run in two halves so that neither
// proxy always comes second (after the other's TIME_WAIT sockets, or
// into a change of the machine's load). idx is 0 for nginx, 1 for
// mailgate.
func withProxiesABBA(o proxyOpts, f func(p *proxy, idx int)) {
	for _, name := range []string{"nginx", "mailgate", "mailgate", "nginx"} {
		p := startProxy(name, o)
		idx := 0
		if !isNginx(name) {
			idx = 1
		}
		f(p, idx)
		release(p)
	}
}

func main() {
	flag.Parse()
	if *serve {
		serveMain(*basePort)
		return
	}
	if *mailgateBin == "" {
		fmt.Fprintln(os.Stderr, "bench: -mailgate is required")
		os.Exit(2)
	}
	selected := map[string]bool{}
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(figureNames(), n) {
				fmt.Fprintf(os.Stderr, "bench: unknown figure %q (have %s)\n", n, strings.Join(figureNames(), ","))
				os.Exit(2)
			}
			selected[n] = true
		}
	}
	if *quick && !isFlagSet("duration") {
		*duration = time.Second
	}
	raiseNofile()
	// Interrupted (^C, timeout): stop the proxies and the serve child
	// rather than leave them running.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cleanupMu.Lock() // hold it: main must not start another proxy
		fmt.Fprintf(os.Stderr, "bench: %v: stopping\n", s)
		cleanupLocked()
		os.Exit(2)
	}()
	startServe()
	makeCerts()
	started := time.Now()
	loadStart = loadAvg()
	for _, f := range figures {
		if len(selected) > 0 && !selected[f.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", f.name)
		f.run()
	}
	cleanup()
	report(time.Since(started))
	if len(failures) > 0 {
		os.Exit(1)
	}
}

func isFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// startServe starts `bench -serve` and waits for it to listen.
func startServe() {
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(self, "-serve", "-port", fmt.Sprint(*basePort))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fatalf("start -serve: %v", err)
	}
	_ = stdin // closed when the bench exits: the child then exits too
	serveProc = cmd
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		fatalf("-serve did not start: %q %v", line, err)
	}
}

// authRequestCount asks the serve process how many auth_http requests it
// has answered so far.
func authRequestCount() int64 {
	c, err := dialRetry(addr(portsFrom(*basePort).stats))
	if err != nil {
		fatalf("stats: %v", err)
	}
	defer c.Close()
	var n int64
	fmt.Fscan(c, &n)
	return n
}

func loginFigure(proto string) {
	var res [2]loginResult
	var halves [2]int
	withProxiesABBA(proxyOpts{}, func(p *proxy, idx int) {
		port := map[string]int{"pop3": p.ports.pop3, "imap": p.ports.imap, "smtp": p.ports.smtp}[proto]
		a0 := authRequestCount()
		c0 := cpuTime(p.pid)
		r := runLogins(addr(port), proto, *clients, *duration/2, 0, nil)
		r.cpu = cpuTime(p.pid) - c0
		checkLogins(p.name, proto+" logins", r)
		// Every login must have gone through the auth server once.
		if a := authRequestCount() - a0; a < r.ok {
			fail("%s: %s logins: %d succeeded but the auth server saw only %d requests", p.name, proto, r.ok, a)
		}
		if halves[idx] == 0 {
			res[idx] = r
		} else {
			res[idx] = res[idx].merge(r)
		}
		halves[idx]++
	})
	P := strings.ToUpper(proto)
	sec := fmt.Sprintf("%s logins, %d clients, %s per proxy (two halves, ABBA)", P, *clients, *duration)
	addRow(sec, P+" logins/s", "/s", res[0].rate, res[1].rate, "higher")
	addRow(sec, P+" login latency p50", "ms", ms(res[0].p50), ms(res[1].p50), "lower")
	addRow(sec, P+" login latency p99", "ms", ms(res[0].p99), ms(res[1].p99), "lower")
	addRow(sec, P+" proxy CPU per login", "ms", res[0].cpuPerLogin(), res[1].cpuPerLogin(), "lower")
	addRow(sec, P+" logins done", "", float64(res[0].ok), float64(res[1].ok), "")
}

func checkLogins(name, what string, r loginResult) {
	if r.failed > 0 || r.ok == 0 {
		fail("%s: %s: %d of %d FAILED (first: %s)", name, what, r.failed, r.failed+r.ok, r.firstErr)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func report(total time.Duration) {
	host, _ := os.Hostname()
	fmt.Printf("\nmailgate vs nginx, back to back on %s (%d CPUs, %s), %s; bench took %s%s\n",
		host, runtime.NumCPU(), cpuModel(), time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		total.Round(time.Second), map[bool]string{true: " (-quick)", false: ""}[*quick])
	fmt.Printf("load average (1 min) at the start %s, at the end %s: other load on the machine skews every figure\n", loadStart, loadAvg())
	fmt.Println("ratio = mailgate/nginx; \"better\" says which direction of the ratio is the better one")
	sec := ""
	fmt.Printf("\n%-46s %12s %12s %8s  %s\n", "figure", "nginx", "mailgate", "ratio", "better")
	for _, r := range rows {
		if r.Section != sec {
			sec = r.Section
			fmt.Printf("-- %s\n", sec)
		}
		ratio := "-"
		if r.Nginx != 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		name := r.Figure
		if r.Unit != "" && r.Unit != "/s" {
			name += " (" + r.Unit + ")"
		}
		fmt.Printf("%-46s %12s %12s %8s  %s\n", name, num(r.Nginx), num(r.Mailgate), ratio, r.Better)
	}
	for _, n := range notes {
		fmt.Println("note:", n)
	}
	if len(failures) > 0 {
		fmt.Printf("\n!!! %d FAILURES: the figures above are NOT valid where these apply:\n", len(failures))
		for _, f := range failures {
			fmt.Println("!!!  ", f)
		}
	}
	if *mdOut != "" {
		writeMarkdown(*mdOut, host, total)
	}
	if *jsonOut != "" {
		out := map[string]any{
			"date": time.Now().UTC().Format(time.RFC3339), "host": host, "cpus": runtime.NumCPU(),
			"cpu": cpuModel(), "quick": *quick, "duration": duration.String(), "clients": *clients,
			"loadavg_start": loadStart, "loadavg_end": loadAvg(), "rows": rows, "notes": notes, "failures": failures,
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// authCacheFigure: IMAP logins with mailgate's auth_http_cache off and
// on (the same user and password every time, so every login after the
// first is a cache hit), nginx (no cache) as the baseline.
func authCacheFigure() {
	type run struct {
		r    loginResult
		reqs float64 // auth requests per login
	}
	one := func(name string, o proxyOpts) run {
		p := startProxy(name, o)
		defer release(p)
		a0 := authRequestCount()
		r := runLogins(addr(p.ports.imap), "imap", *clients, *duration, 0, nil)
		checkLogins(name, "imap logins (auth cache figure)", r)
		return run{r, float64(authRequestCount()-a0) / float64(max(r.ok, 1))}
	}
	n := one("nginx", proxyOpts{})
	off := one("mailgate", proxyOpts{})
	on := one("mailgate", proxyOpts{authCache: true})
	sec := "mailgate's auth_http_cache (memory, valid 1m) on IMAP logins; nginx has none"
	addRow(sec, "IMAP logins/s, cache off", "/s", n.r.rate, off.r.rate, "higher")
	addRow(sec, "IMAP logins/s, auth_http_cache memory", "/s", n.r.rate, on.r.rate, "higher")
	addRow(sec, "IMAP login latency p99, cache on", "ms", ms(n.r.p99), ms(on.r.p99), "lower")
	addRow(sec, "auth_http requests per login, cache off", "", n.reqs, off.reqs, "lower")
	addRow(sec, "auth_http requests per login, cache on", "", n.reqs, on.reqs, "lower")
}

var loadStart string

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// writeMarkdown writes the header and the table as Markdown.
func writeMarkdown(file, host string, total time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "Run on %s (%d CPUs, %s), %s, bench took %s%s; load average (1 min) %s at the start, %s at the end.\n",
		host, runtime.NumCPU(), cpuModel(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), total.Round(time.Second),
		map[bool]string{true: ", `-quick`", false: ""}[*quick], loadStart, loadAvg())
	fmt.Fprintf(&b, "Ratio = mailgate/nginx; the last column says which direction of it is better.\n\n")
	fmt.Fprintf(&b, "| figure | nginx | mailgate | ratio | better |\n|---|---:|---:|---:|---|\n")
	sec := ""
	for _, r := range rows {
		if r.Section != sec {
			sec = r.Section
			fmt.Fprintf(&b, "| **%s** | | | | |\n", sec)
		}
		ratio := "-"
		if r.Nginx != 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		name := strings.TrimSpace(r.Figure)
		if strings.HasPrefix(r.Figure, " ") {
			name = "&nbsp;&nbsp;" + name
		}
		if r.Unit != "" && r.Unit != "/s" {
			name += " (" + r.Unit + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, num(r.Nginx), num(r.Mailgate), ratio, r.Better)
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	if len(failures) > 0 {
		fmt.Fprintf(&b, "\n**%d FAILURES: the figures are not valid where these apply:**\n\n", len(failures))
		for _, f := range failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}
