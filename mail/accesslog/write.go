package accesslog

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
)

// ErrorLog receives the access log's own failures (a write that failed,
// at alert, as nginx logs them).
type ErrorLog func(l errlog.Level, msg string)

// Set is one configuration's access logs: every file opened once, shared
// by the server blocks that name it, and the syslog targets.
type Set struct {
	env    *env
	files  map[*confparse.AccessLogFile]*file
	syslog map[*confparse.SyslogTarget]*syslogSender
	errLog ErrorLog
	pool   sync.Pool
}

var _ mail.SessionLogger = (*Set)(nil)

// Open opens every access log file of cfg (appending, creating them 0644;
// relative paths were made absolute against the prefix by confparse). An
// error is nginx's `open() "FILE" failed (N: text)`, and nothing stays
// open.
func Open(cfg *confparse.Config, errLog ErrorLog) (*Set, error) {
	if errLog == nil {
		errLog = func(errlog.Level, string) {}
	}
	s := &Set{env: newEnv(), files: map[*confparse.AccessLogFile]*file{},
		syslog: map[*confparse.SyslogTarget]*syslogSender{}, errLog: errLog}
	for _, fc := range cfg.AccessLogFiles {
		f := &file{conf: fc, errLog: errLog}
		if err := f.open(); err != nil {
			s.Close()
			return nil, err
		}
		s.files[fc] = f
	}
	if cfg.Mail != nil {
		for _, sv := range cfg.Mail.Servers {
			for _, l := range sv.AccessLogs {
				if l.Syslog != nil && s.syslog[l.Syslog] == nil {
					s.syslog[l.Syslog] = &syslogSender{t: l.Syslog, hostname: s.env.hostname}
				}
			}
		}
	}
	return s, nil
}

// LogSession implements mail.SessionLogger: one line per access_log of
// the session's server block whose if= holds.
func (s *Set) LogSession(r *mail.SessionRecord) {
	if s == nil || r.Conf == nil {
		return
	}
	bp, _ := s.pool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 256)
		bp = &b
	}
	for _, l := range r.Conf.AccessLogs {
		if !s.env.condition(l.If, r) {
			continue
		}
		line := s.env.appendLine((*bp)[:0], l.Format, r)
		if l.Syslog != nil {
			if ss := s.syslog[l.Syslog]; ss != nil {
				ss.send(line, r.End)
			}
		} else if f := s.files[l.File]; f != nil {
			line = append(line, '\n')
			f.write(line) // copied or written before it returns
		}
		*bp = line // keep what the buffer grew to
	}
	if cap(*bp) <= 64<<10 {
		s.pool.Put(bp)
	}
}

// Reopen flushes and reopens every file (USR1); a file that cannot be
// reopened keeps its old descriptor. It returns the first error.
func (s *Set) Reopen() error {
	if s == nil {
		return nil
	}
	var first error
	for _, f := range s.files {
		if err := f.reopen(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close flushes and closes every file.
func (s *Set) Close() {
	if s == nil {
		return
	}
	for _, f := range s.files {
		f.close()
	}
	for _, ss := range s.syslog {
		ss.close()
	}
}

// file is one access log file and its buffer.
type file struct {
	conf   *confparse.AccessLogFile
	errLog ErrorLog

	mu      sync.Mutex
	f       *os.File // nil: stderr
	buf     []byte   // buffered lines (buffer=)
	timer   *time.Timer
	errTime time.Time // last write error logged
	closed  bool
}

func (f *file) name() string {
	if f.conf.Path == "" {
		return "stderr"
	}
	return f.conf.Path
}

func (f *file) open() error {
	if f.conf.Path == "" {
		return nil
	}
	fd, err := os.OpenFile(f.conf.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf(`open() "%s" failed %s`, f.conf.Path, errlog.SysErrText(err))
	}
	f.mu.Lock()
	old := f.f
	f.flushLocked()
	f.f = fd
	f.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (f *file) reopen() error { return f.open() }

func (f *file) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushLocked()
	if f.timer != nil {
		f.timer.Stop()
	}
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	f.closed = true // nothing more is written
}

// write writes one line, through the buffer when there is one: a line
// that does not fit flushes it first, and one larger than the buffer is
// written alone, as nginx does.
func (f *file) write(line []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	size := f.conf.Buffer
	if size == 0 {
		f.out(line)
		return
	}
	if f.buf == nil {
		f.buf = make([]byte, 0, size)
	}
	if len(line) > size-len(f.buf) {
		f.flushLocked()
	}
	if len(line) <= size-len(f.buf) {
		if len(f.buf) == 0 && f.conf.Flush > 0 {
			if f.timer == nil {
				f.timer = time.AfterFunc(f.conf.Flush, f.flush)
			} else {
				f.timer.Reset(f.conf.Flush)
			}
		}
		f.buf = append(f.buf, line...)
		return
	}
	f.out(line)
}

// flush writes the buffered lines (flush= timer).
func (f *file) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushLocked()
}

func (f *file) flushLocked() {
	if len(f.buf) == 0 {
		return
	}
	f.out(f.buf)
	f.buf = f.buf[:0]
	if f.timer != nil {
		f.timer.Stop()
	}
}

// out writes b to the file, gzip-compressed as one gzip member with
// gzip=; a failure is logged at most once a minute.
func (f *file) out(b []byte) {
	if f.conf.Gzip > 0 {
		var z bytes.Buffer
		zw, err := gzip.NewWriterLevel(&z, f.conf.Gzip)
		if err == nil {
			zw.Write(b) //nolint:errcheck // a bytes.Buffer
			zw.Close()  //nolint:errcheck
			b = z.Bytes()
		}
	}
	w := f.f
	if w == nil {
		w = os.Stderr
	}
	n, err := w.Write(b)
	if err == nil && n == len(b) {
		return
	}
	if now := time.Now(); now.Sub(f.errTime) > 59*time.Second {
		f.errTime = now
		if err != nil {
			f.errLog(errlog.Alert, fmt.Sprintf(`write() to "%s" failed %s`, f.name(), errlog.SysErrText(err)))
		} else {
			f.errLog(errlog.Alert, fmt.Sprintf(`write() to "%s" was incomplete: %d of %d`, f.name(), n, len(b)))
		}
	}
}

// syslogFacilities are nginx's facility names, in code order.
var syslogFacilities = []string{
	"kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp",
	"clock", "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0",
	"local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

var syslogSeverities = []string{"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

// syslogSender sends access log lines to syslog over UDP or a unix
// datagram socket, as "<PRI>Mmm dd hh:mm:ss host tag: line". Errors are
// ignored, as nginx ignores them (it logs a warning; the line is lost
// either way).
type syslogSender struct {
	t        *confparse.SyslogTarget
	hostname string

	mu   sync.Mutex
	conn net.Conn
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func (s *syslogSender) header(now time.Time) []byte {
	fac, sev := index(syslogFacilities, s.t.Facility), index(syslogSeverities, s.t.Severity)
	if fac < 0 {
		fac = 23
	}
	if sev < 0 {
		sev = 6
	}
	b := []byte("<" + strconv.Itoa(fac*8+sev) + ">")
	b = now.AppendFormat(b, "Jan _2 15:04:05")
	b = append(b, ' ')
	if !s.t.NoHostname {
		b = append(b, s.hostname...)
		b = append(b, ' ')
	}
	b = append(b, s.t.Tag...)
	return append(b, ": "...)
}

func (s *syslogSender) send(line []byte, now time.Time) {
	msg := append(s.header(now), line...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		c, err := net.Dial(s.t.Network, s.t.Addr)
		if err != nil {
			return
		}
		s.conn = c
	}
	if _, err := s.conn.Write(msg); err != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *syslogSender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}
