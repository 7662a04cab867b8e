package confparse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfErrStr(t *testing.T) {
	long := strings.Repeat("x", 1100)
	errno := " (2: No such file or directory)"
	tests := []struct {
		name, in, want string
	}{
		{"short", "invalid value", "invalid value"},
		{"exactly 1024", long[:1024], long[:1024]},
		{"cut at 1024", long, long[:1024]},
		{"errno keeps its text", `open() "` + long + `" failed` + errno,
			(`open() "` + long)[:974] + "..." + errno},
		{"short with errno", `open() "x" failed` + errno, `open() "x" failed` + errno},
	}
	for _, tc := range tests {
		if got := confErrStr(tc.in); got != tc.want {
			t.Errorf("%s: got %d bytes %q..., want %d bytes", tc.name, len(got), got[max(0, len(got)-60):], len(tc.want))
		}
	}
}

func TestGlobToGo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"*.conf", "*.conf"},
		{"[!a]*", "[^a]*"},
		{"[a.conf", `\[a.conf`},
		{"[]a]", `[\]a]`},
		{"[!]a]", `[^\]a]`},
		{`a\*b`, `a\*b`},
		{"[", `\[`},
	}
	for _, tc := range tests {
		if got := globToGo(tc.in); got != tc.want {
			t.Errorf("globToGo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzGlobToGo: whatever the pattern, the converted one either compiles
// or the literal fallback does, and a name without pattern characters
// matches its own literal pattern.
func FuzzGlobToGo(f *testing.F) {
	for _, s := range []string{"*.conf", "[!a]", "[", "[]]", `\`, "a[b-", "[!]x]*?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		g := globToGo(p)
		if _, err := filepath.Match(g, ""); err != nil {
			lit := globLiteral(p)
			if _, err := filepath.Match(lit, ""); err != nil {
				t.Fatalf("literal pattern %q of %q does not compile: %v", lit, p, err)
			}
			if strings.Contains(p, "/") {
				return
			}
			if ok, _ := filepath.Match(lit, p); !ok {
				t.Fatalf("literal pattern %q does not match %q", lit, p)
			}
		}
	})
}

func TestLogFiles(t *testing.T) {
	dir := t.TempDir()
	conf := "error_log a.log;\nerror_log stderr;\nevents {}\nmail {\n    error_log b.log info;\n    error_log a.log;\n" +
		"    error_log syslog:server=127.0.0.1;\n    error_log memory:1m;\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Globals: "error_log g.log;"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dir + "/g.log", dir + "/a.log", dir + "/b.log"}
	if strings.Join(cfg.LogFiles, " ") != strings.Join(want, " ") {
		t.Errorf("LogFiles %q, want %q", cfg.LogFiles, want)
	}
}
