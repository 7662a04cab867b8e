package main

import (
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
