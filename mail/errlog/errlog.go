// Package errlog renders logrus entries as nginx error_log lines:
//
//	2026/11/26 02:50:08 [emerg] 15521#15521: *3 message
//
// nginx has eight levels and logrus seven, so the nginx level travels in
// the entry field LevelKey; entries without it map from the logrus level.
// The connection number travels in ConnKey. Filtering is by nginx level
// (Formatter.Min), so notice and info can be told apart.
package errlog

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
)

// Level is an nginx log level; lower is more severe.
type Level int

const (
	Emerg Level = iota
	Alert
	Crit
	Error
	Warn
	Notice
	Info
	Debug
)

var names = [...]string{"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

func (l Level) String() string {
	if l >= 0 && int(l) < len(names) {
		return names[l]
	}
	return "debug"
}

// ParseLevel reads an error_log level word.
func ParseLevel(s string) (Level, bool) {
	for i, n := range names {
		if n == s {
			return Level(i), true
		}
	}
	return Debug, false
}

// Entry field names.
const (
	LevelKey = "nginx_level" // Level
	ConnKey  = "conn"        // uint64 connection number, rendered "*N "
	// ServerKey carries the *confparse.Server a line belongs to (not
	// rendered). cmd/mailgate routes such lines to that server's
	// error_log directives; lines without it go to the main-level logs.
	ServerKey = "mail_server"
)

// Formatter renders nginx error_log lines. Entries less severe than Min are
// dropped (Format returns no bytes).
type Formatter struct {
	Min Level
	Pid int // 0: os.Getpid()
	// Now is the clock; nil means time.Now (tests pin it).
	Now func() time.Time
}

// maxLine is nginx's NGX_MAX_ERROR_STR: a line and its line feed fit in
// it, longer lines are cut.
const maxLine = 2048

// CutMessage cuts msg where nginx would when it writes it to an error log
// at level lvl from process pid (without a connection number): so that
// the whole line, time and pid included, fits in NGX_MAX_ERROR_STR. A
// trailing system error, " (36: File name too long)", is kept: nginx
// writes it after the message, cutting the message 50 bytes before the
// end of its buffer and marking the cut with "...". The foreground copy
// on stderr ("nginx: [emerg] ...") carries the same text.
func CutMessage(lvl Level, pid int, msg string) string {
	header := len("2006/01/02 15:04:05 [") + len(lvl.String()) + len("] ") + 2*len(strconv.Itoa(pid)) + len("#: ")
	if header+len(msg) <= maxLine-1 {
		return msg
	}
	body, errText := msg, ""
	if m := errnoSuffix.FindStringIndex(msg); m != nil {
		body, errText = msg[:m[0]], msg[m[0]:]
	}
	if errText != "" {
		if header+len(body) > maxLine-50 {
			body = body[:maxLine-50-header] + "..."
		}
		msg = body + errText
	}
	if header+len(msg) > maxLine-1 {
		msg = msg[:maxLine-1-header]
	}
	return msg
}

// errnoSuffix is the " (N: text)" nginx appends for a system error.
var errnoSuffix = regexp.MustCompile(` \(\d+: [^()]*\)$`)

// Format implements logrus.Formatter.
func (f *Formatter) Format(e *logrus.Entry) ([]byte, error) {
	lvl := Of(e)
	if lvl > f.Min {
		return nil, nil
	}
	pid := f.Pid
	if pid == 0 {
		pid = os.Getpid()
	}
	t := e.Time
	if f.Now != nil {
		t = f.Now()
	}
	var b bytes.Buffer
	b.WriteString(t.Format("2006/01/02 15:04:05"))
	b.WriteString(" [")
	b.WriteString(lvl.String())
	b.WriteString("] ")
	b.WriteString(strconv.Itoa(pid))
	b.WriteByte('#')
	b.WriteString(strconv.Itoa(pid))
	b.WriteString(": ")
	if c, ok := e.Data[ConnKey]; ok {
		fmt.Fprintf(&b, "*%v ", c)
	}
	b.WriteString(e.Message)
	// nginx keeps room for the line feed in its NGX_MAX_ERROR_STR buffer.
	if b.Len() > maxLine-1 {
		b.Truncate(maxLine - 1)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Of returns the nginx level of an entry.
func Of(e *logrus.Entry) Level {
	if v, ok := e.Data[LevelKey]; ok {
		if l, ok := v.(Level); ok {
			return l
		}
	}
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel:
		return Emerg
	case logrus.ErrorLevel:
		return Error
	case logrus.WarnLevel:
		return Warn
	case logrus.InfoLevel:
		return Info
	default:
		return Debug
	}
}

// Log writes msg at nginx level l through e.
func Log(e *logrus.Entry, l Level, msg string) {
	if !Enabled(e, l) {
		return
	}
	e.WithField(LevelKey, l).Log(LogrusLevel(l), msg)
}

// Enabled tells whether a line at nginx level l can reach e's logger, so
// that callers skip rendering one that cannot (the info lines of every
// session, with error_log at its default level). It errs on the side of
// true: the logger's hooks and formatter still filter finer levels.
func Enabled(e *logrus.Entry, l Level) bool {
	return e != nil && e.Logger.IsLevelEnabled(LogrusLevel(l))
}

// LogrusLevel is the logrus level lines at nginx level l are logged at:
// a logger whose level is LogrusLevel of its most verbose target's level
// renders nothing that no target writes.
func LogrusLevel(l Level) logrus.Level {
	switch {
	case l <= Error:
		return logrus.ErrorLevel
	case l == Warn:
		return logrus.WarnLevel
	case l <= Info:
		return logrus.InfoLevel
	}
	return logrus.DebugLevel
}

// Logf is Log with formatting.
func Logf(e *logrus.Entry, l Level, format string, args ...any) {
	Log(e, l, fmt.Sprintf(format, args...))
}
