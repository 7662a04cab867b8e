package errlog

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// PanicText renders a recovered panic value and the stack of the
// goroutine that panicked as one log message:
//
//	panic: runtime error: index out of range [3] with length 3 (imap.(*parsePass).run parse.go:312 <- imap.(*handler).Parse imap.go:159 <- ...)
//
// Call it directly from the deferred function that recovered, so that the
// stack still holds the panicking frames; that function's own frame is
// left out. Frames are named by function, file and line only: never
// argument values, which may hold a password.
func PanicText(v any) string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs) // not Callers, PanicText, the deferred function
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	fmt.Fprintf(&b, "panic: %v (", v)
	first := true
	for {
		f, more := frames.Next()
		// The runtime's own frames (gopanic, the deferred call, the
		// goroutine's start) say nothing about where it went wrong.
		if !strings.HasPrefix(f.Function, "runtime.") && f.Function != "" {
			if !first {
				b.WriteString(" <- ")
			}
			first = false
			fn := f.Function
			if i := strings.LastIndexByte(fn, '/'); i >= 0 {
				fn = fn[i+1:]
			}
			fmt.Fprintf(&b, "%s %s:%d", fn, filepath.Base(f.File), f.Line)
		}
		if !more {
			break
		}
	}
	b.WriteString(")")
	return b.String()
}
