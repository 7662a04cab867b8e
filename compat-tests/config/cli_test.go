package configcompat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommandLineAgainstNginx runs the same command lines through nginx
// and through mailgate started as "nginx" (a symlink), and compares exit
// codes and output. Only command lines that cannot start a server are
// listed: each has -t, -s, or an option error.
func TestCommandLineAgainstNginx(t *testing.T) {
	nginx := findNginx(t)
	work := t.TempDir()
	link := filepath.Join(work, "link", "nginx")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildMailgate(t, work), link); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(work, "p")
	files := map[string]string{
		"nginx.conf": "pid nginx.pid;\nevents {}\ninclude mail.inc;\n",
		"mail.inc":   "mail {\n    auth_http 127.0.0.1:20080/auth;\n    pop3_auth plain plain;\n    server {\n        listen 127.0.0.1:20110;\n    }\n}\n",
		"bad.conf":   "pid nginx.pid;\nevents {}\nmail {\n    server {\n        listen 127.0.0.1:20143;\n    }\n}\n",
	}
	for name, content := range files {
		if err := os.MkdirAll(prefix, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(prefix, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load := "load_module " + mailModule + ";"
	P := prefix
	tests := []struct {
		args []string
		// firstLineDiffers: -v/-h print mailgate's own version line.
		firstLineDiffers bool
		// onlyRC: -V's build details legitimately differ.
		onlyRC bool
		// noLoad: an option error; nginx gets no extra -g (it would be
		// taken as the missing argument).
		noLoad bool
	}{
		{args: []string{"-t", "-p", P, "-c", "nginx.conf", "-e", "stderr"}},
		{args: []string{"-T", "-p", P, "-c", "nginx.conf", "-e", "stderr"}},
		{args: []string{"-tq", "-p", P, "-c", "nginx.conf", "-e", "stderr"}},
		{args: []string{"-qT", "-p" + P, "-cnginx.conf", "-estderr"}},
		{args: []string{"-t", "-p", P, "-c", "bad.conf", "-e", "stderr"}},
		{args: []string{"-Tq", "-p", P, "-c", "bad.conf", "-e", "stderr"}},
		{args: []string{"-t", "-p", P, "-c", "bad.conf", "-e", "err.log"}},
		{args: []string{"-t", "-p", P, "-c", "nginx.conf", "-e", "nodir/err.log"}},
		{args: []string{"-t", "-p", P, "-c", "missing.conf", "-e", "stderr"}},
		{args: []string{"-t", "-p", P + "/nonexist", "-c", "nginx.conf", "-e", "stderr"}},
		{args: []string{"-t", "-p", P, "-c", "nginx.conf", "-e", "stderr", "-g", "pid other.pid;"}},
		{args: []string{"-t", "-p", P, "-c", "nginx.conf", "-e", "stderr", "-g", "worker_processes 2"}},
		{args: []string{"-s", "stop", "-p", P, "-c", "nginx.conf", "-e", "stderr"}},
		{args: []string{"-squit", "-p", P, "-c", "nginx.conf"}},
		{args: []string{"-s", "reopen", "-p", P, "-c", "nginx.conf", "-e", "sig.log"}},
		{args: []string{"-s", "reload", "-p", P, "-c", "bad.conf", "-e", "stderr"}},
		{args: []string{"-t", "-s", "reload", "-p", P, "-c", "nginx.conf", "-e", "stderr"}},
		{args: []string{"-x"}, noLoad: true},
		{args: []string{"-tx"}, noLoad: true},
		{args: []string{"foo"}, noLoad: true},
		{args: []string{"-c"}, noLoad: true},
		{args: []string{"-t", "-p"}, noLoad: true},
		{args: []string{"-e"}, noLoad: true},
		{args: []string{"-g"}, noLoad: true},
		{args: []string{"-s"}, noLoad: true},
		{args: []string{"-s", "restart"}, noLoad: true},
		{args: []string{"-sRELOAD"}, noLoad: true},
		{args: []string{"-h"}, firstLineDiffers: true},
		{args: []string{"-?"}, firstLineDiffers: true},
		{args: []string{"-v"}, firstLineDiffers: true},
		{args: []string{"-vt", "-p", P, "-c", "nginx.conf", "-e", "stderr"}, firstLineDiffers: true},
		{args: []string{"-V"}, onlyRC: true},
	}
	for _, tc := range tests {
		name := strings.Join(tc.args, " ")
		nargs := tc.args
		if !tc.noLoad {
			nargs = withGlobals(tc.args, load)
		}
		n := runCLI(t, nginx, nargs, prefix)
		m := runCLI(t, link, tc.args, prefix)
		if n.code != m.code {
			t.Errorf("%s: exit nginx %d, mailgate %d\nnginx:\n%s\nmailgate:\n%s", name, n.code, m.code, n.stderr, m.stderr)
			continue
		}
		if tc.onlyRC {
			continue
		}
		ns, ms := n.stderr, m.stderr
		if tc.firstLineDiffers {
			ns, ms = dropFirstLine(ns), dropFirstLine(ms)
		}
		if ns != ms || n.stdout != m.stdout {
			t.Errorf("%s: output differs\nnginx stderr:\n%s\nmailgate stderr:\n%s\nnginx stdout:\n%s\nmailgate stdout:\n%s",
				name, n.stderr, m.stderr, n.stdout, m.stdout)
		}
	}
}

// withGlobals gives nginx the mail module: merged into the command line's
// -g, or added at the end.
func withGlobals(args []string, load string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "-g" {
			out[i+1] = load + out[i+1]
			return out
		}
	}
	return append(out, "-g", load)
}

func dropFirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// runCLI runs bin in dir, removing the pid file first so -s and -t start
// from the same state, and normalises the output.
func runCLI(t *testing.T, bin string, args []string, prefix string) result {
	t.Helper()
	os.Remove(filepath.Join(prefix, "nginx.pid"))
	os.Remove(filepath.Join(prefix, "err.log"))
	os.Remove(filepath.Join(prefix, "sig.log"))
	stdout, stderr, code, err := runProgram(prefix, 20*time.Second, bin, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	errs := stderr
	for _, log := range []string{"err.log", "sig.log"} {
		if b, err := os.ReadFile(filepath.Join(prefix, log)); err == nil {
			errs += "--- " + log + " ---\n" + string(b)
		}
	}
	return result{code: code, stdout: normalise(stdout, prefix), stderr: normalise(errs, prefix)}
}
