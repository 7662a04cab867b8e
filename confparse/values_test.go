package confparse

import (
	"strings"
	"testing"
	"time"

	"mailgate/mail/ngx"
)

func TestParseTime(t *testing.T) {
	const day = 24 * 3600
	tests := []struct {
		in    string
		isSec bool
		want  int64
		ok    bool
	}{
		{"0", false, 0, true},
		{"60", false, 60000, true},
		{"500ms", false, 500, true},
		{"1h30m", false, 5400000, true},
		{"1h 30m", false, 5400000, true},
		{"1h30", false, 3630000, true}, // trailing digits are seconds
		{"1d2h3m4s5ms", false, (day+2*3600+3*60+4)*1000 + 5, true},
		{"2w", false, 14 * day * 1000, true},
		{"1y", false, 0, false},    // y only with second resolution
		{"1M", false, 0, false},    // M likewise
		{"1m1h", false, 0, false},  // units out of order
		{"1s1s", false, 0, false},  // unit twice
		{"-1s", false, 0, false},   // no sign
		{"", false, 0, false},      // empty
		{"s", false, 0, false},     // no digits
		{"1x", false, 0, false},    // unknown unit
		{"1ms1s", false, 0, false}, // ms is the last unit
		{"1 h", false, 0, false},   // a bare number then a space is seconds: then "h" is out of order
		{"1y", true, 365 * day, true},
		{"1M", true, 30 * day, true},
		{"1y1M1w1d", true, 365*day + 30*day + 7*day + day, true},
		{"5m", true, 300, true},
		{"500ms", true, 0, false}, // no ms with second resolution
		{"9223372036854775807", true, 9223372036854775807, true},
		{"9223372036854775808", true, 0, false},
		{"9223372036854775807", false, 0, false}, // ×1000 overflows
		{"106751991167d", true, 106751991167 * day, true},
		{"999999999999999999w", true, 0, false},
	}
	for _, tc := range tests {
		got, ok := parseTime(tc.in, tc.isSec)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseTime(%q, %v) = %d, %v; want %d, %v", tc.in, tc.isSec, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSizeOffsetNumber(t *testing.T) {
	tests := []struct {
		fn   func(string) (int64, bool)
		name string
		in   string
		want int64
		ok   bool
	}{
		{parseSize, "size", "0", 0, true},
		{parseSize, "size", "4096", 4096, true},
		{parseSize, "size", "4k", 4096, true},
		{parseSize, "size", "4K", 4096, true},
		{parseSize, "size", "1m", 1 << 20, true},
		{parseSize, "size", "1M", 1 << 20, true},
		{parseSize, "size", "1g", 0, false},
		{parseSize, "size", "k", 0, false},
		{parseSize, "size", "", 0, false},
		{parseSize, "size", "-1", 0, false},
		{parseSize, "size", "1.5k", 0, false},
		{parseSize, "size", "9223372036854775807k", 0, false},
		{parseOffset, "offset", "1g", 1 << 30, true},
		{parseOffset, "offset", "2G", 2 << 30, true},
		{parseOffset, "offset", "1t", 0, false},
		{ngx.Atoi[string], "number", "123", 123, true},
		{ngx.Atoi[string], "number", "+1", 0, false},
		{ngx.Atoi[string], "number", "", 0, false},
		{ngx.Atoi[string], "number", "1 ", 0, false},
		{ngx.Atoi[string], "number", "9223372036854775807", 9223372036854775807, true},
		{ngx.Atoi[string], "number", "9223372036854775808", 0, false},
	}
	for _, tc := range tests {
		got, ok := tc.fn(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s(%q) = %d, %v; want %d, %v", tc.name, tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`plain`, "plain"},
		{`a\"b`, `a"b`},
		{`a\'b`, `a'b`},
		{`a\\b`, `a\b`},
		{`a\tb\rc\nd`, "a\tb\rc\nd"},
		{`a\xb`, `a\xb`}, // other escapes keep both characters
		{`a\ b`, `a\ b`},
		{`trailing\`, `trailing\`},
		{`\\\"`, `\"`},
	}
	for _, tc := range tests {
		if got := unescape([]byte(tc.raw)); got != tc.want {
			t.Errorf("unescape(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// TestTokens checks the tokenizer on nginx's grammar: the words each
// directive ends up with.
func TestTokens(t *testing.T) {
	tests := []struct {
		in   string
		want [][]string // words per top-level directive
	}{
		{`a b c;`, [][]string{{"a", "b", "c"}}},
		{`a "b c" 'd e';`, [][]string{{"a", "b c", "d e"}}},
		{`a "x\"y" 'p\'q';`, [][]string{{"a", `x"y`, `p'q`}}},
		{"a \"multi\nline\";", [][]string{{"a", "multi\nline"}}},
		{`a b#c; # comment ; }`, [][]string{{"a", "b#c"}}},
		{`a 1\;2;`, [][]string{{"a", `1\;2`}}}, // an escaped ';' does not end the directive
		{"a `x`;", [][]string{{"a", "`x`"}}},   // a backtick is no quote
		{`a ${x}y;`, [][]string{{"a", "${x}y"}}},
		{`a x"y'z;`, [][]string{{"a", `x"y'z`}}},
		{`a \{b;`, [][]string{{"a", `\{b`}}},
		{`a x\ y;`, [][]string{{"a", `x\ y`}}},
		{`"a")b;`, [][]string{{"a", ")b"}}},
		{"a;b;", [][]string{{"a"}, {"b"}}},
	}
	for _, tc := range tests {
		nodes := parseData([]byte(tc.in), "/t.conf", false)
		var got [][]string
		for _, n := range nodes {
			if n.syntax != nil {
				t.Errorf("%q: syntax error %s", tc.in, n.syntax.Msg)
				continue
			}
			got = append(got, n.words)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if strings.Join(got[i], "\x00") != strings.Join(tc.want[i], "\x00") {
				t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
			}
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"a;\n}", `unexpected "}" in /t.conf:2`},
		{"a {\n b }\n}", `unexpected "}" in /t.conf:2`},
		{"a {\n", `unexpected end of file, expecting "}" in /t.conf:2`},
		{"a b", `unexpected end of file, expecting ";" or "}" in /t.conf:1`},
		{"a \"b;\n\n", `unexpected end of file, expecting ";" or "}" in /t.conf:3`},
		{"\n;", `unexpected ";" in /t.conf:2`},
		{"{", `unexpected "{" in /t.conf:1`},
		{`a "b"c;`, `unexpected "c" in /t.conf:1`},
		{"a '" + strings.Repeat("x", 5000), `too long parameter, probably missing terminating "'" character in /t.conf:1`},
		{"a\n" + strings.Repeat("y", 5000), `too long parameter "yyyyyyyyyy..." started in /t.conf:2`},
	}
	for _, tc := range tests {
		nodes := parseData([]byte(tc.in), "/t.conf", false)
		var d *Diag
		var walk func([]*node)
		walk = func(ns []*node) {
			for _, n := range ns {
				if n.syntax != nil {
					d = n.syntax
				}
				walk(n.children)
			}
		}
		walk(nodes)
		if d == nil {
			t.Errorf("%q: no error", tc.in)
			continue
		}
		if d.String() != tc.msg {
			t.Errorf("%q: %q, want %q", tc.in, d.String(), tc.msg)
		}
	}
}

func TestCmdlineSyntax(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"daemon off", `unexpected end of parameter, expecting ";" in command line`},
		{"events {}", `block directives are not supported in -g option in command line`},
		{"}", `unexpected "}" in command line`},
	}
	for _, tc := range tests {
		nodes := parseData([]byte(tc.in), "", true)
		if len(nodes) == 0 || nodes[len(nodes)-1].syntax == nil {
			t.Errorf("%q: no error", tc.in)
			continue
		}
		if got := nodes[len(nodes)-1].syntax.String(); got != tc.msg {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.msg)
		}
	}
}

// TestDirectiveValueMessages checks nginx's value errors through Load.
func TestDirectiveValueMessages(t *testing.T) {
	tests := []struct{ mail, msg string }{
		{"timeout 1y;", `"timeout" directive invalid value`},
		{"timeout 1s;\ntimeout 2s;", `"timeout" directive is duplicate`},
		{"max_errors -1;", `"max_errors" directive invalid number`},
		{"proxy_buffer 1g;", `"proxy_buffer" directive invalid value`},
		{"xclient yes;", `invalid value "yes" in "xclient" directive, it must be "on" or "off"`},
		{"starttls maybe;", `invalid value "maybe"`},
		{"smtp_auth apop;", `invalid value "apop"`},
		{"proxy_protocol v3;", `invalid value "v3"`},
		{"ssl_verify_client sometimes;", `invalid value "sometimes"`},
		{"ssl_protocols TLSv1.4;", `invalid value "TLSv1.4"`},
		{"ssl_session_cache shared:x;", `invalid session cache "shared:x"`},
		{"ssl_session_cache builtin:x;", `invalid session cache "builtin:x"`},
		{"ssl_session_cache shared:x:16k;", `session cache "shared:x:16k" is too small`},
		{"resolver 127.0.0.1 valid=1x;", `invalid parameter: valid=1x`},
		{"resolver 127.0.0.1 ipv6=maybe;", `invalid parameter: ipv6=maybe`},
		{"resolver 127.0.0.1 ipv4=off ipv6=off;", `"ipv4" and "ipv6" cannot both be "off"`},
		{"resolver 127.0.0.1:0;", `invalid port in resolver "127.0.0.1:0"`},
		{"resolver off;\nresolver off;", `"resolver" directive is duplicate`},
		{"error_log x.log loud;", `invalid log level "loud"`},
		{"error_log x.log debug_mail warn;", `duplicate log level "warn"`},
		{"error_log x.log warn debug_mail;", `invalid log level "debug_mail"`},
		{"error_log memory:1k;", `invalid buffer size "1k"`},
		{"set_real_ip_from 10.0.0.0/33;", `host not found in set_real_ip_from "10.0.0.0/33"`},
		{"ssl_password_file /nonexistent/pw;", `open() "/nonexistent/pw" failed (2: No such file or directory)`},
		{"server { protocol smtps; }", `unknown protocol "smtps"`},
		{"server { listen 127.0.0.1:27001 reuseport; }", `invalid parameter "reuseport"`},
		{"server { listen 127.0.0.1:27001 backlog=x; }", `invalid backlog "backlog=x"`},
		{"server { listen 127.0.0.1:27001 sndbuf=1g; }", `invalid sndbuf "sndbuf=1g"`},
		{"server { listen 127.0.0.1:27001 so_keepalive=0:0:0; }", `invalid so_keepalive value: "0:0:0"`},
		{"server { listen 127.0.0.1:27001 so_keepalive=1:2:x; }", `invalid so_keepalive value: "1:2:x"`},
		{"server { listen [::1]:70000; }", `invalid port in "[::1]:70000" of the "listen" directive`},
		{"server { listen []:25; }", `no host in "[]:25" of the "listen" directive`},
		{"server { listen 127.0.0.1:; }", `invalid port in "127.0.0.1:" of the "listen" directive`},
		{"server { listen :25; }", `no host in ":25" of the "listen" directive`},
		{"server { listen unix:/" + strings.Repeat("x", 120) + "; }", `too long path in the unix domain socket in "unix:/` + strings.Repeat("x", 120) + `" of the "listen" directive`},
	}
	for _, tc := range tests {
		_, _, err := loadString(t, "events {}\nmail {\n"+tc.mail+"\n}\n", nil)
		if err == nil {
			t.Errorf("%q: no error", tc.mail)
			continue
		}
		if got := err.(*Error).Msg; got != tc.msg {
			t.Errorf("%q:\n got %q\nwant %q", tc.mail, got, tc.msg)
		}
	}
}

func TestFlagValue(t *testing.T) {
	for _, v := range []string{"on", "ON", "On"} {
		if b, d := flagValue("x", v); !b || d != nil {
			t.Errorf("%q", v)
		}
	}
	if b, d := flagValue("x", "oFF"); b || d != nil {
		t.Errorf("oFF")
	}
	if _, d := flagValue("daemon", "1"); d == nil || d.Msg != `invalid value "1" in "daemon" directive, it must be "on" or "off"` {
		t.Errorf("bad flag: %+v", d)
	}
	if msDuration(1<<62) != time.Duration(1<<63-1) {
		t.Errorf("msDuration does not saturate")
	}
}

func TestParseIPv4LikeNginx(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = invalid
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127..0.1", "127.0.0.1"},
		{"...", "0.0.0.0"},
		{"1.2.3.", "1.2.3.0"},
		{"010.1.1.1", "10.1.1.1"},
		{"1.2.3", ""},
		{"1.2.3.4.5", ""},
		{"256.1.1.1", ""},
		{"1.2.3.a", ""},
		{"", ""},
	}
	for _, tc := range tests {
		a, ok := ngx.InetAddr(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("parseIPv4(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestInetAton(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.00.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"1.2.65535", "1.2.255.255"},
		{"1.2.65536", ""},
		{"08.1.1.1", ""},
		{"1.2.3.4.5", ""},
		{"localhost", ""},
		{"1..2", ""},
		{"0x", ""},
	}
	for _, tc := range tests {
		a, ok := inetAton(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("inetAton(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
