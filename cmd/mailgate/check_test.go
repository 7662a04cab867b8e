package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailgate/confparse"
)

func TestSplitPos(t *testing.T) {
	tests := []struct {
		in   confparse.Diag
		want confparse.Diag
	}{
		{confparse.Diag{Msg: `no "auth_http" is defined for server in /etc/nginx/nginx.conf:12`},
			confparse.Diag{Msg: `no "auth_http" is defined for server`, Pos: confparse.Pos{File: "/etc/nginx/nginx.conf", Line: 12}}},
		{confparse.Diag{Msg: `unknown directive "foo" in command line`},
			confparse.Diag{Msg: `unknown directive "foo"`, Pos: confparse.Pos{CmdLine: true}}},
		{confparse.Diag{Msg: `no "events" section in configuration`},
			confparse.Diag{Msg: `no "events" section in configuration`}},
		{confparse.Diag{Msg: "x in /a:3", Pos: confparse.Pos{File: "/b", Line: 1}},
			confparse.Diag{Msg: "x in /a:3", Pos: confparse.Pos{File: "/b", Line: 1}}},
		{confparse.Diag{Msg: "relative in a.conf:3"}, confparse.Diag{Msg: "relative in a.conf:3"}},
	}
	for _, tc := range tests {
		if got := splitPos(tc.in); got != tc.want {
			t.Errorf("splitPos(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzSplitPos(f *testing.F) {
	f.Add("no \"listen\" is defined for server in /x/nginx.conf:5")
	f.Add("a in command line")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, msg string) {
		d := splitPos(confparse.Diag{Msg: msg})
		if d.Pos.CmdLine {
			if d.Msg+" in command line" != msg {
				t.Fatalf("command line split lost text: %q -> %q", msg, d.Msg)
			}
			return
		}
		if d.Pos.File == "" {
			if d.Msg != msg {
				t.Fatalf("unsplit message changed: %q -> %q", msg, d.Msg)
			}
			return
		}
		if !strings.HasPrefix(msg, d.Msg+" in "+d.Pos.File+":") {
			t.Fatalf("split %q into %+v", msg, d)
		}
	})
}

func TestJoinWords(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"PIPELINING", "SIZE 10240000", "8BITMIME"}, `PIPELINING "SIZE 10240000" 8BITMIME`},
		{[]string{`a"b`, `c\d`, ""}, `"a\"b" "c\\d" ""`},
		{nil, ""},
	}
	for _, tc := range tests {
		if got := joinWords(tc.in); got != tc.want {
			t.Errorf("joinWords(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestCheckNginx: --nginx lists exactly the lines nginx 1.22.1 would
// refuse, in nginx's words, and exits 1; without such lines it exits 0.
func TestCheckNginx(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := "events {}\nmail {\n    auth_http 127.0.0.1:9000;\n    server {\n        listen 127.0.0.1:11143;\n        protocol imap;\n%s    }\n}\n"
	write(fmt.Sprintf(base, "        ssl_certificate_compression off;\n        proxy_protocol v2;\n"))
	code, out, _ := runArgs("mg", "check", "-p", dir, "-c", "nginx.conf", "--nginx")
	want := dir + "/nginx.conf:7: [emerg] unknown directive \"ssl_certificate_compression\"\n" +
		dir + "/nginx.conf:8: [emerg] invalid value \"v2\" in \"proxy_protocol\" directive, it must be \"on\" or \"off\"\n" +
		"mg: nginx 1.22.1 would refuse 2 line(s) of " + dir + "/nginx.conf\n"
	if code != 1 || out != want {
		t.Errorf("check --nginx: exit %d, output\n%s\nwant exit 1,\n%s", code, out, want)
	}
	// A configuration error is refused by nginx too, and listed once.
	write(fmt.Sprintf(base, "        timeout x;\n"))
	code, out, _ = runArgs("mg", "check", "-p", dir, "-c", "nginx.conf", "--nginx")
	if code != 1 || !strings.Contains(out, `nginx.conf:7: [emerg] "timeout" directive invalid value`) {
		t.Errorf("check --nginx with an error: exit %d\n%s", code, out)
	}
	write(fmt.Sprintf(base, ""))
	code, out, _ = runArgs("mg", "check", "-p", dir, "-c", "nginx.conf", "--nginx")
	if code != 0 || out != "mg: nginx 1.22.1 accepts every line of "+dir+"/nginx.conf that mailgate accepts\n" {
		t.Errorf("check --nginx on a portable file: exit %d\n%s", code, out)
	}
}
