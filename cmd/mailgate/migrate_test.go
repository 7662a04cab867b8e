package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailgate/confparse"
)

// TestExtendAndCut: a directive on its own lines goes with its
// indentation, its same-line comment, the comment lines right above it
// and (collapse) one of two blank lines; one sharing its line goes alone.
func TestExtendAndCut(t *testing.T) {
	tests := []struct {
		in, want string
		comments bool
		collapse bool
	}{
		{"a;\n\n# about b\n  b x; # why\n\nc;\n", "a;\n\nc;\n", true, true},
		{"a;\n\n# about b\n  b x; # why\n\nc;\n", "a;\n\n\nc;\n", true, false},
		{"a;\n# not about b\n\nb x;\nc;\n", "a;\n# not about b\n\nc;\n", true, true},
		{"a; b x; c;\n", "a;  c;\n", true, true},
		{"a;\n# keep\nb x;\n", "a;\n# keep\n", false, true},
		{"b x;", "", true, true},
	}
	for _, tc := range tests {
		stmts, err := confparse.ParseText([]byte(tc.in), "f")
		if err != nil {
			t.Fatal(err)
		}
		var b *confparse.Stmt
		for _, s := range stmts {
			if s.Words[0] == "b" {
				b = s
			}
		}
		got := string(applyCuts([]byte(tc.in), []cut{extend([]byte(tc.in), b, tc.comments, tc.collapse)}))
		if got != tc.want {
			t.Errorf("cut b from %q (comments %v): %q, want %q", tc.in, tc.comments, got, tc.want)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	if d := unifiedDiff("a", "b", "x\n", "x\n"); d != "" {
		t.Errorf("equal texts gave %q", d)
	}
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
	b := "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n"
	want := "--- a\n+++ b\n@@ -2,9 +2,10 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n+11\n"
	if d := unifiedDiff("a", "b", a, b); d != want {
		t.Errorf("diff:\n%s\nwant:\n%s", d, want)
	}
	if d := unifiedDiff("/dev/null", "b", "", "x\ny"); d != "--- /dev/null\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n\\ No newline at end of file\n" {
		t.Errorf("new file diff: %q", d)
	}
}

// TestMigrateInline runs the whole command on a small file and checks
// what it wrote: the nginx half keeps http{} and its comments as
// written, the mailgate half gets mail{} with its comments, its own pid
// and error_log and the events{} block.
func TestMigrateInline(t *testing.T) {
	dir := t.TempDir()
	conf := "worker_processes 2;\nworker_shutdown_timeout 5s;\nerror_log logs/e.log info;\n\nevents {\n    worker_connections 64; # small\n}\n\nhttp {\n    # web\n    server { listen 127.0.0.1:18089; }\n}\n\n# mail proxy\nmail {\n    auth_http 127.0.0.1:9/a; # auth\n    server { listen 127.0.0.1:18090; protocol pop3; }\n}\n"
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	out := filepath.Join(t.TempDir(), "o")
	code, stdout, stderr := runArgs("mg", "migrate", "-p", dir, "-c", "nginx.conf", "--out", out, "--nginx", "none", "--pid", "/run/mg.pid", "--error-log", "/var/log/mg.log")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	ng, _ := os.ReadFile(filepath.Join(out, "nginx.conf"))
	wantNg := "worker_processes 2;\nworker_shutdown_timeout 5s;\nerror_log logs/e.log info;\n\nevents {\n    worker_connections 64; # small\n}\n\nhttp {\n    # web\n    server { listen 127.0.0.1:18089; }\n}\n\n" + strings.Replace(mailMarker, "%s", "mailgate.conf", 1)
	if string(ng) != wantNg {
		t.Errorf("nginx half:\n%s\nwant:\n%s", ng, wantNg)
	}
	mg, _ := os.ReadFile(filepath.Join(out, "mailgate.conf"))
	for _, want := range []string{
		"\npid /run/mg.pid;\nerror_log /var/log/mg.log info;\nworker_shutdown_timeout 5s;\n\nevents {\n    worker_connections 64; # small\n}\n",
		"\n# mail{} from nginx.conf:15\n# mail proxy\nmail {\n    auth_http 127.0.0.1:9/a; # auth\n    server { listen 127.0.0.1:18090; protocol pop3; }\n}\n",
	} {
		if !strings.Contains(string(mg), want) {
			t.Errorf("mailgate half lacks %q:\n%s", want, mg)
		}
	}
	if strings.Contains(string(mg), "worker_processes") {
		t.Errorf("worker_processes copied to the mailgate half:\n%s", mg)
	}
	if !strings.Contains(stdout, `note: "worker_processes" is not copied`) {
		t.Errorf("no note about worker_processes:\n%s", stdout)
	}
}

// TestMigrateMailOnly: a configuration with nothing but mail leaves an
// nginx half that serves nothing, and migrate says so.
func TestMigrateMailOnly(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("events {}\nmail {\n    server { listen 127.0.0.1:18091; protocol pop3; auth_http 127.0.0.1:9/a; }\n}\n"), 0o644)
	code, stdout, stderr := runArgs("mg", "migrate", "-p", dir, "-c", "nginx.conf", "--diff", "--nginx", "none")
	if code != 0 || !strings.Contains(stdout, "note: the nginx half has no http{} or stream{} block") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "mailgate.conf")); err == nil {
		t.Error("--diff wrote mailgate.conf")
	}
}

// TestMigrateMailFileWithLoadModule: a file included by name that holds
// the mail module's load_module and mail{} is dropped from nginx, left
// unchanged, and its mail{} is copied into mailgate.conf (mailgate.conf
// cannot include it: load_module after events{} is too late).
func TestMigrateMailFileWithLoadModule(t *testing.T) {
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_mail_module.so"); err != nil {
		t.Skip("needs a module file for load_module to name")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("include mail.conf;\nevents {}\nhttp {}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "mail.conf"), []byte("load_module /usr/lib/nginx/modules/ngx_mail_module.so;\n# imap only\nmail {\n    server { listen 127.0.0.1:18092; protocol imap; auth_http 127.0.0.1:9/a; }\n}\n"), 0o644)
	out := filepath.Join(t.TempDir(), "o")
	code, stdout, stderr := runArgs("mg", "migrate", "-p", dir, "-c", "nginx.conf", "--out", out, "--nginx", "none")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	ng, _ := os.ReadFile(filepath.Join(out, "nginx.conf"))
	if want := strings.Replace(includeMarker, "%s", "mail.conf", 1); !strings.HasPrefix(string(ng), strings.Replace(want, "%s", "mailgate.conf", 1)+"events {}\n") {
		t.Errorf("nginx half:\n%s", ng)
	}
	if _, err := os.Stat(filepath.Join(out, "mail.conf")); err == nil {
		t.Error("mail.conf was rewritten although nginx no longer reads it")
	}
	mg, _ := os.ReadFile(filepath.Join(out, "mailgate.conf"))
	if !strings.Contains(string(mg), "# mail{} from mail.conf:3\n# imap only\nmail {\n") || strings.Contains(string(mg), "include mail.conf") || strings.Contains(string(mg), "load_module") {
		t.Errorf("mailgate half:\n%s", mg)
	}
}
