package errlog

import (
	"strings"
	"testing"
)

func TestPanicTextNamesThePanickingFrame(t *testing.T) {
	var got string
	func() {
		defer func() {
			if r := recover(); r != nil {
				got = PanicText(r)
			}
		}()
		panicHere(nil)
	}()
	if !strings.HasPrefix(got, "panic: runtime error: index out of range [3] with length 0 (") {
		t.Fatalf("message %q", got)
	}
	if !strings.Contains(got, "errlog.panicHere panic_test.go:") {
		t.Fatalf("stack does not name the panicking function: %q", got)
	}
	if strings.Contains(got, "runtime.") || strings.Contains(got, "\n") {
		t.Fatalf("runtime frames or line breaks in %q", got)
	}
}

//go:noinline
func panicHere(b []byte) byte { return b[3] }
