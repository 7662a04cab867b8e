package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on
// examples/systemd/mailgate.service, with the drop-in for systemd 252
// applied when the installed systemd is older than 253, and the binary
// path pointed at a real mailgate. Any complaint fails the test.
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	bin := buildBinary(t)
	unit, err := os.ReadFile("../../examples/systemd/mailgate.service")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile("../../examples/systemd/mailgate.service.d/systemd-252.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/sbin/mailgate", bin)
	if !strings.Contains(text, "\nType=notify-reload\n") || strings.Contains(text, "\nExecReload=") {
		t.Fatal("the unit should be Type=notify-reload without ExecReload=")
	}
	out, _ := exec.Command("systemctl", "--version").Output()
	ver := 0
	if m := regexp.MustCompile(`^systemd (\d+)`).FindSubmatch(out); m != nil {
		ver, _ = strconv.Atoi(string(m[1]))
	}
	if ver < 253 {
		// What the drop-in does: its lines win over the unit's.
		text = strings.Replace(text, "Type=notify-reload\n", strings.TrimPrefix(string(dropIn), strings.SplitN(string(dropIn), "[Service]\n", 2)[0]+"[Service]\n"), 1)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mailgate.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(res) > 0 {
		t.Fatalf("systemd-analyze verify (systemd %d): %v\n%s\n--- unit ---\n%s", ver, err, res, text)
	}
}
