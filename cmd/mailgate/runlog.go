package main

import (
	"io"
	"os"
	"sync"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// logSink is one error_log target of the running server: a file that
// USR1 reopens, or stderr. Each sink filters by its own level.
type logSink struct {
	mu     sync.Mutex
	path   string // "" for stderr
	w      io.Writer
	f      *os.File
	format *errlog.Formatter
}

func (s *logSink) Levels() []logrus.Level { return logrus.AllLevels }

func (s *logSink) Fire(e *logrus.Entry) error {
	b, err := s.format.Format(e)
	if err != nil || len(b) == 0 {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(b)
	return err
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

// runLog is the server's logger: logrus with one hook per error_log.
type runLog struct {
	Logger *logrus.Logger
	sinks  []*logSink
}

// newRunLog builds the logger for the main-level error_log directives.
// With none configured, the early log target (-e or the default stderr)
// is used at level error, as nginx does. syslog: and memory: targets are
// not supported and are skipped.
func newRunLog(cfg *confparse.Config, early string, stderr io.Writer) (*runLog, error) {
	targets := cfg.Core.ErrorLogs
	if len(targets) == 0 {
		targets = []confparse.LogTarget{{Path: early, Level: confparse.SevError}}
	}
	r := &runLog{Logger: &logrus.Logger{
		Out:       io.Discard,
		Formatter: nopFormatter{},
		Hooks:     make(logrus.LevelHooks),
		Level:     logrus.DebugLevel,
	}}
	for _, t := range targets {
		s := &logSink{w: stderr, format: &errlog.Formatter{Min: errlog.Level(t.Level)}}
		switch {
		case t.Path == "stderr" || t.Path == "":
		case isLogFile(t.Path):
			s.path = t.Path
			if err := s.open(); err != nil {
				r.Close()
				return nil, &openError{t.Path, err}
			}
		default:
			continue
		}
		r.sinks = append(r.sinks, s)
		r.Logger.AddHook(s)
	}
	return r, nil
}

// Reopen reopens every log file (USR1).
func (r *runLog) Reopen() error {
	var first error
	for _, s := range r.sinks {
		if err := s.open(); err != nil && first == nil {
			first = &openError{s.path, err}
		}
	}
	return first
}

// Close closes every log file.
func (r *runLog) Close() {
	for _, s := range r.sinks {
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
