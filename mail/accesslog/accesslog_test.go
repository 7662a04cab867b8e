package accesslog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
)

func TestEscapes(t *testing.T) {
	for _, c := range []struct{ in, def, json string }{
		{"alice", "alice", "alice"},
		{`a"b\c`, `a\x22b\x5Cc`, `a\"b\\c`},
		{"a\r\nb\tc\x00\x1f", `a\x0D\x0Ab\x09c\x00\x1F`, `a\r\nb\tc\u0000\u001f`},
		{"\x7f~ ", `\x7F~ `, "\x7f~ "},
		{"é", `\xC3\xA9`, "é"},
		{"\b\f", `\x08\x0C`, `\b\f`},
	} {
		if got := string(AppendEscaped(nil, c.in)); got != c.def {
			t.Errorf("default %q: %q, want %q", c.in, got, c.def)
		}
		if got := string(AppendJSON(nil, c.in)); got != c.json {
			t.Errorf("json %q: %q, want %q", c.in, got, c.json)
		}
	}
}

// A JSON-escaped value is a valid JSON string that decodes to the value
// (for valid UTF-8), and the default escaping leaves only printable ASCII
// without quotes or backslashes but those of its escapes.
func FuzzEscapes(f *testing.F) {
	for _, s := range []string{"", "alice", `"\`, "\x00\x7f\xff", "é\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := AppendEscaped(nil, s)
		for i := 0; i < len(d); i++ {
			c := d[i]
			if c < 0x20 || c > 0x7e || c == '"' {
				t.Fatalf("%q: default escaping left %q", s, c)
			}
			if c == '\\' && (i+3 >= len(d) || d[i+1] != 'x') {
				t.Fatalf("%q: stray backslash in %q", s, d)
			}
		}
		j := AppendJSON([]byte{'"'}, s)
		j = append(j, '"')
		var back string
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, j, err)
		}
		if strings.ToValidUTF8(s, "\uFFFD") == s && back != s {
			t.Fatalf("%q: JSON round trip gave %q", s, back)
		}
	})
}

func record() *mail.SessionRecord {
	start := time.Date(2026, 12, 7, 21, 16, 2, 500e6, time.FixedZone("", 3600))
	return &mail.SessionRecord{
		ID: 42, Protocol: "imap", ClientIP: "192.0.2.7", Client: netip.MustParseAddrPort("192.0.2.7:51234"),
		Local: netip.MustParseAddrPort("[::ffff:10.0.0.1]:993"), Listen: "0.0.0.0:993",
		Login: `al"ice`, AuthStatus: "OK", Outcome: mail.LoginOK, Upstream: "10.0.0.5:143",
		BytesSent: 10, BytesReceived: 20, UpstreamBytesSent: 30, UpstreamBytesReceived: 40, UpstreamTried: true,
		Start: start, End: start.Add(1234567 * time.Microsecond), EndReason: mail.EndClientClosed, Status: 200,
		TLSProtocol: "TLSv1.3", TLSCipher: "TLS_AES_128_GCM_SHA256",
	}
}

// format compiles a log_format through confparse, as a configuration
// would; cond, if not "", is an access_log if= condition, returned too.
func format(t *testing.T, escape confparse.LogEscape, f string, cond ...string) (*confparse.LogFormat, []confparse.LogOp) {
	t.Helper()
	esc := [...]string{"default", "json", "none"}[escape]
	line := "access_log /dev/null t;"
	if len(cond) > 0 {
		line = "access_log /dev/null t 'if=" + cond[0] + "';"
	}
	_, cfg, _ := setFor(t, "log_format t escape="+esc+" '"+f+"';\n"+line)
	l := cfg.Mail.Servers[0].AccessLogs[0]
	return l.Format, l.If
}

func TestLine(t *testing.T) {
	v := &env{hostname: "mx", pid: "77"}
	r := record()
	all := ""
	for _, n := range confparse.AccessLogVariables {
		all += n + "=$" + n + " "
	}
	got := string(v.appendLine(nil, fmtOnly(format(t, confparse.EscapeDefault, all)), r))
	want := `remote_addr=192.0.2.7 remote_port=51234 server_addr=10.0.0.1 server_port=993 protocol=imap ` +
		`login=al\x22ice auth_status=OK upstream_addr=10.0.0.5:143 bytes_sent=10 bytes_received=20 ` +
		`upstream_bytes_sent=30 upstream_bytes_received=40 session_time=1.234 status=200 end_reason=client_closed ` +
		`ssl_protocol=TLSv1.3 ssl_cipher=TLS_AES_128_GCM_SHA256 time_local=07/Dec/2026:21:16:03 +0100 ` +
		`time_iso8601=2026-12-07T21:16:03+01:00 msec=1796674563.734 connection=42 hostname=mx pid=77 `
	if got != want {
		t.Errorf("line\n%s\nwant\n%s", got, want)
	}

	// Missing values: "-" by default, nothing in json and none.
	r = record()
	r.Login, r.AuthStatus, r.Upstream, r.UpstreamTried, r.TLSProtocol, r.TLSCipher = "", "", "", false, "", ""
	f := "[$login][$auth_status][$upstream_addr][$upstream_bytes_sent][$ssl_protocol][$ssl_cipher]"
	if got := string(v.appendLine(nil, fmtOnly(format(t, confparse.EscapeDefault, f)), r)); got != "[-][-][-][-][-][-]" {
		t.Errorf("missing, default: %q", got)
	}
	for _, e := range []confparse.LogEscape{confparse.EscapeJSON, confparse.EscapeNone} {
		if got := string(v.appendLine(nil, fmtOnly(format(t, e, f)), r)); got != "[][][][][][]" {
			t.Errorf("missing, escape %d: %q", e, got)
		}
	}
	r.Login = "a\"\\\n"
	if got := string(v.appendLine(nil, fmtOnly(format(t, confparse.EscapeJSON, `{"login":"$login"}`)), r)); got != `{"login":"a\"\\\n"}` {
		t.Errorf("json: %q", got)
	}
	if got := string(v.appendLine(nil, fmtOnly(format(t, confparse.EscapeNone, "$login")), r)); got != "a\"\\\n" {
		t.Errorf("none: %q", got)
	}
}

func fmtOnly(f *confparse.LogFormat, _ []confparse.LogOp) *confparse.LogFormat { return f }

func TestCondition(t *testing.T) {
	v := &env{}
	r := record()
	for _, c := range []struct {
		cond string
		want bool
	}{{"$login", true}, {"0", false}, {"", false}, {"$auth_status", true}, {"x$ssl_protocol", true}, {"${login}0", true}} {
		_, ops := format(t, confparse.EscapeDefault, "x", c.cond)
		if ops == nil {
			t.Fatalf("if=%s: no condition", c.cond)
		}
		if got := v.condition(ops, r); got != c.want {
			t.Errorf("if=%s: %v", c.cond, got)
		}
	}
	r.Login = ""
	_, ops := format(t, confparse.EscapeDefault, "x", "$login")
	if v.condition(ops, r) {
		t.Error("if=$login with no login logged")
	}
	if !v.condition(nil, r) {
		t.Error("no if= did not log")
	}
}

// setFor loads a configuration with the given mail{} directives.
func setFor(t *testing.T, body string) (*Set, *confparse.Config, *[]string) {
	t.Helper()
	dir := t.TempDir()
	conf := "events {}\nmail {\n auth_http 127.0.0.1:9/a;\n" + body +
		"\n server { listen 127.0.0.1:27143; protocol imap; }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := confparse.Load(confparse.Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var errs []string
	s, err := Open(cfg, func(l errlog.Level, msg string) { mu.Lock(); errs = append(errs, msg); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, cfg, &errs
}

func rec(cfg *confparse.Config, login string) *mail.SessionRecord {
	r := record()
	r.Conf = cfg.Mail.Servers[0]
	r.Login = login
	return r
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Buffered lines reach the file when the buffer fills, when flush=
// passes, at reopen and at close, as nginx's.
func TestBuffering(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/a.log"
	s, cfg, errs := setFor(t, "log_format f '$login';\naccess_log "+p+" f buffer=16 flush=200ms;\naccess_log "+dir+"/b.log f if=$login;")
	s.LogSession(rec(cfg, "aaaaaa")) // 7 bytes
	s.LogSession(rec(cfg, "bbbbbb")) // 14
	if got := read(t, p); got != "" {
		t.Fatalf("written before the buffer filled: %q", got)
	}
	if got := read(t, dir+"/b.log"); got != "aaaaaa\nbbbbbb\n" {
		t.Fatalf("unbuffered log %q", got)
	}
	s.LogSession(rec(cfg, "cccccc")) // does not fit: the first two go
	if got := read(t, p); got != "aaaaaa\nbbbbbb\n" {
		t.Fatalf("after overflow %q", got)
	}
	s.LogSession(rec(cfg, strings.Repeat("x", 20))) // larger than the buffer: flush, then written alone
	if got := read(t, p); got != "aaaaaa\nbbbbbb\ncccccc\n"+strings.Repeat("x", 20)+"\n" {
		t.Fatalf("long line %q", got)
	}
	s.LogSession(rec(cfg, "dd"))
	time.Sleep(400 * time.Millisecond)
	if got := read(t, p); !strings.HasSuffix(got, "x\ndd\n") {
		t.Fatalf("flush= did not write: %q", got)
	}
	s.LogSession(rec(cfg, "ee"))
	s.LogSession(rec(cfg, "")) // if=$login: not in b.log
	// USR1: the buffer goes to the old file, new lines to the new one.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p+".1"); !strings.HasSuffix(got, "dd\nee\n-\n") {
		t.Fatalf("old file after reopen %q", got)
	}
	s.LogSession(rec(cfg, "ff"))
	s.Close()
	if got := read(t, p); got != "ff\n" {
		t.Fatalf("new file %q", got)
	}
	if got := read(t, dir+"/b.log"); got != "aaaaaa\nbbbbbb\ncccccc\n"+strings.Repeat("x", 20)+"\ndd\nee\nff\n" {
		t.Fatalf("if= log %q", got)
	}
	s.LogSession(rec(cfg, "gg")) // after Close: nothing, and no panic
	if len(*errs) != 0 {
		t.Fatalf("errors %q", *errs)
	}
}

// gzip: each flush is a gzip member; the file reads back with zcat.
func TestGzip(t *testing.T) {
	p := t.TempDir() + "/a.log.gz"
	s, cfg, _ := setFor(t, "log_format f '$login';\naccess_log "+p+" f gzip=9 buffer=8;")
	for _, l := range []string{"one", "two", "three"} {
		s.LogSession(rec(cfg, l))
	}
	s.Close()
	f, _ := os.Open(p)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if string(b) != "one\ntwo\nthree\n" {
		t.Fatalf("gunzipped %q", b)
	}
}

// A log that cannot be written loses the line and says so once a
// minute, and the session goes on.
func TestWriteFailure(t *testing.T) {
	s, cfg, errs := setFor(t, "log_format f '$login';\naccess_log /dev/full f;")
	s.LogSession(rec(cfg, "a"))
	s.LogSession(rec(cfg, "b"))
	if len(*errs) != 1 || !strings.Contains((*errs)[0], `write() to "/dev/full" failed (28: No space left on device)`) {
		t.Fatalf("errors %q", *errs)
	}
}

func TestOpenFailure(t *testing.T) {
	dir := t.TempDir()
	conf := "events {}\nmail {\n auth_http 127.0.0.1:9/a;\nlog_format f x;\naccess_log " + dir + "/no/such/dir.log f;\n" +
		" server { listen 127.0.0.1:27143; protocol imap; }\n}\n"
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	cfg, err := confparse.Load(confparse.Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(cfg, nil)
	if err == nil || err.Error() != `open() "`+dir+`/no/such/dir.log" failed (2: No such file or directory)` {
		t.Fatalf("error %v", err)
	}
}

// syslog: one datagram per line with nginx's header.
func TestSyslog(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, cfg, _ := setFor(t, "log_format f 'login=$login';\naccess_log syslog:server="+pc.LocalAddr().String()+",facility=mail,severity=notice,tag=mg f;")
	s.LogSession(rec(cfg, "alice"))
	buf := make([]byte, 512)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	// mail (2) * 8 + notice (5)
	if !strings.HasPrefix(got, "<21>Dec  7 21:16:03 ") || !strings.HasSuffix(got, " mg: login=alice") {
		t.Fatalf("datagram %q", got)
	}
	if bytes.Contains(buf[:n], []byte("\n")) {
		t.Fatalf("newline in %q", got)
	}
}
