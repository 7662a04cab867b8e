package errlog

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestErrnoText(t *testing.T) {
	tests := []struct {
		en   syscall.Errno
		want string
	}{
		{syscall.ENOENT, "(2: No such file or directory)"},
		{syscall.ETIMEDOUT, "(110: Connection timed out)"},
		{syscall.ECONNREFUSED, "(111: Connection refused)"},
		{syscall.EADDRINUSE, "(98: Address already in use)"},
		{syscall.ECONNRESET, "(104: Connection reset by peer)"},
		// Not in the table: Go's text with a capital first letter.
		{syscall.EXDEV, "(18: Invalid cross-device link)"},
	}
	for _, tt := range tests {
		if got := ErrnoText(tt.en); got != tt.want {
			t.Errorf("ErrnoText(%d) = %q, want %q", tt.en, got, tt.want)
		}
	}
}

func TestSysErrText(t *testing.T) {
	wrapped := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if got := SysErrText(wrapped); got != "(111: Connection refused)" {
		t.Errorf("wrapped errno: %q", got)
	}
	if got := SysErrText(fmt.Errorf("x: %w", os.ErrDeadlineExceeded)); got != "(110: Connection timed out)" {
		t.Errorf("deadline: %q", got)
	}
	if got := SysErrText(errors.New("odd")); got != "(odd)" {
		t.Errorf("no errno: %q", got)
	}
}
