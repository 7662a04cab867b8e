package confparse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNginxGlobKeepsSeparators: glob(3) builds each match from the
// pattern's own text, so repeated slashes stay, and nginx names the file
// that way in its messages (checked against nginx 1.22.1).
func TestNginxGlobKeepsSeparators(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"inc1/a.conf", "inc2/b.conf", "inc2/.hidden.conf"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ pattern, want string }{
		{"/inc1//*.conf", "/inc1//a.conf"},
		{"/inc*//a.conf", "/inc1//a.conf"},
		{"//inc[12]///*.conf", "//inc1///a.conf //inc2///b.conf"},
		{"/./inc?/b.conf", "/./inc2/b.conf"},
		{"/inc2/*", "/inc2/b.conf"},
		{"/none*/x", ""},
	}
	for _, tt := range tests {
		got, err := nginxGlob(dir + tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		var rel []string
		for _, g := range got {
			rel = append(rel, strings.TrimPrefix(g, dir))
		}
		if strings.Join(rel, " ") != tt.want {
			t.Errorf("%s: got %q, want %q", tt.pattern, rel, tt.want)
		}
	}
}
