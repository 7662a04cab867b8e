package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/mail/errlog"
)

// syslogFacilities are nginx's facility names, in code order.
var syslogFacilities = []string{
	"kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp",
	"clock", "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0",
	"local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// syslogTarget is a parsed "syslog:server=...,facility=...,tag=...,
// nohostname" error_log target.
type syslogTarget struct {
	network, addr string // "udp"/"unixgram" and the dial address
	facility      int    // default local7 (23)
	tag           string // default "nginx"
	nohostname    bool
}

// parseSyslogTarget reads the parameters after "syslog:". The severity
// parameter is accepted and ignored: an error_log line's syslog severity
// is its own level, as in nginx.
func parseSyslogTarget(spec string) (*syslogTarget, error) {
	rest, ok := strings.CutPrefix(spec, "syslog:")
	if !ok {
		return nil, fmt.Errorf("not a syslog target: %q", spec)
	}
	t := &syslogTarget{facility: 23, tag: "nginx"}
	seen := map[string]bool{}
	for _, p := range strings.Split(rest, ",") {
		key, val, hasVal := strings.Cut(p, "=")
		if !hasVal && key != "nohostname" {
			return nil, fmt.Errorf("unknown syslog parameter %q", p)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate syslog %q", key)
		}
		seen[key] = true
		switch key {
		case "server":
			if path, isUnix := strings.CutPrefix(val, "unix:"); isUnix {
				t.network, t.addr = "unixgram", path
				continue
			}
			t.network, t.addr = "udp", val
			if _, _, err := net.SplitHostPort(val); err != nil {
				host := strings.TrimSuffix(strings.TrimPrefix(val, "["), "]")
				t.addr = net.JoinHostPort(host, "514")
			}
		case "facility":
			t.facility = -1
			for i, f := range syslogFacilities {
				if f == val {
					t.facility = i
				}
			}
			if t.facility < 0 {
				return nil, fmt.Errorf("unknown syslog facility %q", val)
			}
		case "severity":
			if _, ok := errlog.ParseLevel(val); !ok {
				return nil, fmt.Errorf("unknown syslog severity %q", val)
			}
		case "tag":
			t.tag = val
		case "nohostname":
			t.nohostname = true
		default:
			return nil, fmt.Errorf("unknown syslog parameter %q", p)
		}
	}
	if t.addr == "" {
		return nil, fmt.Errorf("no syslog server specified")
	}
	return t, nil
}

// syslogSink sends error_log lines to a syslog server over UDP (or a unix
// datagram socket) in nginx's shape:
//
//	<PRI>Nov 26 05:03:46 host nginx: 2026/11/26 05:03:46 [notice] 15415#15415: message
//
// Sending errors are ignored, as nginx ignores them.
type syslogSink struct {
	t        *syslogTarget
	hostname string
	format   *errlog.Formatter
	now      func() time.Time

	mu   sync.Mutex
	conn net.Conn
}

func (s *syslogSink) write(e *logrus.Entry) error {
	line, err := s.format.Format(e)
	if err != nil || len(line) == 0 {
		return err
	}
	msg := s.header(errlog.Of(e)) + strings.TrimSuffix(string(line), "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		c, err := net.Dial(s.t.network, s.t.addr)
		if err != nil {
			return nil
		}
		s.conn = c
	}
	if _, err := s.conn.Write([]byte(msg)); err != nil {
		s.conn.Close()
		s.conn = nil
	}
	return nil
}

// header is "<PRI>Mmm dd hh:mm:ss host tag: ".
func (s *syslogSink) header(l errlog.Level) string {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	var b strings.Builder
	b.WriteString("<" + strconv.Itoa(s.t.facility*8+int(l)) + ">")
	b.WriteString(now().Format("Jan _2 15:04:05"))
	b.WriteByte(' ')
	if !s.t.nohostname {
		b.WriteString(s.hostname + " ")
	}
	b.WriteString(s.t.tag + ": ")
	return b.String()
}

func (s *syslogSink) reopen() error { return nil }

func (s *syslogSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}
