package main

import (
	"io"
	"os"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/accesslog"
	"mailgate/mail/errlog"
)

// sink is one error_log target of the running server.
type sink interface {
	write(e *logrus.Entry) error
	reopen() error // USR1
	close()
}

// logSink is one error_log target of the running server: a file that
// USR1 reopens, or stderr. Each sink filters by its own level.
type logSink struct {
	mu     sync.Mutex
	path   string // "" for stderr
	w      io.Writer
	f      *os.File
	format *errlog.Formatter
}

// write formats e for this sink's level and writes it.
func (s *logSink) write(e *logrus.Entry) error {
	b, err := s.format.Format(e)
	if err != nil || len(b) == 0 {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(b)
	return err
}

func (s *logSink) reopen() error {
	if err := s.open(); err != nil {
		return &openError{s.path, err}
	}
	return nil
}

func (s *logSink) open() error {
	if s.path == "" {
		return nil
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.f
	s.f, s.w = f, f
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (s *logSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
		s.w = io.Discard
	}
}

// runLog is the server's logger: logrus with one hook that writes each
// entry to the error_log targets it belongs to. Lines tagged with
// errlog.ServerKey go to that server's error_log directives (its own or
// those inherited from mail{}), the rest to the main-level ones, as in
// nginx.
type runLog struct {
	Logger  *logrus.Logger
	main    []sink
	servers map[*confparse.Server][]sink
	all     []sink
	// Access is the configuration's access logs (mailgate-only); USR1
	// reopens them with the error logs, Close flushes them.
	Access *accesslog.Set
}

// newRunLog builds the logger for the configuration's error_log
// directives. With no main-level error_log, the early log target (-e or
// the default stderr) is used at level error, as nginx does. syslog:
// targets are sent to over UDP; memory: targets are skipped.
func newRunLog(cfg *confparse.Config, early string, stderr io.Writer) (*runLog, error) {
	r := &runLog{
		Logger: &logrus.Logger{
			Out:       io.Discard,
			Formatter: nopFormatter{},
			Hooks:     make(logrus.LevelHooks),
			Level:     logrus.DebugLevel,
		},
		servers: map[*confparse.Server][]sink{},
	}
	host, _ := os.Hostname()
	host = strings.ToLower(host)
	open := func(targets []confparse.LogTarget) ([]sink, error) {
		var sinks []sink
		for _, t := range targets {
			format := &errlog.Formatter{Min: t.Level}
			var s sink
			switch {
			case t.Path == "stderr" || t.Path == "":
				s = &logSink{w: stderr, format: format}
			case strings.HasPrefix(t.Path, "syslog:"):
				st, err := parseSyslogTarget(t.Path)
				if err != nil {
					return nil, err
				}
				s = &syslogSink{t: st, hostname: host, format: format}
			case isLogFile(t.Path):
				ls := &logSink{path: t.Path, format: format}
				if err := ls.open(); err != nil {
					return nil, &openError{t.Path, err}
				}
				s = ls
			default: // memory: needs a debug build in nginx too
				continue
			}
			sinks = append(sinks, s)
			r.all = append(r.all, s)
		}
		return sinks, nil
	}
	targets := cfg.Core.ErrorLogs
	if len(targets) == 0 {
		targets = []confparse.LogTarget{{Path: early, Level: confparse.SevError}}
	}
	var err error
	if r.main, err = open(targets); err != nil {
		r.Close()
		return nil, err
	}
	if cfg.Mail != nil {
		for _, sv := range cfg.Mail.Servers {
			if len(sv.Core.ErrorLogs) == 0 {
				continue
			}
			if r.servers[sv], err = open(sv.Core.ErrorLogs); err != nil {
				r.Close()
				return nil, err
			}
		}
	}
	// Lines no target writes are not even rendered (a session's info lines
	// with every error_log at "error", nginx's default).
	verbose := errlog.Emerg
	for _, t := range targets {
		verbose = max(verbose, t.Level)
	}
	if cfg.Mail != nil {
		for _, sv := range cfg.Mail.Servers {
			for _, t := range sv.Core.ErrorLogs {
				verbose = max(verbose, t.Level)
			}
		}
	}
	r.Logger.Level = errlog.LogrusLevel(verbose)
	r.Logger.AddHook(r)
	if r.Access, err = accesslog.Open(cfg, func(l errlog.Level, msg string) {
		errlog.Log(logrus.NewEntry(r.Logger), l, msg)
	}); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Levels implements logrus.Hook.
func (r *runLog) Levels() []logrus.Level { return logrus.AllLevels }

// Fire implements logrus.Hook: route the entry to its sinks.
func (r *runLog) Fire(e *logrus.Entry) error {
	sinks := r.main
	if sv, ok := e.Data[errlog.ServerKey].(*confparse.Server); ok {
		if own, ok := r.servers[sv]; ok {
			sinks = own
		}
	}
	var first error
	for _, s := range sinks {
		if err := s.write(e); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Reopen reopens every log file (USR1).
func (r *runLog) Reopen() error {
	var first error
	for _, s := range r.all {
		if err := s.reopen(); err != nil && first == nil {
			first = err
		}
	}
	if err := r.Access.Reopen(); err != nil && first == nil {
		first = err
	}
	return first
}

// Close closes every log file.
func (r *runLog) Close() {
	r.Access.Close()
	for _, s := range r.all {
		s.close()
	}
}

// openError renders as nginx's `open() "FILE" failed (N: text)`.
type openError struct {
	path string
	err  error
}

func (e *openError) Error() string {
	return "open() \"" + e.path + "\" failed " + errnoText(e.err)
}

// nopFormatter formats nothing: the hooks do the writing.
type nopFormatter struct{}

func (nopFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }
