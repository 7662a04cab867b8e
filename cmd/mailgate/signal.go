package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"syscall"

	"mailgate/mail/errlog"
)

// maxPidLen is how much of the pid file is read: a 64-bit number plus
// CR LF, as nginx reads it.
const maxPidLen = 19 + 2

// sendSignal implements -s: load the configuration (it must be valid, so
// the pid file's location is known), read the pid file and signal the
// master process.
func sendSignal(o *options, p paths, l *earlyLog) int {
	cfg, err := loadConfig(p, o.globals)
	logNotices(l, cfg)
	if err != nil {
		logLoadError(l, err)
		return 1
	}
	l.Logf(errlog.Notice, "signal process started")
	return signalPidFile(cfg.Core.Pid, signals[o.signal], l)
}

// signalPidFile reads pidFile and sends sig to the pid in it, logging
// failures with nginx's texts.
func signalPidFile(pidFile string, sig syscall.Signal, l *earlyLog) int {
	f, err := os.Open(pidFile)
	if err != nil {
		l.Logf(errlog.Error, "open() \"%s\" failed %s", pidFile, errnoText(err))
		return 1
	}
	buf := make([]byte, maxPidLen)
	n, err := io.ReadFull(f, buf)
	f.Close()
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		l.Logf(errlog.Alert, "read() \"%s\" failed %s", pidFile, errnoText(err))
		return 1
	}
	pid, ok := parsePid(buf[:n])
	if !ok {
		l.Logf(errlog.Error, "invalid PID number \"%s\" in \"%s\"", bytes.TrimRight(buf[:n], "\r\n"), pidFile)
		return 1
	}
	if err := syscall.Kill(pid, sig); err != nil {
		l.Logf(errlog.Alert, "kill(%d, %d) failed %s", pid, int(sig), errnoText(err))
		return 1
	}
	return 0
}

// parsePid reads a pid file's content: decimal digits followed by any
// number of CR/LF. Like nginx's ngx_atoi, signs and spaces are invalid.
func parsePid(b []byte) (int, bool) {
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n == 0 || n > int64(^uint32(0)>>1) { // 0 would signal our own process group
		return 0, false
	}
	return int(n), true
}
