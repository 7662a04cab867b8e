package confparse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTextRanges(t *testing.T) {
	data := "user x; # c\n\n  \"load_module\" 'a b';\nmail {\n    server { listen 1; }\n}\nhttp{include\n  a;}"
	stmts, err := ParseText([]byte(data), "f")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func([]*Stmt)
	walk = func(ss []*Stmt) {
		for _, s := range ss {
			got = append(got, data[s.Start:s.End])
			walk(s.Children)
		}
	}
	walk(stmts)
	want := []string{"user x;", `"load_module" 'a b';`, "mail {\n    server { listen 1; }\n}", "server { listen 1; }", "listen 1;", "http{include\n  a;}", "include\n  a;"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ranges\n%q\nwant\n%q", got, want)
	}
	if stmts[1].Words[0] != "load_module" || stmts[1].Words[1] != "a b" || stmts[2].Line != 4 {
		t.Errorf("words/line: %q line %d", stmts[1].Words, stmts[2].Line)
	}
	if _, err := ParseText([]byte("a;\n}\n"), "f"); err == nil || !strings.Contains(err.Error(), `unexpected "}" in f:2`) {
		t.Errorf("stray }: %v", err)
	}
}

// TestOverlayAndTrace: Overlay text replaces the disk's, and Trace lists
// every directive with includes expanded and include lines left out.
func TestOverlayAndTrace(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("bogus;\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.conf"), []byte("mail { server_name a; }\n"), 0o644)
	main := filepath.Join(dir, "nginx.conf")
	cfg, err := Load(Options{Prefix: dir + "/", ConfFile: main, Trace: true,
		Overlay: map[string][]byte{main: []byte("events {}\ninclude m.conf;\nhttp { x 1; }\n")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range cfg.Trace {
		got = append(got, e.Context+":"+strings.Join(e.Words, " "))
	}
	want := ":events|:mail|mail:server_name a|:http|http:x 1"
	if strings.Join(got, "|") != want {
		t.Errorf("trace %q, want %q", strings.Join(got, "|"), want)
	}
}
