package confparse

// One test per gonginx trap listed in style.md section 3. Each test shows
// what gonginx (pinned in go.mod) does with the input, which is why the
// loader has its own tokenizer, and then checks that Load does what
// nginx does.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tufanbarisyildirim/gonginx/config"
	"github.com/tufanbarisyildirim/gonginx/parser"
)

func gonginxParse(t *testing.T, s string, opts ...parser.Option) (*config.Config, error) {
	t.Helper()
	opts = append(opts, parser.WithSkipValidDirectivesErr())
	return parser.NewStringParser(s, opts...).Parse()
}

func findDirective(c *config.Config, name string) config.IDirective {
	ds := c.FindDirectives(name)
	if len(ds) == 0 {
		return nil
	}
	return ds[0]
}

func loadErr(t *testing.T, conf string) string {
	t.Helper()
	_, dir, err := loadString(t, conf, nil)
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(err.Error(), dir, "@DIR@")
}

func TestTrapStrayBrace(t *testing.T) {
	conf := "events {}\n}\nunknown_after_brace;\n"
	c, err := gonginxParse(t, conf)
	if err != nil || findDirective(c, "unknown_after_brace") != nil {
		t.Logf("gonginx no longer drops the rest after a stray }: err=%v", err)
	}
	if got, want := loadErr(t, conf), `unexpected "}" in @DIR@/nginx.conf:2`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTrapMissingInclude(t *testing.T) {
	got := loadErr(t, "events {}\ninclude missing.conf;\n")
	if want := `open() "@DIR@/missing.conf" failed (2: No such file or directory) in @DIR@/nginx.conf:2`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// a glob that matches nothing is fine
	if got := loadErr(t, "events {}\ninclude missing*.conf;\n"); got != "" {
		t.Errorf("empty glob: %q", got)
	}
}

func TestTrapBlockPosition(t *testing.T) {
	conf := "events {}\nmail {\n  server\n  {\n    listen 127.0.0.1:27001;\n    protocol imap;\n  }\n}\n"
	c, err := gonginxParse(t, conf)
	if err == nil {
		if d := findDirective(c, "server"); d != nil && d.GetLine() == 4 {
			t.Logf("gonginx now reports the { line")
		}
	}
	// nginx reports the line where "{" was read
	if got, want := loadErr(t, conf), `no "auth_http" is defined for server in @DIR@/nginx.conf:4`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	cfg, _ := mustLoad(t, "events {}\nmail\n{\nauth_http 127.0.0.1:1;\nserver { listen 127.0.0.1:27001; protocol imap; }\n}\n")
	if cfg.Mail.Pos.Line != 3 || cfg.Mail.Servers[0].Pos.Line != 5 {
		t.Errorf("positions %v %v", cfg.Mail.Pos, cfg.Mail.Servers[0].Pos)
	}
}

func TestTrapQuotesKept(t *testing.T) {
	conf := `events {}
mail {
  auth_http 127.0.0.1:1;
  server_name "a\"b\\c\td";
  auth_http_header 'X-Q' "it's \x";
  server { listen 127.0.0.1:27001; protocol imap; }
}
`
	c, err := gonginxParse(t, conf)
	if err == nil {
		if d := findDirective(c, "server_name"); d != nil && len(d.GetParameters()) == 1 && d.GetParameters()[0].Value == `"a\"b\\c\td"` {
			t.Logf("gonginx keeps quotes and backslashes: %s", d.GetParameters()[0].Value)
		}
	}
	cfg, _ := mustLoad(t, conf)
	s := cfg.Mail.Servers[0]
	if s.Core.ServerName != "a\"b\\c\td" {
		t.Errorf("server_name %q", s.Core.ServerName)
	}
	if h := s.AuthHTTP.Headers; len(h) != 1 || h[0] != [2]string{"X-Q", `it's \x`} {
		t.Errorf("header %q", h)
	}
}

func TestTrapBacktick(t *testing.T) {
	conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nserver_name `a b`;\nserver { listen 127.0.0.1:27001; protocol imap; }\n}\n"
	// nginx: a backtick is an ordinary character, so this is two arguments
	if got, want := loadErr(t, conf), `invalid number of arguments in "server_name" directive in @DIR@/nginx.conf:4`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	cfg, _ := mustLoad(t, "events {}\nmail {\nauth_http 127.0.0.1:1;\nserver_name `ab`;\nserver { listen 127.0.0.1:27001; protocol imap; }\n}\n")
	if got := cfg.Mail.Servers[0].Core.ServerName; got != "`ab`" {
		t.Errorf("server_name %q", got)
	}
}

func TestTrapEscapedSemicolon(t *testing.T) {
	conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nserver_name 1\\;2;\nserver { listen 127.0.0.1:27001; protocol imap; }\n}\n"
	c, err := gonginxParse(t, conf)
	if err == nil && findDirective(c, "2") != nil {
		t.Logf("gonginx splits 1\\;2 into two directives")
	}
	cfg, _ := mustLoad(t, conf)
	if got := cfg.Mail.Servers[0].Core.ServerName; got != `1\;2` {
		t.Errorf("server_name %q", got)
	}
}

func TestTrapServerParams(t *testing.T) {
	conf := "events {}\nmail {\nserver extra {\n listen 127.0.0.1:27001;\n}\n}\n"
	c, err := gonginxParse(t, conf)
	if err == nil {
		if d := findDirective(c, "server"); d != nil && len(d.GetParameters()) == 0 {
			t.Logf("gonginx drops server parameters")
		}
	}
	if got, want := loadErr(t, conf), `invalid number of arguments in "server" directive in @DIR@/nginx.conf:3`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTrapTwoMailBlocks(t *testing.T) {
	conf := "events {}\nmail {}\nmail {}\n"
	if _, err := gonginxParse(t, conf); err != nil {
		t.Logf("gonginx now rejects two mail blocks: %v", err)
	}
	if got, want := loadErr(t, conf), `"mail" directive is duplicate in @DIR@/nginx.conf:3`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestIncludes(t *testing.T) {
	files := map[string]string{
		"conf.d/b.conf":       "timeout 2s;\n",
		"conf.d/a.conf":       "server_name a;\n",
		"conf.d/.hidden.conf": "bogus_directive;\n",
		"conf.d/c.txt":        "bogus_directive;\n",
		"srv/imap.conf":       "server {\n  listen 127.0.0.1:27001;\n  include proto.inc; # relative to the config dir, not to this file\n}\n",
		"proto.inc":           "protocol imap;\n",
		"main.inc":            "events {}\n",
	}
	conf := "include main.inc;\nmail {\n  auth_http 127.0.0.1:1;\n  include conf.d/*.conf;\n  include @DIR@/srv/imap.conf;\n  include conf.d/[!a]*.conf;\n}\n"
	_, dir, err := loadString(t, conf, files)
	// conf.d/b.conf is included twice: the second timeout is a duplicate,
	// reported in the included file (the glob skips .hidden.conf).
	if err == nil || err.Error() != `"timeout" directive is duplicate in `+filepath.Join(dir, "conf.d/b.conf")+`:1` {
		t.Fatalf("err %v", err)
	}
	conf = strings.Replace(conf, "  include conf.d/[!a]*.conf;\n", "", 1)
	cfg, dir, err := loadString(t, conf, files)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, f := range cfg.Files {
		order = append(order, strings.TrimPrefix(f.Path, dir+"/"))
	}
	want := []string{"nginx.conf", "main.inc", "conf.d/a.conf", "conf.d/b.conf", "srv/imap.conf", "proto.inc"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("files %q, want %q", order, want)
	}
	if string(cfg.Files[2].Data) != files["conf.d/a.conf"] {
		t.Errorf("raw data %q", cfg.Files[2].Data)
	}
	s := cfg.Mail.Servers[0]
	if s.Core.ServerName != "a" || s.Protocol != ProtoIMAP || s.Pos.File != filepath.Join(dir, "srv/imap.conf") || s.Pos.Line != 1 {
		t.Errorf("server %+v", s)
	}
	if p := s.Sources["timeout"]; p.File != filepath.Join(dir, "conf.d/b.conf") || p.Line != 1 {
		t.Errorf("timeout source %v", p)
	}
	if p := s.Sources["protocol"]; p.File != filepath.Join(dir, "proto.inc") {
		t.Errorf("protocol source %v", p)
	}
}

func TestIncludeFileListedOnce(t *testing.T) {
	files := map[string]string{"x.inc": "# nothing\n"}
	cfg, _, err := loadString(t, "events {}\ninclude x.inc;\ninclude x.inc;\n", files)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Files) != 2 {
		t.Errorf("files %d", len(cfg.Files))
	}
}

func TestIncludeCycle(t *testing.T) {
	files := map[string]string{"a.inc": "include b.inc;\n", "b.inc": "include a.inc;\n"}
	_, dir, err := loadString(t, "events {}\ninclude a.inc;\n", files)
	want := `include of "` + filepath.Join(dir, "a.inc") + `" includes itself recursively in ` + filepath.Join(dir, "b.inc") + `:1`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// nginx reads the file a second time and fails on what it finds there
	_, dir, err = loadString(t, "events {}\ninclude nginx.conf;\n", nil)
	want = `"events" directive is duplicate in ` + filepath.Join(dir, "nginx.conf") + `:1`
	if err == nil || err.Error() != want {
		t.Errorf("self include: %v\nwant %s", err, want)
	}
	// a file that re-reads cleanly is a cycle on its third entry
	_, dir, err = loadString(t, "events {}\ninclude x.inc;\n", map[string]string{"x.inc": "# x\ninclude x.inc;\n"})
	want = `include of "` + filepath.Join(dir, "x.inc") + `" includes itself recursively in ` + filepath.Join(dir, "x.inc") + `:2`
	if err == nil || err.Error() != want {
		t.Errorf("clean self include: %v\nwant %s", err, want)
	}
}

func TestIncludeDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "n.conf"), []byte("events {}\ninclude d;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{Prefix: dir + "/", ConfFile: "n.conf"})
	e, ok := err.(*Error)
	if !ok || e.Sev != SevCrit || e.Error() != `pread() "`+filepath.Join(dir, "d")+`" failed (21: Is a directory)` {
		t.Errorf("got %v", err)
	}
}

func TestNginxGlob(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.conf", "a.conf", ".h.conf", "B.conf", "sub/x.conf", "sub2/y.conf", ".hd/z.conf"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		pat  string
		want []string
	}{
		{"*.conf", []string{"B.conf", "a.conf", "b.conf"}},
		{".*.conf", []string{".h.conf"}},
		{"[!a]*.conf", []string{"B.conf", "b.conf"}},
		{"?.conf", []string{"B.conf", "a.conf", "b.conf"}},
		{"*/*.conf", []string{"sub/x.conf", "sub2/y.conf"}},
		{"sub*/x.conf", []string{"sub/x.conf"}},
		{"none*", nil},
		// glob(3): an unmatched "[" is an ordinary character, "]" first
		// in a class is a member
		{"[a.conf", nil},
		{"[!]x].conf", []string{"B.conf", "a.conf", "b.conf"}},
		{"[]a].conf", []string{"a.conf"}},
		{"s[u]b/*", []string{"sub/x.conf"}},
	}
	for _, tc := range tests {
		got, err := nginxGlob(filepath.Join(dir, tc.pat))
		if err != nil {
			t.Errorf("%s: %v", tc.pat, err)
			continue
		}
		var rel []string
		for _, g := range got {
			rel = append(rel, strings.TrimPrefix(g, dir+"/"))
		}
		if strings.Join(rel, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: %q, want %q", tc.pat, rel, tc.want)
		}
	}
}

// A file included from -g is read before the main file; nginx -T (1.22.1)
// lists it first too.
func TestFilesOrderWithGlobals(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"n.conf": "events {}\n", "g.part": "worker_rlimit_nofile 100;\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(Options{Prefix: dir + "/", ConfFile: "n.conf", Globals: "include g.part;"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Files) != 2 || cfg.Files[0].Path != filepath.Join(dir, "g.part") || cfg.Files[1].Path != filepath.Join(dir, "n.conf") {
		t.Errorf("files %+v", cfg.Files)
	}
	if cfg.Core.WorkerRlimitNofile != 100 {
		t.Errorf("rlimit %d", cfg.Core.WorkerRlimitNofile)
	}
}
