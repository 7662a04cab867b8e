package configcompat

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	randomN       = flag.Int("random.n", 1000, "TestRandomDiff: number of generated configurations")
	randomFirst   = flag.Int("random.first", 0, "TestRandomDiff: number of the first configuration (to rerun one: -random.first I -random.n 1)")
	randomSeed    = flag.Int64("random.seed", 1, "TestRandomDiff: seed of the generator")
	randomOut     = flag.String("random.out", "", "TestRandomDiff: directory to save every mismatch in (case files + both outputs)")
	randomMutate  = flag.Float64("random.mutate", 0.35, "TestRandomDiff: share of generated files damaged by byte mutations")
	randomSSLFile = flag.Bool("random.sslfile", false, "TestRandomDiff: also start from the sslfile_* corpus cases (TLS file checks)")
	randomWorkers = flag.Int("random.workers", 2, "TestRandomDiff: configurations run at once")
)

// knownRandomDiff is a declared difference the random comparison allows.
// nginx and mailgate are the normalised outputs of one run (exit code
// line first). A kind matches when its nginx pattern matches nginx's
// output and mailgate's output matches its mailgate pattern.
type knownRandomDiff struct {
	kind     string
	reason   string
	nginx    *regexp.Regexp
	mailgate *regexp.Regexp
	// match, when set, replaces the two patterns
	match func(nginx, mailgate string) bool
}

// knownRandomDiffs: every entry is a difference DIFFERENCES.md or
// docs/compat-config.md declares.
var knownRandomDiffs = []knownRandomDiff{
	{
		kind:     "ssl-verify-client-trusted",
		reason:   "nginx 1.27.2+: ssl_trusted_certificate alone is enough for ssl_verify_client, and the message says so (DIFFERENCES.md err_ssl_verify_client_no_ca)",
		nginx:    regexp.MustCompile(`\[emerg\] no ssl_client_certificate for ssl_verify_client`),
		mailgate: regexp.MustCompile(`^exit 0\n|\[emerg\] no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client`),
	},
	{
		kind: "stream-module-named-in-a-file",
		reason: "a file names ngx_stream_module.so, so the runner gave nginx no load_module line for it, but the line " +
			"is damaged or late; mailgate has stream built in like nginx.org's build (see README.md, ok_stream_block)",
		nginx:    regexp.MustCompile(`\[emerg\] unknown directive "stream" in `),
		mailgate: regexp.MustCompile(``),
	},
	{
		kind: "openssl-error-text",
		reason: "a damaged TLS file fails in both, at the same place, but OpenSSL's error chain depends on exactly how the " +
			"PEM or DER is broken (bad end line or bad base64 decode, which ASN.1 errors follow); mailgate prints one " +
			"representative text (docs/compat-config.md, TLS file checks)",
		match: func(ng, mg string) bool {
			return sslChainRE.MatchString(ng) && sslChainRE.ReplaceAllString(ng, "(SSL: …)") == sslChainRE.ReplaceAllString(mg, "(SSL: …)")
		},
	},
	{
		kind: "listen-wording-cut",
		reason: "the newer wording of a bad listen parameter (DIFFERENCES.md err_listen_*) on a parameter so long " +
			"that the 1024-byte message cut falls inside it, at a different place for each wording",
		match: func(ng, mg string) bool {
			n, m := listenCutNginxRE.FindStringSubmatch(ng), listenCutMailgateRE.FindStringSubmatch(mg)
			return n != nil && m != nil && strings.HasPrefix(n[1], m[1]) &&
				listenCutNginxRE.ReplaceAllString(ng, "") == listenCutMailgateRE.ReplaceAllString(mg, "")
		},
	},
}

var (
	sslChainRE          = regexp.MustCompile(`(?m)\(SSL: .*\)$`)
	listenCutNginxRE    = regexp.MustCompile(`(?m)^\[emerg\] the invalid "(.*) in \S+:\d+\n`)
	listenCutMailgateRE = regexp.MustCompile(`(?m)^\[emerg\] invalid parameter "(.*) in \S+:\d+\n`)
	debugLineRE         = regexp.MustCompile(`(?m)^\[debug\] .*\n`)
)

// hasLongLine reports whether some line of s is at least n bytes long.
func hasLongLine(s string, n int) bool {
	for _, l := range strings.Split(s, "\n") {
		if len(l) >= n {
			return true
		}
	}
	return false
}

// cutLines cuts every line of s to n bytes.
func cutLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if len(l) > n {
			lines[i] = l[:n]
		}
	}
	return strings.Join(lines, "\n")
}

var (
	syntaxOKRE    = regexp.MustCompile(`(?m)^PROG: the configuration file \S+ syntax is ok\n`)
	afterSyntaxRE = regexp.MustCompile(` worker_connections are not enough for |the number of "worker_processes" is not equal to the number of "worker_cpu_affinity" masks`)
)

// errPosRE finds the position of nginx's error: the last "in FILE:LINE".
var errPosRE = regexp.MustCompile(`(?m)^\[emerg\] .* in PREFIX/(\S+):(\d+)$`)

// nginxFailsInHTTPOrStream: the declared difference "contents of http {}
// and stream {} are not validated" (docs/compat-config.md): nginx's error
// is on a line inside an http {} or stream {} block, which a mutation can
// make (the generator keeps its own such blocks valid).
func nginxFailsInHTTPOrStream(ng string, c randCase) bool {
	m := errPosRE.FindStringSubmatch(ng)
	if m == nil {
		return false
	}
	data, ok := c.files[m[1]]
	if !ok {
		return false
	}
	line := 0
	fmt.Sscan(m[2], &line)
	return lineInHTTPOrStream(data, line)
}

// mailModuleAfterGlobals: the case loads the mail module in its own file,
// so nginx parses -g (always first) without it and a mail directive there
// is unknown; mailgate has the module built in and says "not allowed here".
// A consequence of running nginx as Debian's build; not a mailgate choice.
func mailModuleAfterGlobals(ng, mg string, c randCase) bool {
	n := unknownInCmdLineRE.FindStringSubmatch(ng)
	if n == nil || !strings.Contains(mg, `"`+n[1]+`" directive is not allowed here in command line`) {
		return false
	}
	for _, data := range c.files {
		if bytes.Contains(data, []byte("ngx_mail_module.so")) {
			return true
		}
	}
	return false
}

var unknownInCmdLineRE = regexp.MustCompile(`\[emerg\] unknown directive "([^"]*)" in command line`)

var invalidValueRE = regexp.MustCompile(`(?m)^\[emerg\] invalid value "[^"\n]*" in PREFIX/(\S+):(\d+)$`)

// proxyProtocolNUL: mailgate refuses "proxy_protocol on<NUL>..." as nginx
// 1.31.4+'s enum does (DIFFERENCES.md err_proxy_protocol_v2_122), where
// 1.22.1's flag reads the value as a C string and takes it.
func proxyProtocolNUL(mg string, c randCase) bool {
	m := invalidValueRE.FindStringSubmatch(mg)
	if m == nil {
		return false
	}
	line := 0
	fmt.Sscan(m[2], &line)
	lines := strings.Split(string(c.files[m[1]]), "\n")
	return line >= 1 && line <= len(lines) && strings.Contains(lines[line-1], "proxy_protocol") &&
		strings.Contains(lines[line-1], "\x00")
}

// lineInHTTPOrStream reads the file roughly as nginx's tokenizer does
// (quotes, comments, braces) and reports whether line is inside an
// http {} or stream {} block at some point, or is the line of its "{".
func lineInHTTPOrStream(data []byte, line int) bool {
	var stack []bool // per open block: is it (inside) http/stream
	cur, prev := 1, ""
	word := []byte(nil)
	inside := func() bool { return len(stack) > 0 && stack[len(stack)-1] }
	flush := func() {
		if len(word) > 0 {
			prev = string(word)
			word = word[:0]
		}
	}
	for i := 0; i < len(data); i++ {
		ch := data[i]
		if cur == line && inside() {
			return true
		}
		switch {
		case ch == '\n':
			flush()
			cur++
		case ch == '#' && len(word) == 0:
			for i < len(data) && data[i] != '\n' {
				i++
			}
			i--
		case ch == '"' || ch == '\'':
			q := ch
			for i++; i < len(data) && data[i] != q; i++ {
				if data[i] == '\\' {
					i++
				} else if data[i] == '\n' {
					cur++
				}
			}
			word = append(word, 'q')
		case ch == '{':
			flush()
			stack = append(stack, inside() || prev == "http" || prev == "stream")
			if cur == line && inside() {
				return true
			}
			prev = ""
		case ch == '}':
			flush()
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			prev = ""
		case ch == ';':
			flush()
			prev = ""
		case ch == ' ' || ch == '\t' || ch == '\r':
			flush()
		default:
			word = append(word, ch)
		}
	}
	return false
}

// newerWording rewrites 1.22.1 messages whose newer nginx text mailgate
// prints on purpose (DIFFERENCES.md, err_listen_*): the rest of the output
// must then match exactly.
var newerWording = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?s)the invalid "(.*?)" parameter in `), `invalid parameter "$1" in `},
	// proxy_protocol is an enum (off|on|v2) as in nginx 1.31.4+
	// (DIFFERENCES.md err_proxy_protocol_v2_122): a bad value gets the
	// enum's message.
	{regexp.MustCompile(`(?s)(invalid value "(?:[^"\\]|\\.)*") in "proxy_protocol" directive, it must be "on" or "off"`), `$1`},
}

type randResult struct {
	t, dump string // "-t" and "-T" output: exit line, stderr, stdout
}

// TestRandomDiff generates configurations (randgen_test.go), runs each
// through nginx -t and mailgate -t (and -T when files are included) and
// fails on any difference in exit code or output that knownRandomDiffs
// does not declare. -random.n, -random.seed and -random.out run larger
// campaigns and keep the mismatches.
func TestRandomDiff(t *testing.T) {
	nginx := findNginx(t)
	work := t.TempDir()
	mailgate := buildMailgate(t, work)
	crt, key := testCert(t)

	type outcome struct {
		i     int
		kinds []string // declared kinds seen
		diff  string   // undeclared difference, "" if none
	}
	jobs := make(chan int)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for w := 0; w < *randomWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c := genCase(*randomSeed, i)
				n := runRandom(t, work, "n", i, c, crt, key, nginx, true)
				m := runRandom(t, work, "m", i, c, crt, key, mailgate, false)
				o := outcome{i: i}
				for _, pair := range [][2]string{{n.t, m.t}, {n.dump, m.dump}} {
					ng, mg := pair[0], pair[1]
					for _, w := range newerWording {
						ng = w.re.ReplaceAllString(ng, w.repl)
					}
					// declared: with error_log ... debug, Debian's nginx
					// (--with-debug) logs debug lines during -t (shared
					// memory counters with addresses); mailgate logs none
					if debugLineRE.MatchString(ng) && !debugLineRE.MatchString(mg) {
						ng = debugLineRE.ReplaceAllString(ng, "")
						o.kinds = append(o.kinds, "debug-lines")
					}
					if ng == mg {
						continue
					}
					if k := classify(ng, mg, c); k != "" {
						o.kinds = append(o.kinds, k)
						continue
					}
					if o.diff == "" {
						o.diff = fmt.Sprintf("nginx:\n%s\nmailgate:\n%s", ng, mg)
					}
				}
				if (o.diff != "" || len(o.kinds) > 0) && *randomOut != "" {
					saveRandom(t, *randomOut, i, c, n, m, o.diff == "")
				}
				results <- o
			}
		}()
	}
	go func() {
		for i := *randomFirst; i < *randomFirst+*randomN; i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()

	kinds := map[string]int{}
	var failed []int
	for o := range results {
		for _, k := range o.kinds {
			kinds[k]++
		}
		if o.diff != "" {
			failed = append(failed, o.i)
			c := genCase(*randomSeed, o.i)
			t.Errorf("random config %d (seed %d) differs:\n--- nginx.conf ---\n%q\n-g %q\n%s", o.i, *randomSeed,
				c.files["nginx.conf"], c.globals, o.diff)
		}
	}
	sort.Ints(failed)
	var ks []string
	for k, v := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(ks)
	summary := fmt.Sprintf("random config diff: %d configurations (seed %d), %d undeclared differences %v, declared: %s",
		*randomN, *randomSeed, len(failed), failed, strings.Join(ks, ", "))
	fmt.Println(summary)
	t.Log(summary)
}

func classify(ng, mg string, c randCase) string {
	if nginxFailsInHTTPOrStream(ng, c) {
		return "http-stream-contents"
	}
	if proxyProtocolNUL(mg, c) {
		return "proxy-protocol-enum-nul"
	}
	if mailModuleAfterGlobals(ng, mg, c) {
		return "mail-module-loaded-after-g"
	}
	for _, k := range knownRandomDiffs {
		if k.match != nil {
			if k.match(ng, mg) {
				return k.kind
			}
			continue
		}
		if k.nginx.MatchString(ng) && k.mailgate.MatchString(mg) {
			return k.kind
		}
	}
	return ""
}

// runRandom writes the case into work/<side>/<i> and runs -t, then -T if
// the case includes files. nginx gets the module lines (moduleGlobals).
func runRandom(t *testing.T, work, side string, i int, c randCase, crt, key []byte, bin string, isNginx bool) randResult {
	dir := filepath.Join(work, side, fmt.Sprint(i))
	if err := writeRandom(dir, c, crt, key); err != nil {
		t.Errorf("case %d: %v", i, err)
		return randResult{}
	}
	defer os.RemoveAll(dir)
	globals := c.globals
	if isNginx {
		mods, err := moduleGlobals(dir)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
		}
		globals = mods + globals
	}
	run := func(flagT string) string {
		args := []string{flagT, "-p", dir + "/", "-c", "nginx.conf", "-e", "stderr"}
		if globals != "" {
			args = append(args, "-g", globals)
		}
		stdout, stderr, code, err := runProgram(dir, 20*time.Second, bin, args...)
		switch {
		case errors.Is(err, errTimedOut):
			return "timed out\n"
		case err != nil:
			return "run error: " + err.Error() + "\n"
		}
		return fmt.Sprintf("exit %d\n%s%s", code, normalise(stderr, dir), normalise(stdout, dir))
	}
	r := randResult{t: run("-t")}
	if c.includes || strings.Contains(c.globals, "include") || bytes.Contains(c.files["nginx.conf"], []byte("include")) {
		r.dump = run("-T")
	}
	return r
}

func writeRandom(dir string, c randCase, crt, key []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range c.dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string][]byte{"test.crt": crt, "test.key": key}
	for name, data := range c.files {
		files[name] = data
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

var saveMu sync.Mutex

// saveRandom keeps a differing case for a human: the files, the -g, and
// both outputs. declared cases go under declared/.
func saveRandom(t *testing.T, out string, i int, c randCase, n, m randResult, declared bool) {
	saveMu.Lock()
	defer saveMu.Unlock()
	dir := filepath.Join(out, fmt.Sprint(i))
	if declared {
		dir = filepath.Join(out, "declared", fmt.Sprint(i))
	}
	if err := writeRandom(dir, c, nil, nil); err != nil {
		t.Errorf("saving %d: %v", i, err)
		return
	}
	os.Remove(filepath.Join(dir, "test.crt"))
	os.Remove(filepath.Join(dir, "test.key"))
	report := fmt.Sprintf("-g %q\n=== nginx -t\n%s=== mailgate -t\n%s=== nginx -T\n%s=== mailgate -T\n%s", c.globals, n.t, m.t, n.dump, m.dump)
	if err := os.WriteFile(filepath.Join(dir, "OUTPUT"), []byte(report), 0o644); err != nil {
		t.Errorf("saving %d: %v", i, err)
	}
}

func TestLineInHTTPOrStream(t *testing.T) {
	conf := "events {}\nhttp {\n    a b;\n    server {\n        c;\n    }\n}\nmail {\n    d \"{\";\n}\nstream { e; }\n# http {\nf;\n"
	want := map[int]bool{1: false, 2: true, 3: true, 5: true, 6: true, 7: true, 8: false, 9: false, 11: true, 12: false, 13: false}
	for line, w := range want {
		if got := lineInHTTPOrStream([]byte(conf), line); got != w {
			t.Errorf("line %d: %v, want %v", line, got, w)
		}
	}
}
