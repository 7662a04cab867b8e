package main

import (
	"os"
	"syscall"
)

// redirectStderr points file descriptor 2 at the first main-level
// error_log file, as nginx does once it is up: from then on anything
// written to stderr (a Go panic, say) lands in the error log. Nothing is
// done when the main log is stderr.
func redirectStderr(r *runLog) error {
	for _, sk := range r.main {
		s, ok := sk.(*logSink)
		if !ok {
			continue
		}
		s.mu.Lock()
		f := s.f
		s.mu.Unlock()
		if f == nil {
			if s.path == "" {
				return nil // the main log is stderr itself
			}
			continue
		}
		if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
			return os.NewSyscallError("dup2", err)
		}
		return nil
	}
	return nil
}
