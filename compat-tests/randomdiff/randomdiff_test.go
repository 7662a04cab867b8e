package randomdiff

import (
	"strings"
	"testing"
)

func TestFillsExactly(t *testing.T) {
	tests := []struct {
		chunks []string
		want   bool
	}{
		{[]string{"NOOP\r\nNOOP\r\n"}, false},
		{[]string{strings.Repeat("x", 126) + "\r\n"}, false},
		{[]string{strings.Repeat("x", 126) + "\r\nNOOP\r\n"}, true},
		{[]string{"USER " + strings.Repeat("x", 60), strings.Repeat("x", 61) + "\r\nNOOP\r\n"}, true},
		{[]string{"NOOP\r\n", strings.Repeat("x", 126) + "\r\nNOOP\r\n"}, true},
		{[]string{"NOOP\r\nNO", strings.Repeat("x", 126) + "\r\nNOOP\r\n"}, false},
		{[]string{strings.Repeat("x", 127) + "\r\nNOOP\r\n"}, false},
	}
	for i, tt := range tests {
		if got := FillsExactly(tt.chunks, 128); got != tt.want {
			t.Errorf("%d: FillsExactly(%q) = %v, want %v", i, tt.chunks, got, tt.want)
		}
	}
}

func TestLostToReset(t *testing.T) {
	const head = "== client\nS: +OK ready\\r\\nC: NOOP\\r\\n\n"
	const tail = "== error.log\n[info] *1 x\n"
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"lost last reply", head + "S: +OK\\r\\n\n[closed]\n" + tail, head + "S: +OK\\r\\n\nS: -ERR invalid command\\r\\n\n[closed]\n" + tail, true},
		{"lost all, client went on", head + "[closed]\nC: x\\r\\n\n" + tail, head + "S: -ERR\\r\\n\nC: x\\r\\n\n[closed]\n" + tail, true},
		{"other reply", head + "S: +OK\\r\\n\n[closed]\n" + tail, head + "S: -ERR\\r\\n\n[closed]\n" + tail, false},
		{"not closed", head + "S: +OK\\r\\n\n" + tail, head + "S: +OK\\r\\n\nS: -ERR\\r\\n\n" + tail, false},
		{"log differs", head + "S: +OK\\r\\n\n[closed]\n" + tail, head + "S: +OK\\r\\n\nS: -ERR\\r\\n\n[closed]\n" + tail + "[info] *1 y\n", false},
		{"client sent other bytes", head + "[closed]\nC: x\\r\\n\n" + tail, head + "S: -ERR\\r\\n\nC: y\\r\\n\n[closed]\n" + tail, false},
	}
	for _, tt := range tests {
		if got := LostToReset(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNormUpstreamDirections(t *testing.T) {
	a := "== upstream fake connection 1\n<: +OK\\r\\n\n>: USER a\\r\\nP\n<: +OK\\r\\n\n>: ASS b\\r\\n\n[proxy closed]\n== error.log\nx\n"
	b := "== upstream fake connection 1\n<: +OK\\r\\n\n>: USER a\\r\\nPASS b\\r\\n\n<: +OK\\r\\n\n[proxy closed]\n== error.log\nx\n"
	want := "== upstream fake connection 1\n>: USER a\\r\\n\n>: PASS b\\r\\n\n<: +OK\\r\\n\n<: +OK\\r\\n\n[proxy closed]\n== error.log\nx\n"
	if got := NormUpstreamDirections(a); got != want {
		t.Errorf("a: got\n%s\nwant\n%s", got, want)
	}
	if got := NormUpstreamDirections(b); got != want {
		t.Errorf("b: got\n%s\nwant\n%s", got, want)
	}
	c := strings.Replace(b, "PASS b", "PASS c", 1)
	if NormUpstreamDirections(c) == want {
		t.Error("other bytes normalised away")
	}
}
