package authserver

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func exchange(t *testing.T, network, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func request(method, user, pass, salt, proto string) string {
	s := "GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\nAuth-Method: " + method +
		"\r\nAuth-User: " + user + "\r\nAuth-Pass: " + pass + "\r\n"
	if salt != "" {
		s += "Auth-Salt: " + salt + "\r\n"
	}
	return s + "Auth-Protocol: " + proto + "\r\nAuth-Login-Attempt: 1\r\nClient-IP: 127.0.0.1\r\n\r\n"
}

const salt = "<2019300792.1795661462@mx.test>"

func TestAnswers(t *testing.T) {
	script := Script{
		Users: map[string]User{
			"good":    {Password: "p w", Upstream: "127.0.0.1:19110"},
			"user":    {Password: "secret", Upstream: "127.0.0.1:19143"},
			"wait":    {Password: "x", Upstream: "127.0.0.1:1", Behavior: &Behavior{Status: "WAIT", Wait: "1"}},
			"host":    {Password: "x", Upstream: "127.0.0.1:1", Behavior: &Behavior{Server: "localhost"}},
			"raw":     {Behavior: &Behavior{Raw: []byte("Auth-Status: OK\n\n")}},
			"noserv":  {Password: "x", Upstream: "127.0.0.1:7", Behavior: &Behavior{NoServer: true}},
			"code":    {Password: "x", Behavior: &Behavior{Status: "Temporary server problem, try again later", ErrorCode: "451 4.3.0"}},
			"rewrite": {Password: "x", Upstream: "127.0.0.1:7", Behavior: &Behavior{User: "other", Pass: "np"}},
		},
		FailWait:     "2",
		NoneUpstream: "127.0.0.1:19025",
	}
	s, err := Start("127.0.0.1:0", script)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	tests := []struct {
		name, req, want string
	}{
		{"plain ok (escaped pass)", request("plain", "good", "p%20w", "", "pop3"),
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 19110\r\n\r\n"},
		{"plain bad", request("plain", "good", "nope", "", "imap"),
			"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 2\r\n\r\n"},
		{"unknown user", request("plain", "ghost", "x", "", "imap"),
			"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 2\r\n\r\n"},
		{"apop ok", request("apop", "user", APOPDigest(salt, "secret"), salt, "pop3"),
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 19143\r\nAuth-Pass: secret\r\n\r\n"},
		{"apop bad digest", request("apop", "user", APOPDigest(salt, "wrong"), salt, "pop3"),
			"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 2\r\n\r\n"},
		{"cram-md5 ok", request("cram-md5", "user", CRAMMD5Digest(salt, "secret"), salt, "imap"),
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 19143\r\nAuth-Pass: secret\r\n\r\n"},
		{"none", request("none", "", "", "", "smtp"),
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 19025\r\n\r\n"},
		{"wait", request("plain", "wait", "x", "", "imap"),
			"HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n"},
		{"hostname", request("plain", "host", "x", "", "imap"),
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: localhost\r\nAuth-Port: 1\r\n\r\n"},
		{"raw", request("plain", "raw", "x", "", "imap"), "Auth-Status: OK\n\n"},
		{"no server", request("plain", "noserv", "x", "", "imap"),
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Port: 7\r\n\r\n"},
		{"error code", request("plain", "code", "x", "", "smtp"),
			"HTTP/1.0 200 OK\r\nAuth-Status: Temporary server problem, try again later\r\nAuth-Wait: 2\r\nAuth-Error-Code: 451 4.3.0\r\n\r\n"},
		{"overrides", request("plain", "rewrite", "x", "", "imap"),
			"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 7\r\nAuth-User: other\r\nAuth-Pass: np\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := exchange(t, "tcp", s.Addr(), tc.req); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	reqs := s.Requests()
	if len(reqs) != len(tests) {
		t.Fatalf("recorded %d requests, want %d", len(reqs), len(tests))
	}
	for i, tc := range tests {
		if string(reqs[i]) != tc.req {
			t.Errorf("request %d recorded as %q, want %q", i, reqs[i], tc.req)
		}
	}
}

func TestOverrideAndUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.sock")
	s, err := Start("unix:"+path, Script{Users: map[string]User{"good": {Password: "pw", Upstream: "127.0.0.1:5"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := "unix:" + path + ":/auth"; s.URL() != want {
		t.Errorf("URL %q, want %q", s.URL(), want)
	}
	req := request("plain", "good", "pw", "", "imap")
	cases := []struct {
		b    *Behavior
		want string
	}{
		{nil, "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 5\r\n\r\n"},
		{&Behavior{Close: true}, ""},
		{&Behavior{Garbage: true}, "garbage line\r\n\r\n"},
		{&Behavior{Oversize: true}, string(OversizeResponse())},
		{&Behavior{Delay: 50 * time.Millisecond, StatusLine: "-", Server: "::1"}, "Auth-Status: OK\r\nAuth-Server: ::1\r\nAuth-Port: 5\r\n\r\n"},
	}
	for i, tc := range cases {
		s.SetOverride(tc.b)
		if got := exchange(t, "unix", path, req); got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, got, tc.want)
		}
	}
	if len(OversizeResponse()) <= 1024 {
		t.Error("oversize response is not oversize")
	}
	s.SetOverride(&Behavior{Hang: true})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, req)
	time.Sleep(50 * time.Millisecond)
	s.Close() // must not block on the hanging connection
	b, _ := io.ReadAll(c)
	if len(b) != 0 {
		t.Errorf("hang answered %q", b)
	}
	if n := len(s.Parsed()); n != len(cases)+1 {
		t.Errorf("parsed %d requests, want %d", n, len(cases)+1)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"p%20w": "p w", "pass%25word%20": "pass%word ", "a%0": "a%0", "%zz": "%zz", "%41%4a": "AJ", "": "",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.EqualFold(CRAMMD5Digest("<1896.697170952@postoffice.reston.mci.net>", "tanstaaftanstaaf"), "b913a602c7eda7a495b4e6e7334d3890") {
		t.Error("CRAM-MD5 digest does not match RFC 2195's example")
	}
	if APOPDigest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf") != "c4c9334bac560ecc979e58001b3e22fb" {
		t.Error("APOP digest does not match RFC 1939's example")
	}
}

func TestSequence(t *testing.T) {
	s, err := Start("127.0.0.1:0", Script{
		Users:   map[string]User{"good": {Password: "pw", Upstream: "127.0.0.1:5"}},
		Handler: Sequence(&Behavior{Status: "WAIT", Wait: "1"}, nil, &Behavior{Close: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := request("plain", "good", "pw", "", "imap")
	ok := "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 5\r\n\r\n"
	for i, want := range []string{"HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n", ok, "", ok, ok} {
		if got := exchange(t, "tcp", s.Addr(), req); got != want {
			t.Errorf("request %d: got %q, want %q", i, got, want)
		}
	}
}

// FuzzReadRequest: no panic; a complete request is recorded byte for byte
// and re-reading its bytes gives the same headers.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(request("apop", "u%20v", "x", salt, "pop3")))
	f.Add([]byte("GET / HTTP/1.0\nA:b\n\n"))
	f.Add([]byte("GET / HTTP/1.0\r\nNoColon\r\n\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadRequest(strings.NewReader(string(data)))
		if err != nil {
			if r != nil && !strings.HasPrefix(string(data), string(r.Raw)) {
				t.Fatalf("partial raw %q is not a prefix", r.Raw)
			}
			return
		}
		if !strings.HasPrefix(string(data), string(r.Raw)) {
			t.Fatalf("raw %q is not a prefix of the input", r.Raw)
		}
		r2, err := ReadRequest(strings.NewReader(string(r.Raw)))
		if err != nil || len(r2.Headers) != len(r.Headers) || r2.Line != r.Line {
			t.Fatalf("re-read differs: %v", err)
		}
		_ = r.User() + r.Pass()
	})
}

// FuzzUnescape: never longer than the input, identity without '%'.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"p%20w", "%", "%%41", "%4", "%zz", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u := Unescape(s)
		if len(u) > len(s) {
			t.Fatalf("Unescape(%q) = %q grew", s, u)
		}
		if !strings.Contains(s, "%") && u != s {
			t.Fatalf("Unescape(%q) = %q changed", s, u)
		}
	})
}
