package configcompat

// A random nginx.conf generator for TestRandomDiff: realistic files built
// from every directive mailgate knows (good and bad values, duplicates,
// wrong contexts, includes, quoting) and hostile ones made from them by
// byte mutations (stray quotes, braces and semicolons, deleted or repeated
// ranges, very long tokens, NUL and non-UTF-8 bytes, CRLF line ends, tabs).
//
// What it avoids on purpose (see README.md): an error inside http {} or
// stream {} (their contents are valid by construction and kept out of the
// mutations' reach, as mailgate does not validate them), a missing logs/
// directory (the default pid file is a declared difference), and the
// mail module's load_module line in a file (the runner adds it for nginx,
// so a mutation cannot hide it). The stream module's line is generated;
// when a mutation damages it, nginx's `unknown directive "stream"` is a
// declared kind.

import (
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// randCase is one generated configuration.
type randCase struct {
	files    map[string][]byte // relative path → content; "nginx.conf" is the main file
	dirs     []string          // extra empty directories to create
	globals  string            // -g, "" for none
	includes bool              // some file is included: compare -T too
}

type gen struct {
	// keep is the byte range of nginx.conf that holds http {} and
	// stream {}: mutations stay out of it (their contents are valid by
	// construction; mailgate does not validate them)
	keep     [2]int
	r        *rand.Rand
	files    map[string][]byte
	dirs     []string
	incN     int
	includes bool
}

func (g *gen) pick(s ...string) string { return s[g.r.Intn(len(s))] }
func (g *gen) chance(p float64) bool   { return g.r.Float64() < p }

// values per kind: mostly good, some bad.
var (
	timeVals   = []string{"5s", "60", "1m", "30s", "1h", "500ms", "0", "1d", "-1", "abc", "10x", "1h30m", "5 s", "", "2147483648", "1y", "1M", "1w"}
	sizeVals   = []string{"4k", "1m", "16k", "1024", "0", "-1", "abc", "4K", "1g", "4kk", "", "1M", "8192k"}
	flagVals   = []string{"on", "off", "on", "off", "ON", "Off", "maybe", "1", ""}
	numVals    = []string{"1", "5", "10", "0", "-1", "abc", "2147483647", "99999999999999999999", "+3", "01"}
	portVals   = []string{"22110", "22143", "22025", "22587", "22993", "22995", "22465"}
	pathFiles  = []string{"test.crt", "test.key", "nosuch.pem", "inc", "/nonexistent/x.pem", "", "logs/nosuch"}
	listenAddr = []string{"127.0.0.1:%s", "%s", "[::1]:%s", "*:%s", "localhost:%s", "0.0.0.0:%s", "127.0.0.2:%s",
		"unix:/tmp/confdiff-rand.sock", "127.0.0.1:0", "127.0.0.1:65536", "256.1.1.1:%s", "127.0.0.1:", "[::1", "127.0.0.1:abc", "", "unix:"}
	listenParams = []string{"ssl", "proxy_protocol", "bind", "backlog=10", "backlog=abc", "rcvbuf=8k", "sndbuf=8k",
		"rcvbuf=x", "so_keepalive=on", "so_keepalive=off", "so_keepalive=30m::10", "so_keepalive=x", "ipv6only=on",
		"ipv6only=off", "ipv6only=x", "bogus", "ssl", "bind"}
)

type dirSpec struct {
	name string
	vals func(g *gen) []string
}

func one(vs ...string) func(g *gen) []string {
	return func(g *gen) []string { return []string{g.pick(vs...)} }
}

func some(min, max int, vs ...string) func(g *gen) []string {
	return func(g *gen) []string {
		n := min + g.r.Intn(max-min+1)
		out := make([]string, n)
		for i := range out {
			out[i] = g.pick(vs...)
		}
		return out
	}
}

// mailDirs are the directives valid in mail {} and server {} (not listen
// and protocol, which are server-only and handled by genServer).
var mailDirs = []dirSpec{
	{"auth_http", one("127.0.0.1:20080/auth", "http://127.0.0.1:20080/auth", "localhost:20080", "unix:/tmp/a.sock:/auth",
		"https://127.0.0.1/auth", "127.0.0.1:99999", "", "http://", "127.0.0.1:20080/a b", "[::1]:20080/auth", "[::1")},
	{"auth_http_timeout", one(timeVals...)},
	{"auth_http_header", func(g *gen) []string {
		switch g.r.Intn(5) {
		case 0:
			return []string{"X-Auth-Key"}
		case 1:
			return []string{"X-A", "b", "c"}
		}
		return []string{g.pick("X-Auth-Key", "X-Port", "Client-IP", ""), g.pick("secret", "$remote_addr", "", "a b")}
	}},
	{"auth_http_pass_client_cert", one(flagVals...)},
	{"imap_client_buffer", one(sizeVals...)},
	{"imap_capabilities", some(1, 4, "IMAP4rev1", "UIDPLUS", "SASL-IR", "IDLE", "\"X Y\"", "")},
	{"imap_auth", some(1, 3, "plain", "login", "cram-md5", "external", "bogus", "PLAIN", "apop")},
	{"pop3_capabilities", some(1, 3, "TOP", "USER", "UIDL", "SASL", "\"RESP-CODES\"")},
	{"pop3_auth", some(1, 3, "plain", "apop", "cram-md5", "external", "user", "bogus", "login")},
	{"smtp_client_buffer", one(sizeVals...)},
	{"smtp_greeting_delay", one(timeVals...)},
	{"smtp_capabilities", some(1, 3, "PIPELINING", "\"SIZE 10485760\"", "8BITMIME", "VRFY", "")},
	{"smtp_auth", some(1, 3, "login", "plain", "cram-md5", "external", "none", "bogus", "xclient")},
	{"timeout", one(timeVals...)},
	{"server_name", one("mx.example.org", "localhost", "", "a b", "MX.Example.ORG", "*.example.org")},
	{"error_log", func(g *gen) []string {
		v := []string{g.pick("error.log", "stderr", "logs/mail.log", "nodir/x.log", "syslog:server=127.0.0.1", "syslog:server=127.0.0.1:99999",
			"memory:1m", "memory:x", "syslog:bogus", "/dev/null", "")}
		if g.chance(0.6) {
			v = append(v, g.pick("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg", "bogus", "warn"))
		}
		if g.chance(0.1) {
			v = append(v, "info")
		}
		return v
	}},
	{"resolver", func(g *gen) []string {
		v := []string{g.pick("127.0.0.1", "off", "[::1]", "127.0.0.1:53", "localhost", "127.0.0.1:99999", "")}
		if g.chance(0.4) {
			v = append(v, g.pick("valid=30s", "valid=x", "ipv6=off", "ipv6=on", "ipv6=x", "127.0.0.2", "status_zone=z", "bogus=1"))
		}
		return v
	}},
	{"resolver_timeout", one(timeVals...)},
	{"max_errors", one(numVals...)},
	{"proxy", one(flagVals...)},
	{"proxy_buffer", one(sizeVals...)},
	{"proxy_timeout", one(timeVals...)},
	{"proxy_pass_error_message", one(flagVals...)},
	{"xclient", one(flagVals...)},
	{"proxy_smtp_auth", one(flagVals...)},
	{"proxy_protocol", one(flagVals...)},
	{"set_real_ip_from", one("127.0.0.1", "10.0.0.0/8", "unix:", "::1", "10.0.0.1/33", "bogus", "10.0.0.1/8", "::/0", "localhost", "")},
	// TLS (checks owned by tlsconf; only good values and missing files)
	{"ssl", one(flagVals...)},
	{"starttls", one("on", "off", "only", "bogus", "ON")},
	{"ssl_certificate", one(pathFiles...)},
	{"ssl_certificate_key", one(pathFiles...)},
	{"ssl_protocols", some(1, 3, "TLSv1.2", "TLSv1.3", "TLSv1", "TLSv1.1", "SSLv3", "bogus")},
	{"ssl_prefer_server_ciphers", one(flagVals...)},
	{"ssl_session_cache", some(1, 2, "off", "none", "builtin", "builtin:1000", "shared:MAIL:1m", "shared:MAIL", "bogus", "builtin:x")},
	{"ssl_session_tickets", one(flagVals...)},
	{"ssl_session_timeout", one(timeVals...)},
	{"ssl_verify_client", one("on", "off", "optional", "optional_no_ca", "bogus")},
	{"ssl_verify_depth", one(numVals...)},
	{"ssl_client_certificate", one("test.crt", "nosuch.crt")},
	{"ssl_trusted_certificate", one("test.crt", "nosuch.crt")},
	{"ssl_password_file", one("nosuch.pass")},
	{"ssl_crl", one("nosuch.crl")},
	{"ssl_dhparam", one("nosuch.dh")},
	{"ssl_session_ticket_key", one("nosuch.key")},
}

var mainDirs = []dirSpec{
	{"daemon", one(flagVals...)},
	{"master_process", one(flagVals...)},
	{"timer_resolution", one(timeVals...)},
	{"pid", one("nginx.pid", "logs/nginx.pid", "nodir/x.pid", "", "/tmp")},
	{"lock_file", one("nginx.lock", "logs/x.lock")},
	{"worker_processes", one("auto", "2", "1", "abc", "0", "-1")},
	{"debug_points", one("stop", "abort", "bogus")},
	{"user", some(1, 2, "root", "nobody", "nogroup", "nosuchuser1", "daemon")},
	{"worker_priority", one("-5", "+5", "0", "abc", "-30", "20", "-")},
	{"worker_cpu_affinity", some(1, 2, "auto", "01", "10", "abc", "0", "auto")},
	{"worker_rlimit_nofile", one(numVals...)},
	{"worker_rlimit_core", one(sizeVals...)},
	{"worker_shutdown_timeout", one(timeVals...)},
	{"working_directory", one("/tmp", "/nonexistent", "")},
	{"env", one("FOO", "FOO=bar", "TZ", "", "=x")},
	{"error_log", func(g *gen) []string {
		v := []string{g.pick("error.log", "stderr", "logs/error.log", "nodir/x.log", "syslog:server=127.0.0.1", "memory:1m", "/dev/null", "")}
		if g.chance(0.6) {
			v = append(v, g.pick("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg", "bogus"))
		}
		return v
	}},
	{"pcre_jit", one(flagVals...)},
	{"thread_pool", func(g *gen) []string {
		v := []string{g.pick("default", "pool1", "")}
		if g.chance(0.8) {
			v = append(v, g.pick("threads=4", "threads=0", "threads=x", "max_queue=10", "bogus"))
		}
		if g.chance(0.4) {
			v = append(v, g.pick("max_queue=10", "max_queue=x", "threads=2"))
		}
		return v
	}},
	{"load_module", one("modules/nosuch.so", "/usr/lib/nginx/modules/ngx_stream_module.so", "inc", "")},
}

var eventDirs = []dirSpec{
	{"worker_connections", one("1024", "512", "abc", "2", "1", "0", "4096")},
	{"use", one("epoll", "select", "poll", "kqueue", "bogus")},
	{"multi_accept", one(flagVals...)},
	{"accept_mutex", one(flagVals...)},
	{"accept_mutex_delay", one(timeVals...)},
	{"debug_connection", one("127.0.0.1", "10.0.0.0/8", "localhost", "bogus", "unix:", "::1")},
	{"epoll_events", one(numVals...)},
	{"worker_aio_requests", one(numVals...)},
}

// globalsPool are -g strings: good, bad, and broken.
var globalsPool = []string{
	"pid g.pid;", "daemon off;", "worker_processes 2;", "error_log stderr info;", "user nobody;",
	"pid g.pid", "events {}", "mail {}", "bogus on;", "pid a.pid; pid b.pid;", "include inc/*.conf;",
	"load_module nosuch.so;", "env X;", "worker_processes x;", "\"pid\" g.pid;", "daemon off; master_process off;",
	"thread_pool p threads=2;", "error_log nodir/x.log;", ";", "}", "timer_resolution 10ms;", "imap_auth plain;",
}

// oddities are hand-written grammar edge cases spliced in at a line start.
var oddities = []string{
	"server{listen 127.0.0.1:22110;protocol imap;}\n", "\"a\"\"b\";\n", "'it''s';\n", "a\"b\";\n",
	"timeout \"5s\"x;\n", "timeout 5s\n", "timeout 5s;;\n", ";\n", "}\n", "{\n", "timeout {\n}\n",
	"server_name \"a\\\"b\";\n", "server_name 'a\\'b';\n", "server_name a\\;b;\n", "server_name \"\\n\\t\\r\";\n",
	"server_name ${x};\n", "server_name $;\n", "server_name \"${\";\n", "# only a comment { } ;\n",
	"server_name \"line\nbreak\";\n", "server_name a#b;\n", "server_name \"a\" #c\n;\n", "timeout 5s # x ;\n;\n",
	"include;\n", "include a b;\n", "include \"\";\n", "include inc_dir_itself;\n", "include /dev/null;\n",
	"error_log stderr;\n", "smtp_auth login login;\n", "imap_auth plain plain cram-md5;\n",
	"auth_http_header X-A \"" + strings.Repeat("v", 1100) + "\";\n",
	"server_name " + strings.Repeat("n", 1030) + " x;\n",
	"imap_auth " + strings.Repeat("z", 1200) + ";\n",
	"smtp_capabilities \"" + strings.Repeat("C", 5000) + "\";\n",
	"listen 127.0.0.1:22110 " + strings.Repeat("p", 1100) + ";\n",
	"\ttimeout\t5s\t;\r\n", "\x00;\n", "timeout \x005s;\n", "ssl \"on\x00x\";\n",
}

// arg renders one argument, sometimes quoted or escaped the way a user
// might write it.
func (g *gen) arg(v string) string {
	if v == "" {
		return g.pick(`""`, `''`)
	}
	if g.chance(0.02) {
		// a NUL byte inside a value: nginx keeps it in the token, but
		// much of nginx reads tokens as C strings
		i := g.r.Intn(len(v) + 1)
		v = v[:i] + "\x00" + g.pick("", "x", "on", ":1", "/8") + v[i:]
	}
	needQuote := strings.ContainsAny(v, " \t;{}#\"'")
	switch {
	case needQuote || g.chance(0.08):
		q := g.pick(`"`, `'`)
		return q + strings.ReplaceAll(v, q, `\`+q) + q
	case g.chance(0.02):
		// backslash escapes outside quotes
		return strings.Replace(v, v[:1], `\`+v[:1], 1)
	}
	return v
}

func (g *gen) sep() string {
	if g.chance(0.9) {
		return " "
	}
	return g.pick("\t", "  ", "\n    ", " \t ", "\r\n")
}

// line renders "name args;" with some noise.
func (g *gen) line(indent, name string, vals []string) string {
	var b strings.Builder
	b.WriteString(indent)
	if g.chance(0.02) {
		b.WriteString(`"` + name + `"`)
	} else {
		b.WriteString(name)
	}
	for _, v := range vals {
		b.WriteString(g.sep())
		b.WriteString(g.arg(v))
	}
	if g.chance(0.03) {
		b.WriteString(" ")
	}
	b.WriteString(";")
	if g.chance(0.05) {
		b.WriteString(" # " + g.pick("comment", "a;b{c}", `"quote`, ""))
	}
	b.WriteString("\n")
	return b.String()
}

func (g *gen) directives(indent string, specs []dirSpec, n int) string {
	var b strings.Builder
	if g.chance(0.06) {
		b.WriteString(indent + g.pick(oddities...))
	}
	for i := 0; i < n; i++ {
		d := specs[g.r.Intn(len(specs))]
		l := g.line(indent, d.name, d.vals(g))
		b.WriteString(l)
		if g.chance(0.05) { // duplicate
			b.WriteString(l)
		}
	}
	return b.String()
}

// wrongContext is a directive taken from another context's table.
func (g *gen) wrongContext(indent string) string {
	all := [][]dirSpec{mainDirs, eventDirs, mailDirs}
	specs := all[g.r.Intn(len(all))]
	d := specs[g.r.Intn(len(specs))]
	switch g.r.Intn(6) {
	case 0:
		return g.line(indent, g.pick("listen", "protocol"), []string{g.pick("127.0.0.1:22110", "imap")})
	case 1:
		return indent + g.pick("server { listen 127.0.0.1:22110; }", "mail { }", "events { }", "http { }", "stream { }", "bogus { }", "location / { }") + "\n"
	case 2:
		return g.line(indent, g.pick("bogus_directive", "sendfile", "proxy_pass", "server_tokens", "ssl_stapling", "upstream"), []string{"on"})
	}
	return g.line(indent, d.name, d.vals(g))
}

func (g *gen) server(indent string) string {
	var b strings.Builder
	b.WriteString(indent + "server" + g.pick(" ", "", "\n"+indent) + "{\n")
	in := indent + "    "
	nl := 1
	if g.chance(0.2) {
		nl = g.r.Intn(3)
	}
	for i := 0; i < nl; i++ {
		addr := g.pick(listenAddr...)
		if strings.Contains(addr, "%s") {
			addr = fmt.Sprintf(addr, g.pick(portVals...))
		}
		vals := []string{addr}
		for g.chance(0.25) {
			vals = append(vals, g.pick(listenParams...))
		}
		b.WriteString(g.line(in, "listen", vals))
	}
	if g.chance(0.9) {
		b.WriteString(g.line(in, "protocol", []string{g.pick("imap", "pop3", "smtp", "imap", "pop3", "smtp", "http", "bogus", "IMAP")}))
	}
	if g.chance(0.05) {
		b.WriteString(g.line(in, "protocol", []string{g.pick("imap", "pop3", "smtp")}))
	}
	b.WriteString(g.maybeInclude(in, g.directives(in, mailDirs, g.r.Intn(4))))
	if g.chance(0.08) {
		b.WriteString(g.wrongContext(in))
	}
	b.WriteString(indent + "}\n")
	return b.String()
}

// maybeInclude moves a fragment into an included file some of the time
// and returns the text to put where it was.
func (g *gen) maybeInclude(indent, frag string) string {
	if frag == "" || !g.chance(0.15) {
		return frag
	}
	g.includes = true
	g.incN++
	switch g.r.Intn(5) {
	case 0: // glob over a directory of its own
		dir := fmt.Sprintf("inc%d", g.incN)
		g.files[dir+"/a.conf"] = []byte(frag)
		if g.chance(0.5) {
			g.files[dir+"/b.conf"] = []byte(g.directives("", mailDirs, 1))
		}
		if g.chance(0.2) {
			g.files[dir+"/.hidden.conf"] = []byte("bogus;\n")
		}
		return indent + "include " + g.pick(dir+"/*.conf", dir+"/*", dir+"/[ab].conf", dir+"/?.conf") + ";\n"
	case 1: // missing
		return indent + "include " + g.pick("nosuch.conf", "none/*.conf", "/nonexistent/x.conf", "") + ";\n" + frag
	case 2: // nested: the included file includes another
		name := fmt.Sprintf("inc%d/outer.conf", g.incN)
		inner := fmt.Sprintf("inc%d/sub/inner.conf", g.incN)
		g.files[name] = []byte("include " + inner + ";\n")
		g.files[inner] = []byte(frag)
		return indent + "include " + name + ";\n"
	}
	name := fmt.Sprintf("part%d.conf", g.incN)
	g.files[name] = []byte(frag)
	if g.chance(0.2) {
		g.files[name] = append(g.files[name], []byte(g.pick("}\n", "{\n", "\"\n", "bogus;\n", "listen"))...)
	}
	return indent + "include " + g.arg(name) + ";\n"
}

func (g *gen) config() string {
	var b strings.Builder
	if g.chance(0.9) {
		b.WriteString("pid nginx.pid;\n")
	}
	if g.chance(0.15) {
		b.WriteString("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n")
	}
	b.WriteString(g.maybeInclude("", g.directives("", mainDirs, g.r.Intn(4))))
	if g.chance(0.05) {
		b.WriteString(g.wrongContext(""))
	}
	events := g.chance(0.95)
	if events {
		b.WriteString("events {\n" + g.directives("    ", eventDirs, g.r.Intn(3)))
		if g.chance(0.05) {
			b.WriteString(g.wrongContext("    "))
		}
		b.WriteString("}\n")
		if g.chance(0.03) {
			b.WriteString("events { }\n")
		}
	}
	g.keep[0] = b.Len()
	if g.chance(0.2) {
		b.WriteString(g.pick(
			"http {\n    sendfile on;\n    default_type text/plain;\n    types { text/plain txt; }\n}\n",
			"http {\n    include inc_http.types;\n}\n",
			"http { }\n"))
		g.files["inc_http.types"] = []byte("types { text/html html; }\n")
	}
	if g.chance(0.2) {
		b.WriteString(g.pick("stream {\n    upstream u { server 127.0.0.1:1; }\n}\n", "stream { }\n"))
	}
	g.keep[1] = b.Len()
	if g.chance(0.95) {
		b.WriteString("mail" + g.pick(" ", "", "\n") + "{\n")
		b.WriteString(g.maybeInclude("    ", g.directives("    ", mailDirs, g.r.Intn(6))))
		if g.chance(0.05) {
			b.WriteString(g.wrongContext("    "))
		}
		ns := g.r.Intn(4)
		for i := 0; i < ns; i++ {
			b.WriteString(g.maybeInclude("    ", g.server("    ")))
		}
		b.WriteString("}\n")
		if g.chance(0.03) {
			b.WriteString("mail { }\n")
		}
	}
	if g.chance(0.03) {
		b.WriteString(g.directives("", mainDirs, 1))
	}
	return b.String()
}

// mutate damages the text with 1-3 random byte-level edits, none of
// them inside keep (a byte range of the original text; empty for none).
func (g *gen) mutate(s []byte, keep [2]int) []byte {
	crlf := false
	n := 1 + g.r.Intn(3)
	for i := 0; i < n; i++ {
		// a position outside keep; edits before it end at keep[0]
		outside := len(s) + 1 - (keep[1] - keep[0])
		pos := g.r.Intn(outside)
		limit := len(s)
		if keep[1] > keep[0] {
			if pos >= keep[0] {
				pos += keep[1] - keep[0]
			} else {
				limit = keep[0]
			}
		}
		before := len(s)
		var c bool
		s, c = g.edit(s, pos, limit)
		crlf = crlf || c
		switch {
		case keep[1] <= keep[0]:
		case len(s) < keep[1] && pos <= keep[0]:
			keep = [2]int{} // truncated before or at the kept range
		case pos < keep[0]:
			keep[0] += len(s) - before
			keep[1] += len(s) - before
		}
	}
	if crlf {
		// CRLF line ends everywhere (nginx reads CR as white space)
		s = []byte(strings.ReplaceAll(string(s), "\n", "\r\n"))
	}
	return s
}

// edit applies one random edit at pos; deleted and copied ranges end at
// limit. It reports whether the line ends are to become CRLF.
func (g *gen) edit(s []byte, pos, limit int) ([]byte, bool) {
	ins := func(t string) { s = append(s[:pos:pos], append([]byte(t), s[pos:]...)...) }
	switch g.r.Intn(12) {
	case 0, 1:
		ins(g.pick(`"`, `'`, "{", "}", ";", `\`, "#", "$", "`", "\n", " ", "{}", "};", `\"`, "${", "\\\n"))
	case 2, 3: // delete a range
		end := pos + 1 + g.r.Intn(20)
		if end > limit {
			end = limit
		}
		if end > pos {
			s = append(s[:pos:pos], s[end:]...)
		}
	case 4: // repeat a range
		end := pos + g.r.Intn(30)
		if end > limit {
			end = limit
		}
		ins(string(s[pos:end]))
	case 5: // very long token
		ins(strings.Repeat(g.pick("a", "x", "\""), g.pick4000()))
	case 6:
		ins("\x00")
	case 7:
		ins(g.pick("\xff\xfe", "\xc3\x28", "é", "\xe2\x80\xa8", "\x01", "\x7f"))
	case 8:
		return s, true
	case 9:
		ins("\t")
	case 10: // replace one byte
		if pos < limit {
			s[pos] = byte(g.r.Intn(256))
		}
	case 11: // truncate
		s = s[:pos]
	}
	return s, false
}

func (g *gen) pick4000() int {
	return []int{4095, 4096, 4097, 5000, 10000, 3000}[g.r.Intn(6)]
}

// corpusBases are the corpus cases a random configuration may start
// from: those without extra arguments and without http {} or stream {}
// (whose contents nginx validates and mailgate does not). Read once.
var corpusBases = sync.OnceValue(func() []map[string][]byte {
	ents, err := os.ReadDir("cases")
	if err != nil {
		return nil
	}
	blockRE := regexp.MustCompile(`(^|[\s;{}])(http|stream)\s*\{`)
	// not the cases of declared differences (DIFFERENCES.md) or the
	// TLS file cases (checked by their own engineer)
	skip := map[string]bool{}
	if b, err := os.ReadFile("DIFFERENCES.md"); err == nil {
		for _, m := range regexp.MustCompile("(?m)^- (?:superset )?`([A-Za-z0-9_.-]+)`").FindAllSubmatch(b, -1) {
			skip[string(m[1])] = true
		}
	}
	var out []map[string][]byte
	for _, e := range ents {
		if skip[e.Name()] || strings.HasPrefix(e.Name(), "sslfile") && !*randomSSLFile {
			continue
		}
		dir := filepath.Join("cases", e.Name())
		if _, err := os.Stat(filepath.Join(dir, "args")); err == nil {
			continue
		}
		files := map[string][]byte{}
		ok := true
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil || blockRE.Match(b) {
				ok = false
				return nil
			}
			rel, _ := filepath.Rel(dir, path)
			files[rel] = b
			return nil
		})
		if ok && files["nginx.conf"] != nil {
			out = append(out, files)
		}
	}
	return out // ReadDir sorts: the same seed picks the same case
})

// genCase makes configuration number i of a seeded run: a generated
// file or, one time in five, a corpus case, mutated some of the time.
func genCase(seed int64, i int) randCase {
	g := &gen{r: rand.New(rand.NewSource(seed*1_000_003 + int64(i))), files: map[string][]byte{}}
	var main []byte
	if bases := corpusBases(); len(bases) > 0 && g.chance(0.2) {
		for name, data := range bases[g.r.Intn(len(bases))] {
			g.files[name] = append([]byte(nil), data...)
		}
		main = g.files["nginx.conf"]
		g.includes = len(g.files) > 1
		if g.chance(0.8) {
			main = g.mutate(main, [2]int{})
		}
	} else {
		main = []byte(g.config())
		if g.chance(*randomMutate) {
			main = g.mutate(main, g.keep)
		}
	}
	g.files["nginx.conf"] = main
	names := make([]string, 0, len(g.files))
	for name := range g.files {
		names = append(names, name)
	}
	sort.Strings(names) // map order must not change what a seed makes
	for _, name := range names {
		if name != "nginx.conf" && name != "inc_http.types" && g.chance(0.1) {
			g.files[name] = g.mutate(g.files[name], [2]int{})
		}
	}
	// logs/ always exists (for pid directives naming it); without a pid
	// directive nginx (Debian) opens /run/nginx.pid and mailgate
	// /run/mailgate.pid, a declared difference (docs/compat-config.md)
	g.dirs = append(g.dirs, "logs")
	c := randCase{files: g.files, includes: g.includes}
	if g.chance(0.2) {
		c.globals = g.pick(globalsPool...)
		if g.chance(0.2) {
			c.globals += g.pick(globalsPool...)
		}
	}
	if g.chance(0.05) {
		g.dirs = append(g.dirs, "inc_dir_itself")
	}
	c.dirs = g.dirs
	return c
}
