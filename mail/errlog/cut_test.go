package errlog

import (
	"strings"
	"testing"
)

func TestCutMessage(t *testing.T) {
	const pid = 12345
	header := len("2006/01/02 15:04:05 [emerg] 12345#12345: ")
	long := strings.Repeat("x", 3000)
	tests := []struct {
		name, msg, want string
	}{
		{"short", "short message", "short message"},
		{"exactly full", strings.Repeat("y", maxLine-1-header), strings.Repeat("y", maxLine-1-header)},
		{"cut", long, long[:maxLine-1-header]},
		{"system error kept", `open() "` + long + `" failed (36: File name too long)`,
			(`open() "` + long)[:maxLine-50-header] + "... (36: File name too long)"},
	}
	for _, tt := range tests {
		got := CutMessage(Emerg, pid, tt.msg)
		if got != tt.want {
			t.Errorf("%s: got %d bytes ending %q, want %d bytes ending %q", tt.name, len(got), tail(got), len(tt.want), tail(tt.want))
		}
		if header+len(got) > maxLine-1 {
			t.Errorf("%s: line of %d bytes", tt.name, header+len(got))
		}
	}
}

func tail(s string) string {
	if len(s) > 40 {
		return s[len(s)-40:]
	}
	return s
}
