package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"

	"mailgate/mail/errlog"
)

// earlyLog is the error log in use before the configuration is loaded
// (nginx's -e log): while testing, signalling and starting up. Every line
// goes to the target in error_log format. When the target is a file,
// lines at warn or more severe are also shown on stderr as
// "<prog>: [level] message", as nginx does while in the foreground.
type earlyLog struct {
	prog   string
	stderr io.Writer
	log    *logrus.Logger
	file   *os.File // nil when the target is stderr
}

// newEarlyLog opens the early log. target is "stderr" or a file path.
// If the file cannot be opened nginx complains on stderr and carries on
// with stderr, and so do we.
func newEarlyLog(prog, target string, stderr io.Writer, min errlog.Level) *earlyLog {
	l := &earlyLog{prog: prog, stderr: stderr}
	out := stderr
	if target != "stderr" {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "%s: [alert] could not open error log file: open() \"%s\" failed %s\n",
				prog, target, errnoText(err))
		} else {
			l.file = f
			out = f
		}
	}
	l.log = &logrus.Logger{
		Out:       out,
		Formatter: &errlog.Formatter{Min: min},
		Hooks:     make(logrus.LevelHooks),
		Level:     logrus.DebugLevel,
	}
	return l
}

// Logf writes one line at nginx level lvl.
func (l *earlyLog) Logf(lvl errlog.Level, format string, args ...any) {
	msg := errlog.CutMessage(lvl, os.Getpid(), fmt.Sprintf(format, args...))
	errlog.Log(logrus.NewEntry(l.log), lvl, msg)
	if l.file != nil && lvl <= errlog.Warn {
		fmt.Fprintf(l.stderr, "%s: [%s] %s\n", l.prog, lvl, msg)
	}
}

// Close closes the log file, if any.
func (l *earlyLog) Close() {
	if l.file != nil {
		l.file.Close()
	}
}

// strerrors is glibc's strerror text for the errors mailgate reports, so
// messages read exactly like nginx's "(2: No such file or directory)".
var strerrors = map[syscall.Errno]string{
	syscall.EPERM:         "Operation not permitted",
	syscall.ENOENT:        "No such file or directory",
	syscall.ESRCH:         "No such process",
	syscall.EINTR:         "Interrupted system call",
	syscall.EIO:           "Input/output error",
	syscall.EBADF:         "Bad file descriptor",
	syscall.EAGAIN:        "Resource temporarily unavailable",
	syscall.ENOMEM:        "Cannot allocate memory",
	syscall.EACCES:        "Permission denied",
	syscall.EEXIST:        "File exists",
	syscall.ENOTDIR:       "Not a directory",
	syscall.EISDIR:        "Is a directory",
	syscall.EINVAL:        "Invalid argument",
	syscall.EMFILE:        "Too many open files",
	syscall.ENOSPC:        "No space left on device",
	syscall.EROFS:         "Read-only file system",
	syscall.ENAMETOOLONG:  "File name too long",
	syscall.ELOOP:         "Too many levels of symbolic links",
	syscall.EADDRINUSE:    "Address already in use",
	syscall.EADDRNOTAVAIL: "Cannot assign requested address",
	syscall.ECONNREFUSED:  "Connection refused",
}

// errnoText renders an OS error as nginx's "(N: text)".
func errnoText(err error) string {
	var no syscall.Errno
	if errors.As(err, &no) {
		if s, ok := strerrors[no]; ok {
			return fmt.Sprintf("(%d: %s)", int(no), s)
		}
		return fmt.Sprintf("(%d: %s)", int(no), no.Error())
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "(" + pe.Err.Error() + ")"
	}
	return "(" + err.Error() + ")"
}
