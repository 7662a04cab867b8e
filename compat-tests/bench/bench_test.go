package main

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const straceSample = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.00    0.000400          10        40           recvfrom
 30.00    0.000300           5        60        20 read
 20.00    0.000200          20        10           epoll_ctl
 10.00    0.000100         100         1           accept4
------ ----------- ----------- --------- --------- ----------------
100.00    0.001000           9       111        20 total
`

func TestParseStraceC(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]float64
		wantErr bool
	}{
		{"sample", straceSample, map[string]float64{"recvfrom": 40, "read": 60, "epoll_ctl": 10, "accept4": 1, "total": 111}, false},
		{"empty", "", nil, true},
		{"no total", "% time     seconds  usecs/call     calls    errors syscall\n 40.00 0.1 10 40 recvfrom\n", nil, true},
		{"garbage", "strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStraceC([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func FuzzParseStraceC(f *testing.F) {
	f.Add([]byte(straceSample))
	f.Add([]byte(""))
	f.Add([]byte("1 2 3 4 total\n"))
	f.Add([]byte("a b c NaN total\n- - - - -\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseStraceC(b)
		if err == nil && got["total"] == 0 {
			t.Fatalf("no error but no total: %v", got)
		}
	})
}

func TestLoginResultMerge(t *testing.T) {
	mk := func(ok int64, el time.Duration, lat ...time.Duration) loginResult {
		r := loginResult{ok: ok, elapsed: el, lat: lat}
		r.finish()
		return r
	}
	a := mk(100, time.Second, 1, 2, 3, 4)
	b := mk(300, time.Second, 5, 6, 7, 8)
	b.failed, b.firstErr = 2, "boom"
	m := a.merge(b)
	if m.ok != 400 || m.failed != 2 || m.firstErr != "boom" {
		t.Fatalf("merged %+v", m)
	}
	if m.rate != 200 {
		t.Errorf("rate = %v, want 200 (400 logins in 2 s)", m.rate)
	}
	if m.p50 != 5 || m.p99 != 8 {
		t.Errorf("p50, p99 = %v, %v, want 5, 8", m.p50, m.p99)
	}
}

// listenServe starts one of serve.go's servers on a loopback port.
func listenServe(t *testing.T, h func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h(c)
		}
	}()
	return ln.Addr().String()
}

// dialogue sends each line and checks the reply's first line(s).
func dialogue(t *testing.T, address string, steps [][2]string) {
	t.Helper()
	c, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, s := range steps {
		if s[0] != "" {
			io.WriteString(c, s[0])
		}
		for _, want := range strings.Split(s[1], "\n") {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, want) {
				t.Fatalf("after %q: got %q (%v), want %q", s[0], line, err, want)
			}
		}
	}
}

// The upstreams speak what the proxies send to log in (proxy/login.go,
// nginx's ngx_mail_proxy_module), then the bench's client commands.
func TestUpstreamDialogues(t *testing.T) {
	t.Run("pop3", func(t *testing.T) {
		dialogue(t, listenServe(t, servePOP3), [][2]string{
			{"", "+OK upstream ready"},
			{"USER bench\r\n", "+OK"},
			{"PASS secret\r\n", "+OK"},
			{"STAT\r\n", "+OK 0 0"},
			{"UP 5\r\nxxxxx", "+OK done"},
			{"QUIT\r\n", "+OK bye"},
		})
	})
	t.Run("imap literal login", func(t *testing.T) {
		dialogue(t, listenServe(t, serveIMAP), [][2]string{
			{"", "* OK"},
			{"a LOGIN {5}\r\n", "+ "},
			{"bench {6}\r\n", "+ "},
			{"secret\r\n", "a OK LOGIN completed"},
			{"b NOOP\r\n", "b OK NOOP completed"},
			{"c LOGOUT\r\n", "* BYE\nc OK"},
		})
	})
	t.Run("smtp xclient", func(t *testing.T) {
		dialogue(t, listenServe(t, serveSMTP), [][2]string{
			{"", "220 "},
			{"EHLO proxy\r\n", "250-\n250-\n250 "},
			{"XCLIENT ADDR=127.0.0.1 LOGIN=bench NAME=[UNAVAILABLE]\r\n", "220 "},
			{"EHLO bench.example\r\n", "250-\n250-\n250 "},
			{"NOOP\r\n", "250 2.0.0 ok"},
			{"QUIT\r\n", "221 "},
		})
	})
	t.Run("smtp helo mail", func(t *testing.T) {
		dialogue(t, listenServe(t, serveSMTP), [][2]string{
			{"", "220 "},
			{"HELO proxy\r\n", "250 "},
			{"MAIL FROM:<a@b>\r\n", "250 "},
			{"RCPT TO:<c@d>\r\n", "250 "},
		})
	})
}

func TestAuthServer(t *testing.T) {
	p := servePorts{pop3: 1110, imap: 1143, smtp: 1125}
	address := listenServe(t, func(c net.Conn) { serveAuthConn(c, p) })
	for _, tt := range []struct{ proto, port string }{{"imap", "1143"}, {"smtp", "1125"}, {"pop3", "1110"}} {
		n0 := authRequests.Load()
		c, err := net.Dial("tcp", address)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /auth HTTP/1.0\r\nHost: x\r\nAuth-Method: plain\r\nAuth-User: bench\r\nAuth-Pass: secret\r\nAuth-Protocol: "+tt.proto+"\r\nAuth-Login-Attempt: 1\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		s := string(b)
		if !strings.HasPrefix(s, "HTTP/1.0 200 OK\r\n") || !strings.Contains(s, "\r\nAuth-Status: OK\r\n") ||
			!strings.Contains(s, "\r\nAuth-Port: "+tt.port+"\r\n") || !strings.HasSuffix(s, "\r\n\r\n") {
			t.Errorf("%s: answer %q", tt.proto, s)
		}
		if got := authRequests.Load() - n0; got != 1 {
			t.Errorf("%s: counted %d requests, want 1", tt.proto, got)
		}
	}
}
