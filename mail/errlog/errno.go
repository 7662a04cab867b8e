package errlog

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
)

// strerror is glibc's text for the errno values mail code meets; nginx
// prints "(errno: strerror)".
var strerror = map[syscall.Errno]string{
	syscall.EPERM:         "Operation not permitted",
	syscall.ENOENT:        "No such file or directory",
	syscall.EACCES:        "Permission denied",
	syscall.EINVAL:        "Invalid argument",
	syscall.EMFILE:        "Too many open files",
	syscall.ENFILE:        "Too many open files in system",
	syscall.EPIPE:         "Broken pipe",
	syscall.EADDRINUSE:    "Address already in use",
	syscall.EADDRNOTAVAIL: "Cannot assign requested address",
	syscall.EAFNOSUPPORT:  "Address family not supported by protocol",
	syscall.ENETUNREACH:   "Network is unreachable",
	syscall.ECONNABORTED:  "Software caused connection abort",
	syscall.ECONNRESET:    "Connection reset by peer",
	syscall.ETIMEDOUT:     "Connection timed out",
	syscall.ECONNREFUSED:  "Connection refused",
	syscall.EHOSTUNREACH:  "No route to host",
	syscall.ENOTDIR:       "Not a directory",
	syscall.EROFS:         "Read-only file system",
	syscall.ENAMETOOLONG:  "File name too long",
}

// IsTimeout reports whether err is a deadline or timeout: a net.Conn
// deadline, a context deadline or a net.Error that says so.
func IsTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Errno digs the errno out of err (0 if none).
func Errno(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return syscall.ETIMEDOUT
	}
	return 0
}

// ErrnoText renders an errno as nginx does: "(98: Address already in use)".
func ErrnoText(en syscall.Errno) string {
	t, ok := strerror[en]
	if !ok {
		t = en.Error()
		if t != "" && t[0] >= 'a' && t[0] <= 'z' {
			t = string(t[0]-'a'+'A') + t[1:]
		}
	}
	return "(" + strconv.Itoa(int(en)) + ": " + t + ")"
}

// SysErrText renders err as nginx's "(errno: text)" suffix, or err's own
// text in parentheses when it carries no errno.
func SysErrText(err error) string {
	if en := Errno(err); en != 0 {
		return ErrnoText(en)
	}
	return "(" + err.Error() + ")"
}
