// Package migratecompat tests `mailgate migrate` and `mailgate check
// --nginx` against the real nginx 1.22.1: the halves migrate writes must
// pass nginx -t (the nginx half) and mailgate -t (the mailgate half), and
// every line check --nginx names must be one nginx refuses, with the
// message check printed.
//
// Fixtures (fixtures/*) have the shapes of Debian's stock nginx.conf (with
// its sample mail{} block enabled), Mailu's nginx.conf, BlueMind's
// mail-proxy include and a layout where mail shares files with other
// blocks. Paths are relative and ports are test ports so they run
// anywhere; each is copied with a throwaway certificate and a "modules"
// link to /usr/lib/nginx/modules (Debian's prefix has the same link).
package migratecompat

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/compat-tests/harness"
	"mailgate/confparse"
)

const (
	nginxBin     = "/usr/sbin/nginx"
	mailModule   = "/usr/lib/nginx/modules/ngx_mail_module.so"
	streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"
)

func needNginx(t *testing.T) {
	t.Helper()
	for _, f := range []string{nginxBin, mailModule, streamModule} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("nginx 1.22.1 with its mail and stream modules is needed (apt-get install nginx-core libnginx-mod-mail libnginx-mod-stream): %v", err)
		}
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// buildMailgate builds mailgate once per test process, without -race
// even when the tests run with it: these tests run the binary as a
// command several hundred times, which a race-enabled build makes about
// ten times slower (6 minutes instead of 40 s), and the server's races
// are the harness's business. $MAILGATE_BIN overrides it.
func buildMailgate(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("MAILGATE_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailgate-migrate-test")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "mailgate")
		if out, err := exec.Command("go", "build", "-o", buildPath, "../../cmd/mailgate").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// run runs a program and returns its combined output and exit code.
func run(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	timer := time.AfterFunc(60*time.Second, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("running %s: %v", bin, err)
	}
	return string(out), 0
}

// copyTree copies regular files and symbolic links.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			os.Remove(target)
			return os.Symlink(link, target)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		os.Remove(target) // may be a link the copy replaces
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// prepare copies a configuration directory into a new prefix with what
// the fixtures expect around them.
func prepare(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, src, dir)
	crt, key := harness.SelfSigned("mail.example.test")
	os.WriteFile(filepath.Join(dir, "test.crt"), []byte(crt), 0o644)
	os.WriteFile(filepath.Join(dir, "test.key"), []byte(key), 0o600)
	if _, err := os.Lstat(filepath.Join(dir, "modules")); err != nil {
		os.Symlink("/usr/lib/nginx/modules", filepath.Join(dir, "modules"))
	}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "html"), 0o755)
	return dir
}

func load(t *testing.T, prefix, conf string) *confparse.Config {
	t.Helper()
	cfg, err := confparse.Load(confparse.Options{Prefix: prefix + "/", ConfFile: conf, Hostname: "mx", Trace: true})
	if err != nil {
		t.Fatalf("loading %s: %v", conf, err)
	}
	return cfg
}

func isMail(e confparse.TraceEntry) bool {
	return e.Context == "mail" || strings.HasPrefix(e.Context, "mail ") || (e.Context == "" && e.Words[0] == "mail")
}

func isMailModule(e confparse.TraceEntry) bool {
	return e.Context == "" && e.Words[0] == "load_module" && strings.HasSuffix(e.Words[1], "ngx_mail_module.so")
}

func traceText(es []confparse.TraceEntry, keep func(confparse.TraceEntry) bool) string {
	var b strings.Builder
	for _, e := range es {
		if keep(e) {
			b.WriteString(e.Context + "|" + strings.Join(e.Words, " ") + "\n")
		}
	}
	return b.String()
}

// checkHalves asserts what a migration of src installed in inst must
// give: nginx -t and mailgate -t pass on their halves, the nginx half
// reads every directive of the source but mail in the same order, the
// mailgate half reads the same mail{}, and every line of a rewritten
// file is still in that file or in mailgate.conf.
func checkHalves(t *testing.T, mailgate, src, inst, out, nginxGlobals string) {
	t.Helper()
	args := []string{"-t", "-p", inst + "/", "-c", "nginx.conf"}
	if nginxGlobals != "" {
		args = append(args, "-g", nginxGlobals)
	}
	if text, code := run(t, nginxBin, args...); code != 0 {
		t.Errorf("nginx -t on the nginx half: exit %d\n%s", code, text)
	}
	if text, code := run(t, mailgate, "-t", "-p", inst+"/", "-c", "mailgate.conf"); code != 0 || !strings.Contains(text, "test is successful") {
		t.Errorf("mailgate -t on the mailgate half: exit %d\n%s", code, text)
	}
	// The mailgate half is still nginx's language: nginx with its mail
	// module reads it too (a way back).
	if text, code := run(t, nginxBin, "-t", "-p", inst+"/", "-c", "mailgate.conf", "-g", "load_module "+mailModule+";"); code != 0 {
		t.Errorf("nginx -t on the mailgate half: exit %d\n%s", code, text)
	}
	s := load(t, src, "nginx.conf")
	n := load(t, inst, "nginx.conf")
	m := load(t, inst, "mailgate.conf")
	if n.Mail != nil {
		t.Errorf("the nginx half still has mail{} at %s", n.Mail.Pos)
	}
	if got := traceText(n.Trace, isMailModule); got != "" {
		t.Errorf("the nginx half still loads the mail module: %s", got)
	}
	notMail := func(e confparse.TraceEntry) bool { return !isMail(e) && !isMailModule(e) }
	if a, b := traceText(s.Trace, notMail), traceText(n.Trace, notMail); a != b {
		t.Errorf("the nginx half reads other directives than the source:\n--- source\n%s--- nginx half\n%s", a, b)
	}
	if a, b := traceText(s.Trace, isMail), traceText(m.Trace, isMail); a != b || a == "" {
		t.Errorf("the mailgate half reads another mail{}:\n--- source\n%s--- mailgate half\n%s", a, b)
	}
	mg, err := os.ReadFile(filepath.Join(out, "mailgate.conf"))
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "mailgate.conf" {
			return err
		}
		rel, _ := filepath.Rel(out, path)
		orig, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Errorf("%s was written but is not a file of the source: %v", rel, err)
			return nil
		}
		now, _ := os.ReadFile(path)
		for _, line := range strings.Split(string(orig), "\n") {
			if strings.Contains(line, "ngx_mail_module.so") {
				continue
			}
			if !strings.Contains(string(now), line) && !strings.Contains(string(mg), line) {
				t.Errorf("%s: the line %q is in neither half", rel, line)
			}
		}
		return nil
	})
}

func TestMigrateFixtures(t *testing.T) {
	needNginx(t)
	mailgate := buildMailgate(t)
	for _, name := range []string{"debian", "mailu", "bluemind", "mixed"} {
		t.Run(name, func(t *testing.T) {
			src := prepare(t, filepath.Join("fixtures", name))
			if text, code := run(t, nginxBin, "-t", "-p", src+"/", "-c", "nginx.conf"); code != 0 {
				t.Fatalf("the fixture itself fails nginx -t:\n%s", text)
			}
			out := filepath.Join(t.TempDir(), "out")
			migrateArgs := []string{"migrate", "-p", src + "/", "-c", "nginx.conf", "--pid", src + "/logs/mailgate.pid", "--error-log", src + "/logs/mailgate.log"}
			text, code := run(t, mailgate, append(migrateArgs, "--out", out)...)
			if code != 0 {
				t.Fatalf("migrate: exit %d\n%s", code, text)
			}
			if !strings.Contains(text, nginxBin+" -T accepts the nginx half and reads the same files") {
				t.Errorf("migrate did not run nginx -t itself:\n%s", text)
			}
			inst := t.TempDir()
			copyTree(t, src, inst)
			copyTree(t, out, inst)
			checkHalves(t, mailgate, src, inst, out, "")

			// --diff writes nothing, and the diff, applied with patch(1)
			// to another copy, gives the same files.
			src2 := prepare(t, filepath.Join("fixtures", name))
			args2 := []string{"migrate", "-p", src2 + "/", "-c", "nginx.conf", "--pid", src + "/logs/mailgate.pid", "--error-log", src + "/logs/mailgate.log", "--diff"}
			diff, code := run(t, mailgate, args2...)
			if code != 0 {
				t.Fatalf("migrate --diff: exit %d\n%s", code, diff)
			}
			if _, err := os.Stat(filepath.Join(src2, "mailgate.conf")); err == nil {
				t.Fatal("--diff wrote mailgate.conf")
			}
			// patch(1) refuses to patch a symbolic link (Debian's
			// modules-enabled): make those regular files first.
			filepath.WalkDir(src2, func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.Type()&fs.ModeSymlink != 0 {
					if b, err := os.ReadFile(path); err == nil {
						os.Remove(path)
						os.WriteFile(path, b, 0o644)
					}
				}
				return nil
			})
			patch := exec.Command("patch", "-p1", "-s", "-d", "/")
			patch.Stdin = strings.NewReader(diff[:strings.Index(diff, "checked: ")])
			if b, err := patch.CombinedOutput(); err != nil {
				t.Fatalf("patch: %v\n%s\n%s", err, b, diff)
			}
			filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(out, path)
				want, _ := os.ReadFile(path)
				got, _ := os.ReadFile(filepath.Join(src2, rel))
				if strings.ReplaceAll(string(got), src2, src) != string(want) {
					t.Errorf("%s: the patched file differs from what --out wrote:\n%s\n---\n%s", rel, got, want)
				}
				return nil
			})
		})
	}
}

// TestMigrateRefuses: a configuration that does not load, or has no
// mail{}, is refused and nothing is written; the source is never a
// target.
func TestMigrateRefuses(t *testing.T) {
	mailgate := buildMailgate(t)
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct{ conf, want string }{
		{"events {}\nmail {\n    bogus on;\n}\n", `the configuration does not load, fix it first: unknown directive "bogus" in ` + dir + "/nginx.conf:3"},
		{"events {}\nhttp {}\n", "has no mail{} block: nothing to move"},
	} {
		os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(tc.conf), 0o644)
		text, code := run(t, mailgate, "migrate", "-p", dir+"/", "-c", "nginx.conf", "--out", out, "--nginx", "none")
		if code != 1 || !strings.Contains(text, tc.want) {
			t.Errorf("exit %d, output %q; want 1 and %q", code, text, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("a refused migration wrote files")
		}
	}
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("events {}\nmail {\n}\n"), 0o644)
	if text, code := run(t, mailgate, "migrate", "-p", dir+"/", "-c", "nginx.conf", "--out", dir, "--nginx", "none"); code != 1 || !strings.Contains(text, "must not be the configuration directory") {
		t.Errorf("--out onto the source: exit %d %q", code, text)
	}
	if text, code := run(t, mailgate, "migrate", "-p", dir+"/", "-c", "nginx.conf"); code != 2 {
		t.Errorf("no --out and no --diff: exit %d %q, want 2", code, text)
	}
}

var streamRE = regexp.MustCompile(`(?m)(^|[\s;{}])stream\s*\{`)

// TestMigrateCorpus runs migrate on every case of the configuration
// corpus (compat-tests/config/cases) that mailgate -t accepts and that
// has a mail{} block, and checks both halves as for the fixtures.
func TestMigrateCorpus(t *testing.T) {
	needNginx(t)
	mailgate := buildMailgate(t)
	cases, err := os.ReadDir("../config/cases")
	if err != nil {
		t.Fatal(err)
	}
	migrated := 0
	for _, c := range cases {
		name := c.Name()
		caseDir := filepath.Join("../config/cases", name)
		if _, err := os.Stat(filepath.Join(caseDir, "args")); err == nil {
			continue // -g and other flags: migrate reads files only
		}
		src := prepare(t, caseDir)
		if _, code := run(t, mailgate, "-t", "-q", "-p", src+"/", "-c", "nginx.conf"); code != 0 {
			continue
		}
		cfg, err := confparse.Load(confparse.Options{Prefix: src + "/", ConfFile: "nginx.conf", Hostname: "mx"})
		if err != nil || cfg.Mail == nil {
			continue
		}
		all := ""
		for _, f := range cfg.Files {
			all += string(f.Data) + "\n"
		}
		// nginx needs the modules mailgate has built in, unless the case
		// loads them (as the corpus runner does).
		globals := ""
		if !strings.Contains(all, "ngx_mail_module.so") {
			globals += "load_module " + mailModule + ";"
		}
		streamGlobals := ""
		if streamRE.MatchString(all) && !strings.Contains(all, "ngx_stream_module.so") {
			streamGlobals = "load_module " + streamModule + ";"
		}
		if _, code := run(t, nginxBin, "-t", "-q", "-p", src+"/", "-c", "nginx.conf", "-g", globals+streamGlobals); code != 0 {
			continue // a declared superset case: nginx refuses the source
		}
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			text, code := run(t, mailgate, "migrate", "-p", src+"/", "-c", "nginx.conf", "--out", out, "--nginx", "none",
				"--pid", src+"/logs/mailgate.pid", "--error-log", src+"/logs/mailgate.log")
			if code != 0 {
				t.Fatalf("migrate: exit %d\n%s", code, text)
			}
			inst := t.TempDir()
			copyTree(t, src, inst)
			copyTree(t, out, inst)
			checkHalves(t, mailgate, src, inst, out, streamGlobals)
		})
		migrated++
	}
	t.Logf("migrate corpus: %d cases migrated and checked", migrated)
	if migrated < 50 {
		t.Errorf("only %d corpus cases were migrated; want at least 50", migrated)
	}
}

// TestCheckNginxAgainstNginx: each line `mailgate check --nginx` names is
// refused by nginx 1.22.1 with exactly the message check printed (the
// other named lines blanked so that nginx gets to it), and with all of
// them blanked nginx accepts the file.
func TestCheckNginxAgainstNginx(t *testing.T) {
	needNginx(t)
	mailgate := buildMailgate(t)
	conf := `events {}
mail {
    auth_http 127.0.0.1:9000;
    proxy_protocol v2;
    resolver 127.0.0.1 ipv4=off;
    server {
        listen 127.0.0.1:23143;
        listen 127.0.0.1:23144 multipath;
        protocol imap;
        ssl_certificate_compression on;
    }
    server {
        listen 127.0.0.1:23993 ssl;
        protocol imap;
        ssl_certificate test.crt;
        ssl_certificate_key test.key;
        ssl_verify_client on;
        ssl_trusted_certificate test.crt;
    }
}
`
	dir := prepare(t, t.TempDir())
	file := filepath.Join(dir, "nginx.conf")
	os.WriteFile(file, []byte(conf), 0o644)
	if _, err := confparse.Load(confparse.Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"}); err != nil {
		t.Fatalf("mailgate refuses the file: %v", err)
	}
	text, code := run(t, mailgate, "check", "--nginx", "-p", dir+"/", "-c", "nginx.conf")
	if code != 1 {
		t.Fatalf("check --nginx: exit %d\n%s", code, text)
	}
	lineRE := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(file) + `:(\d+): \[emerg\] (.*)$`)
	found := lineRE.FindAllStringSubmatch(text, -1)
	if len(found) != 5 {
		t.Fatalf("check --nginx named %d lines, want 5:\n%s", len(found), text)
	}
	lines := strings.Split(conf, "\n")
	blank := func(keep string) string {
		out := append([]string(nil), lines...)
		for _, f := range found {
			if f[1] != keep {
				var n int
				for _, c := range f[1] {
					n = n*10 + int(c-'0')
				}
				out[n-1] = "#"
			}
		}
		return strings.Join(out, "\n")
	}
	g := "load_module " + mailModule + ";"
	for _, f := range found {
		os.WriteFile(file, []byte(blank(f[1])), 0o644)
		out, code := run(t, nginxBin, "-t", "-p", dir+"/", "-c", "nginx.conf", "-g", g)
		want := ": "
		if strings.HasPrefix(f[2], "no ssl_client_certificate") {
			// nginx names no line for this merge-time error
			want += f[2] + "\n"
		} else {
			want += f[2] + " in " + file + ":" + f[1] + "\n"
		}
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("line %s: nginx -t exit %d, output\n%s\nwant it to contain %q", f[1], code, out, want)
		}
	}
	os.WriteFile(file, []byte(blank("")), 0o644)
	if out, code := run(t, nginxBin, "-t", "-p", dir+"/", "-c", "nginx.conf", "-g", g); code != 0 {
		t.Errorf("with every named line blanked nginx still refuses:\n%s", out)
	}
	if out, code := run(t, mailgate, "check", "--nginx", "-p", dir+"/", "-c", "nginx.conf"); code != 0 {
		t.Errorf("check --nginx on the blanked file: exit %d\n%s", code, out)
	}
}

var supersetRE = regexp.MustCompile("(?m)^- superset `([^`]+)`")

// TestCheckNginxCoversSupersets: every corpus case that mailgate accepts
// and nginx 1.22.1 refuses (the supersets of compat-tests/config/
// DIFFERENCES.md) is reported by check --nginx with nginx's own error
// line. A new mailgate-only feature without its mark fails here.
func TestCheckNginxCoversSupersets(t *testing.T) {
	needNginx(t)
	mailgate := buildMailgate(t)
	doc, err := os.ReadFile("../config/DIFFERENCES.md")
	if err != nil {
		t.Fatal(err)
	}
	names := supersetRE.FindAllStringSubmatch(string(doc), -1)
	if len(names) == 0 {
		t.Fatal("no superset cases found in DIFFERENCES.md")
	}
	emergRE := regexp.MustCompile(`\[emerg\] \d+#\d+: (.*)`)
	for _, n := range names {
		name := n[1]
		t.Run(name, func(t *testing.T) {
			dir := prepare(t, filepath.Join("../config/cases", name))
			out, code := run(t, nginxBin, "-t", "-p", dir+"/", "-c", "nginx.conf", "-g", "load_module "+mailModule+";")
			m := emergRE.FindStringSubmatch(out)
			if code != 1 || m == nil {
				t.Fatalf("nginx -t: exit %d, no [emerg] line:\n%s", code, out)
			}
			text, code := run(t, mailgate, "check", "--nginx", "-p", dir+"/", "-c", "nginx.conf")
			// nginx: "MSG in FILE:LINE"; check: "FILE:LINE: [emerg] MSG"
			msg, pos, _ := strings.Cut(m[1], " in "+dir)
			want := dir + pos + ": [emerg] " + msg + "\n"
			if code != 1 || !strings.Contains(text, want) {
				t.Errorf("check --nginx: exit %d\n%s\nwant the line %q", code, text, want)
			}
		})
	}
}
