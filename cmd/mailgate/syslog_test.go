package main

import (
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

func TestParseSyslogTarget(t *testing.T) {
	tests := []struct {
		in   string
		want syslogTarget
		err  string
	}{
		{in: "syslog:server=127.0.0.1", want: syslogTarget{network: "udp", addr: "127.0.0.1:514", facility: 23, tag: "nginx"}},
		{in: "syslog:server=127.0.0.1:5140,facility=mail,tag=mg,nohostname",
			want: syslogTarget{network: "udp", addr: "127.0.0.1:5140", facility: 2, tag: "mg", nohostname: true}},
		{in: "syslog:server=[::1]", want: syslogTarget{network: "udp", addr: "[::1]:514", facility: 23, tag: "nginx"}},
		{in: "syslog:server=unix:/dev/log,severity=info", want: syslogTarget{network: "unixgram", addr: "/dev/log", facility: 23, tag: "nginx"}},
		{in: "syslog:facility=mail", err: "no syslog server specified"},
		{in: "syslog:server=a,server=b", err: `duplicate syslog "server"`},
		{in: "syslog:server=a,facility=nope", err: `unknown syslog facility "nope"`},
		{in: "syslog:server=a,colour=red", err: `unknown syslog parameter "colour=red"`},
		{in: "/var/log/x", err: `not a syslog target: "/var/log/x"`},
	}
	for _, tc := range tests {
		got, err := parseSyslogTarget(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || *got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestSyslogSink checks the datagram shape captured from nginx 1.22.1:
// <189>Nov 26 05:03:46 vm nginx: 2026/11/26 05:03:46 [notice] 15415#15415: msg
func TestSyslogSink(t *testing.T) {
	pc := inRange(t, func(a string) (net.PacketConn, error) { return net.ListenPacket("udp", a) })
	defer pc.Close()
	cfg := &confparse.Config{Core: confparse.Core{ErrorLogs: []confparse.LogTarget{
		{Path: "syslog:server=" + pc.LocalAddr().String(), Level: confparse.SevInfo},
		{Path: "syslog:server=" + pc.LocalAddr().String() + ",facility=mail,tag=mg,nohostname", Level: confparse.SevWarn},
	}}}
	r, err := newRunLog(cfg, "stderr", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := logrus.NewEntry(r.Logger)
	errlog.Log(e, errlog.Notice, "first")
	errlog.Log(e, errlog.Error, "second")

	want := []*regexp.Regexp{
		regexp.MustCompile(`^<189>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ nginx: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[notice\] \d+#\d+: first$`),
		regexp.MustCompile(`^<187>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ nginx: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#\d+: second$`),
		regexp.MustCompile(`^<19>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d mg: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#\d+: second$`),
	}
	var got []string
	buf := make([]byte, 4096)
	pc.SetDeadline(time.Now().Add(3 * time.Second))
	for len(got) < len(want) {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	for i, re := range want {
		if !re.MatchString(got[i]) {
			t.Errorf("datagram %d = %q, want %s", i, got[i], re)
		}
	}
}

func TestSyslogHeaderDay(t *testing.T) {
	s := &syslogSink{t: &syslogTarget{facility: 23, tag: "nginx"}, hostname: "vm",
		now: func() time.Time { return time.Date(2026, 3, 5, 7, 8, 9, 0, time.Local) }}
	if got, want := s.header(errlog.Warn), "<188>Mar  5 07:08:09 vm nginx: "; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
}
