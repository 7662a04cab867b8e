package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runArgs runs the command in-process and returns exit code and outputs.
func runArgs(argv ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(argv, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionHelpAndOptionErrors(t *testing.T) {
	tests := []struct {
		argv   []string
		code   int
		stderr string // exact, unless prefix is set
		prefix bool
		absent string
	}{
		{argv: []string{"nginx", "-v"}, code: 0, stderr: "nginx version: mailgate/" + version + "\n"},
		{argv: []string{"/usr/local/bin/mailgate", "-v"}, code: 0, stderr: "mailgate version: mailgate/" + version + "\n"},
		{argv: []string{"nginx", "-x"}, code: 1, stderr: "nginx: invalid option: \"x\"\n"},
		{argv: []string{"mailgate", "-c"}, code: 1, stderr: "mailgate: option \"-c\" requires file name\n"},
		{argv: []string{"mailgate", "bogus"}, code: 1, stderr: "mailgate: invalid option: \"bogus\"\n"},
		{argv: []string{"nginx", "-s", "restart"}, code: 1, stderr: "nginx: invalid option: \"-s restart\"\n"},
		{argv: []string{"nginx", "-h"}, code: 0, prefix: true, absent: "Commands:",
			stderr: "nginx version: mailgate/" + version + "\nUsage: nginx [-?hvVtTq] [-s signal] [-p prefix]\n" +
				"             [-e filename] [-c filename] [-g directives]\n\nOptions:\n  -?,-h         : this help\n"},
		{argv: []string{"mailgate", "-?"}, code: 0, prefix: true,
			stderr: "mailgate version: mailgate/" + version + "\nUsage: mailgate [-?hvVtTq] [-s signal] [-p prefix]\n" +
				"                [-e filename] [-c filename] [-g directives]\n"},
		{argv: []string{"mailgate", "-V"}, code: 0, prefix: true,
			stderr: "mailgate version: mailgate/" + version + "\nbuilt with go"},
	}
	for _, tc := range tests {
		code, out, errs := runArgs(tc.argv...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.argv, code, tc.code)
		}
		if out != "" {
			t.Errorf("%v: unexpected stdout %q", tc.argv, out)
		}
		if tc.prefix && !strings.HasPrefix(errs, tc.stderr) || !tc.prefix && errs != tc.stderr {
			t.Errorf("%v: stderr\n%q\nwant\n%q", tc.argv, errs, tc.stderr)
		}
		if tc.absent != "" && strings.Contains(errs, tc.absent) {
			t.Errorf("%v: stderr contains %q", tc.argv, tc.absent)
		}
	}
	code, _, errs := runArgs("mailgate", "-V")
	if code != 0 || !strings.Contains(errs, "compatible with nginx/1.22.1") {
		t.Errorf("-V lacks the compatibility line: %q", errs)
	}
	if !strings.Contains(errs, " --pid-path=/run/mailgate.pid\n") {
		t.Errorf("-V lacks the default pid file: %q", errs)
	}
}

// TestHelp: "help" and "--help" print one page with every nginx flag and
// every subcommand, on stdout; each flag it lists is accepted; "help
// check" is check's page; started as nginx, "--help" stays nginx's error.
func TestHelp(t *testing.T) {
	for _, argv := range [][]string{{"mailgate", "help"}, {"mailgate", "--help"}, {"/usr/sbin/mailgate", "help", "help"}} {
		code, out, errs := runArgs(argv...)
		if code != 0 || errs != "" {
			t.Errorf("%v: exit %d, stderr %q", argv, code, errs)
		}
		for _, want := range []string{"Usage: mailgate [-?hvVtTq] [-s signal] [-p prefix]", "-?,-h ", "-v ", "-V ", "-t ", "-T ", "-q ",
			"-s signal ", "-p prefix ", "-e filename ", "-c filename ", "-g directives ", "Commands:", "mailgate check ", "mailgate help "} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: no %q in\n%s", argv, want, out)
			}
		}
	}
	// Every flag the page lists is one the command line takes.
	_, page, _ := runArgs("mailgate", "help")
	for _, m := range regexp.MustCompile(`(?m)^  (-[^ ,]+)`).FindAllStringSubmatch(page, -1) {
		args := []string{"mailgate", m[1]}
		if m[1] == "-s" || m[1] == "-p" || m[1] == "-e" || m[1] == "-c" || m[1] == "-g" {
			continue // these take a value; parseFlags' own tests cover them
		}
		if _, err := parseFlags(args[1:]); err != nil {
			t.Errorf("help lists %s, which is refused: %v", m[1], err)
		}
	}
	code, out, _ := runArgs("mailgate", "help", "check")
	if code != 0 || !strings.Contains(out, "--format") || !strings.Contains(out, "--effective") {
		t.Errorf("help check: exit %d\n%s", code, out)
	}
	code, _, errs := runArgs("mailgate", "help", "bogus")
	if code != 2 || !strings.Contains(errs, `no help for "bogus"`) {
		t.Errorf("help bogus: exit %d, stderr %q", code, errs)
	}
	code, out, errs = runArgs("nginx", "--help")
	if code != 1 || out != "" || errs != "nginx: invalid option: \"-\"\n" {
		t.Errorf("nginx --help: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// writeFiles creates files (name → content) under a new temp dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var stampRE = regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[([a-z]+)\] (\d+)#(\d+): `)

// unstamp replaces error_log prefixes by "[level] " after checking that
// the pid in them is ours.
func unstamp(t *testing.T, s string) string {
	t.Helper()
	for _, m := range stampRE.FindAllStringSubmatch(s, -1) {
		if m[2] != strconv.Itoa(os.Getpid()) || m[3] != m[2] {
			t.Errorf("log line pid %s#%s, want %d#%d", m[2], m[3], os.Getpid(), os.Getpid())
		}
	}
	return stampRE.ReplaceAllString(s, "[$1] ")
}

func TestTestConfig(t *testing.T) {
	good := "pid nginx.pid;\nevents {}\n"
	tests := []struct {
		name   string
		files  map[string]string
		args   []string
		code   int
		stderr string // after unstamp, with D for the directory
		stdout string
	}{
		{name: "ok", files: map[string]string{"nginx.conf": good}, args: []string{"-t"}, code: 0,
			stderr: "mg: the configuration file D/nginx.conf syntax is ok\nmg: configuration file D/nginx.conf test is successful\n"},
		{name: "quiet", files: map[string]string{"nginx.conf": good}, args: []string{"-tq"}, code: 0},
		{name: "dump", files: map[string]string{"nginx.conf": "include a.conf;\nevents {}\n", "a.conf": "pid x.pid;"},
			args: []string{"-T", "-q"}, code: 0,
			stdout: "# configuration file D/nginx.conf:\ninclude a.conf;\nevents {}\n\n# configuration file D/a.conf:\npid x.pid;\n"},
		{name: "error", files: map[string]string{"nginx.conf": good + "\nbogus_directive on;\n"}, args: []string{"-t"}, code: 1,
			stderr: "[emerg] unknown directive \"bogus_directive\" in D/nginx.conf:4\nmg: configuration file D/nginx.conf test failed\n"},
		{name: "error quiet dump", files: map[string]string{"nginx.conf": good + "}\n"}, args: []string{"-Tq"}, code: 1,
			stderr: "[emerg] unexpected \"}\" in D/nginx.conf:3\nmg: configuration file D/nginx.conf test failed\n"},
		{name: "globals", files: map[string]string{"nginx.conf": good}, args: []string{"-t", "-g", "pid y.pid;"}, code: 1,
			stderr: "[emerg] \"pid\" directive is duplicate in D/nginx.conf:1\nmg: configuration file D/nginx.conf test failed\n"},
		{name: "pid dir missing", files: map[string]string{"nginx.conf": "pid nodir/x.pid;\nevents {}\n"}, args: []string{"-t"}, code: 1,
			stderr: "mg: the configuration file D/nginx.conf syntax is ok\n[emerg] open() \"D/nodir/x.pid\" failed (2: No such file or directory)\nmg: configuration file D/nginx.conf test failed\n"},
		{name: "missing conf", files: map[string]string{}, args: []string{"-t"}, code: 1,
			stderr: "[emerg] open() \"D/nginx.conf\" failed (2: No such file or directory)\nmg: configuration file D/nginx.conf test failed\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			argv := append([]string{"/bin/mg"}, tc.args...)
			argv = append(argv, "-p", dir, "-c", "nginx.conf", "-e", "stderr")
			code, out, errs := runArgs(argv...)
			errs = strings.ReplaceAll(unstamp(t, errs), dir, "D")
			out = strings.ReplaceAll(out, dir, "D")
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if errs != tc.stderr {
				t.Errorf("stderr\n%s\nwant\n%s", errs, tc.stderr)
			}
			if out != tc.stdout {
				t.Errorf("stdout\n%q\nwant\n%q", out, tc.stdout)
			}
		})
	}
}

// TestTestCreatesPidFile checks that -t creates the pid file empty and
// leaves an existing one alone, as nginx does.
func TestTestCreatesPidFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"nginx.conf": "pid run.pid;\nevents {}\n"})
	if code, _, errs := runArgs("mg", "-tq", "-p", dir, "-c", "nginx.conf", "-e", "stderr"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "run.pid"))
	if err != nil || len(b) != 0 {
		t.Fatalf("pid file after -t: %q, %v; want empty file", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.pid"), []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runArgs("mg", "-tq", "-p", dir, "-c", "nginx.conf", "-e", "stderr")
	if b, _ := os.ReadFile(filepath.Join(dir, "run.pid")); string(b) != "42\n" {
		t.Fatalf("-t changed an existing pid file to %q", b)
	}
}

// TestErrorLogFile checks the -e file form: the file gets timestamped
// lines, stderr gets "<prog>: [level] msg" for warn and worse.
func TestErrorLogFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"nginx.conf": "pid nginx.pid;\nevents {}\nbogus;\n"})
	code, _, errs := runArgs("nginx", "-t", "-p", dir, "-c", "nginx.conf", "-e", "err.log")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	want := "nginx: [emerg] unknown directive \"bogus\" in " + dir + "/nginx.conf:3\n" +
		"nginx: configuration file " + dir + "/nginx.conf test failed\n"
	if errs != want {
		t.Errorf("stderr\n%s\nwant\n%s", errs, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "err.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := unstamp(t, string(b)); got != "[emerg] unknown directive \"bogus\" in "+dir+"/nginx.conf:3\n" {
		t.Errorf("error log %q", got)
	}
}

func TestSignalProcess(t *testing.T) {
	conf := "pid nginx.pid;\nevents {}\n"
	t.Run("sends", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"nginx.conf": conf})
		child := exec.Command("sleep", "30")
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		defer child.Process.Kill()
		pidText := strconv.Itoa(child.Process.Pid) + "\n"
		if err := os.WriteFile(filepath.Join(dir, "nginx.pid"), []byte(pidText), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errs := runArgs("mg", "-s", "stop", "-p", dir, "-c", "nginx.conf", "-e", "stderr")
		if code != 0 || unstamp(t, errs) != "[notice] signal process started\n" {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		done := make(chan error, 1)
		go func() { done <- child.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
				t.Fatalf("child ended with %v, want SIGTERM", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("child did not get the signal")
		}
	})
	tests := []struct {
		name, pid, want string
	}{
		{"missing", "", "[error] open() \"D/nginx.pid\" failed (2: No such file or directory)\n"},
		{"garbage", "garbage\n", "[error] invalid PID number \"garbage\" in \"D/nginx.pid\"\n"},
		{"empty", "\n", "[error] invalid PID number \"\" in \"D/nginx.pid\"\n"},
		{"dead", "999999999\n", "[alert] kill(999999999, 1) failed (3: No such process)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"nginx.conf": conf}
			if tc.pid != "" {
				files["nginx.pid"] = tc.pid
			}
			dir := writeFiles(t, files)
			code, _, errs := runArgs("mg", "-s", "reload", "-p", dir, "-c", "nginx.conf", "-e", "stderr")
			got := strings.ReplaceAll(unstamp(t, errs), dir, "D")
			want := "[notice] signal process started\n" + tc.want
			if code != 1 || got != want {
				t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, got, want)
			}
		})
	}
	t.Run("bad config", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"nginx.conf": conf + "bogus;\n"})
		code, _, errs := runArgs("mg", "-s", "reload", "-p", dir, "-c", "nginx.conf", "-e", "stderr")
		got := strings.ReplaceAll(unstamp(t, errs), dir, "D")
		if code != 1 || got != "[emerg] unknown directive \"bogus\" in D/nginx.conf:3\n" {
			t.Errorf("exit %d, stderr %q", code, got)
		}
	})
}

func TestCheckCommand(t *testing.T) {
	conf := "pid nginx.pid;\nevents {}\nmail {\n  server {\n    listen 127.0.0.1:20143;\n    protocol imap;\n    timeout 5s;\n  }\n}\n"
	dir := writeFiles(t, map[string]string{"nginx.conf": conf})

	code, out, errs := runArgs("mg", "check", "-p", dir, "-c", "nginx.conf", "--format", "json", "--effective")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (no auth_http); stderr %q", code, errs)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if rep.OK || rep.Errors < 1 || rep.ConfigFile != dir+"/nginx.conf" {
		t.Fatalf("report %+v", rep)
	}
	found := false
	for _, d := range rep.Diagnostics {
		if d.Message == `no "auth_http" is defined for server` && d.Severity == "emerg" && d.Line == 4 {
			found = true
		}
	}
	if !found {
		t.Errorf("auth_http error missing from %+v", rep.Diagnostics)
	}

	good := strings.Replace(conf, "timeout 5s;", "timeout 5s;\n    auth_http 127.0.0.1:20080/auth;", 1)
	dir = writeFiles(t, map[string]string{"nginx.conf": good})
	code, out, errs = runArgs("mg", "check", "-p", dir, "-c", "nginx.conf", "--format=json", "--effective")
	if code != 0 {
		t.Fatalf("exit %d on a good config: %s %s", code, out, errs)
	}
	rep = checkReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Servers) != 1 {
		t.Fatalf("report %+v", rep)
	}
	s := rep.Servers[0]
	if s.Protocol != "imap" || s.Line != 4 || len(s.Listen) != 1 || s.Listen[0] != "127.0.0.1:20143" {
		t.Errorf("server %+v", s)
	}
	settings := map[string]checkSetting{}
	for _, st := range s.Settings {
		settings[st.Directive] = st
	}
	if st := settings["timeout"]; st.Value != "5s" || st.Origin != "config" || st.Line != 7 {
		t.Errorf("timeout setting %+v", st)
	}
	if st := settings["proxy_timeout"]; st.Value != "1d" || st.Origin != "default" {
		t.Errorf("proxy_timeout setting %+v", st)
	}

	code, out, _ = runArgs("mg", "check", "-p", dir, "-c", "nginx.conf")
	if code != 0 || !strings.Contains(out, "check ok: 0 error(s)") {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "nginx.pid")); !os.IsNotExist(err) {
		t.Errorf("check created the pid file (%v); it must not change anything", err)
	}

	// The files -t would fail to open are errors for check too.
	dir = writeFiles(t, map[string]string{"nginx.conf": strings.Replace(good, "pid nginx.pid;", "pid nodir/nginx.pid;", 1)})
	code, out, _ = runArgs("mg", "check", "-p", dir, "-c", "nginx.conf")
	if want := `[emerg] open() "` + dir + `/nodir/nginx.pid" failed (2: No such file or directory)`; code != 1 || !strings.Contains(out, want) {
		t.Errorf("missing pid directory: exit %d, output\n%s\nwant a line with %s", code, out, want)
	}
	for _, args := range [][]string{{"--format", "yaml"}, {"--bogus"}, {"stray"}} {
		code, _, errs := runArgs(append([]string{"mg", "check", "-p", dir}, args...)...)
		if code != 2 || errs == "" {
			t.Errorf("check %v: exit %d, stderr %q; want usage error 2", args, code, errs)
		}
	}
}

func TestMsDurAndSize(t *testing.T) {
	durs := map[time.Duration]string{0: "0s", 500 * time.Millisecond: "500ms", 90 * time.Second: "90s",
		5 * time.Minute: "5m", 24 * time.Hour: "1d", 3 * time.Hour: "3h"}
	for d, want := range durs {
		if got := msDur(d); got != want {
			t.Errorf("msDur(%v) = %q, want %q", d, got, want)
		}
	}
	sizes := map[int]string{0: "0", 100: "100", 4096: "4k", 1 << 20: "1m", 1500: "1500"}
	for n, want := range sizes {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRelativePrefix: with -p relative, the messages name the file
// relative to the working directory, once prefixed, as nginx does.
func TestRelativePrefix(t *testing.T) {
	dir := writeFiles(t, map[string]string{"rel/nginx.conf": "pid nginx.pid;\nevents {}\n"})
	t.Chdir(dir)
	code, _, errs := runArgs("nginx", "-t", "-p", "rel", "-c", "nginx.conf", "-e", "stderr")
	want := "nginx: the configuration file rel/nginx.conf syntax is ok\nnginx: configuration file rel/nginx.conf test is successful\n"
	if code != 0 || errs != want {
		t.Fatalf("exit %d, stderr\n%s\nwant\n%s", code, errs, want)
	}
}
