package resolve

import "testing"

func TestPresentationToRaw(t *testing.T) {
	for in, want := range map[string]string{
		"a.example.net.":        "a.example.net",
		`a\032b.`:               "a b",
		`a\.b.`:                 "a.b",
		`x\013\010y.`:           "x\r\ny",
		".":                     "",
		`trailing\`:             `trailing\`,
		"no-dot":                "no-dot",
		`\255\000.example.net.`: "\xff\x00.example.net",
	} {
		if got := PresentationToRaw(in); got != want {
			t.Errorf("PresentationToRaw(%q) = %q, want %q", in, got, want)
		}
	}
}
