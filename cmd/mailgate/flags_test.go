package main

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want options
		err  string
	}{
		{name: "none", args: nil, want: options{}},
		{name: "lone dash", args: []string{"-"}, want: options{}},
		{name: "test", args: []string{"-t"}, want: options{test: true}},
		{name: "combined tq", args: []string{"-tq"}, want: options{test: true, quiet: true}},
		{name: "dump", args: []string{"-T"}, want: options{test: true, dump: true}},
		{name: "help", args: []string{"-?"}, want: options{showVersion: true, showHelp: true}},
		{name: "help h", args: []string{"-h"}, want: options{showVersion: true, showHelp: true}},
		{name: "configure", args: []string{"-V"}, want: options{showVersion: true, showConfigure: true}},
		{name: "version and test", args: []string{"-vt"}, want: options{showVersion: true, test: true}},
		{name: "conf attached", args: []string{"-cfile.conf"},
			want: options{confFile: "file.conf", confSet: true}},
		{name: "conf separate", args: []string{"-c", "file.conf"},
			want: options{confFile: "file.conf", confSet: true}},
		{name: "flags then attached arg", args: []string{"-tqcx.conf"},
			want: options{test: true, quiet: true, confFile: "x.conf", confSet: true}},
		{name: "arg may start with dash", args: []string{"-c", "-t"},
			want: options{confFile: "-t", confSet: true}},
		{name: "all values", args: []string{"-p", "/pre", "-e", "stderr", "-g", "pid x;", "-sreload"},
			want: options{prefix: "/pre", prefixSet: true, errorLog: "stderr", errorLogSet: true,
				globals: "pid x;", globalsSet: true, signal: "reload"}},
		{name: "empty prefix", args: []string{"-p", ""}, want: options{prefix: "", prefixSet: true}},
		{name: "signal separate", args: []string{"-s", "quit"}, want: options{signal: "quit"}},
		{name: "later flag wins", args: []string{"-c", "a", "-c", "b"}, want: options{confFile: "b", confSet: true}},

		{name: "unknown letter", args: []string{"-x"}, err: `invalid option: "x"`},
		{name: "unknown after good", args: []string{"-tx"}, err: `invalid option: "x"`},
		{name: "bare word", args: []string{"foo"}, err: `invalid option: "foo"`},
		{name: "empty word", args: []string{""}, err: `invalid option: ""`},
		{name: "word after flags", args: []string{"-t", "stop"}, err: `invalid option: "stop"`},
		{name: "c needs file", args: []string{"-c"}, err: `option "-c" requires file name`},
		{name: "e needs file", args: []string{"-e"}, err: `option "-e" requires file name`},
		{name: "p needs dir", args: []string{"-t", "-p"}, err: `option "-p" requires directory name`},
		{name: "g needs parameter", args: []string{"-g"}, err: `option "-g" requires parameter`},
		{name: "s needs parameter", args: []string{"-s"}, err: `option "-s" requires parameter`},
		{name: "bad signal", args: []string{"-s", "restart"}, err: `invalid option: "-s restart"`},
		{name: "bad attached signal", args: []string{"-sRELOAD"}, err: `invalid option: "-s RELOAD"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags(tc.args)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestResolvePaths(t *testing.T) {
	tests := []struct {
		args []string
		want [3]string // prefix, confFile, errorLog
	}{
		{nil, [3]string{defaultPrefix, defaultConfFile, "stderr"}},
		{[]string{"-p", "/srv/x"}, [3]string{"/srv/x/", defaultConfFile, "stderr"}},
		{[]string{"-p", "/srv/x/", "-c", "a.conf"}, [3]string{"/srv/x/", "/srv/x/a.conf", "stderr"}},
		{[]string{"-p", "/srv/x", "-c", "./a.conf"}, [3]string{"/srv/x/", "/srv/x/./a.conf", "stderr"}},
		{[]string{"-c", "main.conf"}, [3]string{defaultPrefix, defaultPrefix + "main.conf", "stderr"}},
		{[]string{"-c", "/etc/a.conf", "-p", "/p"}, [3]string{"/p/", "/etc/a.conf", "stderr"}},
		{[]string{"-p", "/p", "-e", "logs/e.log"}, [3]string{"/p/", defaultConfFile, "/p/logs/e.log"}},
		{[]string{"-e", "/var/e.log"}, [3]string{defaultPrefix, defaultConfFile, "/var/e.log"}},
		{[]string{"-e", "stderr", "-p", "rel"}, [3]string{"rel/", defaultConfFile, "stderr"}},
		{[]string{"-p", "", "-c", "a.conf"}, [3]string{"", "a.conf", "stderr"}},
	}
	for _, tc := range tests {
		o, err := parseFlags(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		p := o.resolve()
		if got := [3]string{p.prefix, p.confFile, p.errorLog}; got != tc.want {
			t.Errorf("%v: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestParsePid(t *testing.T) {
	tests := []struct {
		in   string
		pid  int
		okay bool
	}{
		{"123\n", 123, true},
		{"123", 123, true},
		{"123\r\n", 123, true},
		{"123\n\n", 123, true},
		{"", 0, false},
		{"\n", 0, false},
		{"garbage\n", 0, false},
		{"-1\n", 0, false},
		{" 12\n", 0, false},
		{"12 \n", 0, false},
		{"0\n", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tc := range tests {
		pid, ok := parsePid([]byte(tc.in))
		if pid != tc.pid || ok != tc.okay {
			t.Errorf("parsePid(%q) = %d, %v; want %d, %v", tc.in, pid, ok, tc.pid, tc.okay)
		}
	}
}

func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{"-t", "-tq -c x", "-s reload", "-sstop", "-g 'pid x;'", "-x", "foo", "-c", "-p /a -e stderr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		o, err := parseFlags(args)
		if (o == nil) == (err == nil) {
			t.Fatalf("exactly one of options and error must be set: %v %v", o, err)
		}
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "invalid option: ") && !strings.HasPrefix(msg, "option \"-") {
				t.Fatalf("unexpected error text %q", msg)
			}
			return
		}
		if o.signal != "" {
			if _, ok := signals[o.signal]; !ok {
				t.Fatalf("accepted unknown signal %q", o.signal)
			}
		}
		p := o.resolve()
		if p.prefix != "" && !strings.HasSuffix(p.prefix, "/") {
			t.Fatalf("prefix %q lacks trailing slash", p.prefix)
		}
	})
}

func FuzzParsePid(f *testing.F) {
	for _, s := range []string{"123\n", "garbage", "", "0", "\r\n", "2147483647", "2147483648"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, ok := parsePid(b)
		if !ok {
			if pid != 0 {
				t.Fatalf("rejected input returned pid %d", pid)
			}
			return
		}
		if pid <= 0 {
			t.Fatalf("accepted non-positive pid %d from %q", pid, b)
		}
		if got := strconv.Itoa(pid); got != strings.TrimLeft(strings.TrimRight(string(b), "\r\n"), "0") {
			t.Fatalf("pid %d does not round-trip %q", pid, b)
		}
	})
}

// TestConfArgKeepsRelative checks that the -c value goes to confparse as
// given, so a relative prefix is not applied twice.
func TestConfArgKeepsRelative(t *testing.T) {
	o, err := parseFlags([]string{"-p", "rel", "-c", "nginx.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if p := o.resolve(); p.confArg != "nginx.conf" || p.confFile != "rel/nginx.conf" {
		t.Fatalf("confArg %q, confFile %q", p.confArg, p.confFile)
	}
	if p := (&options{}).resolve(); p.confArg != defaultConfFile {
		t.Fatalf("default confArg %q", p.confArg)
	}
}
