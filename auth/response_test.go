package auth

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	up := "Auth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n"
	tests := []struct {
		name string
		in   string
		err  error
		n    int // bytes consumed; -1: len(in)
		chk  func(t *testing.T, r *Response)
	}{
		{"status line skipped", "HTTP/1.1 500 Oops\r\nAuth-Status: OK\r\n" + up + "\r\nbody", nil, -5,
			func(t *testing.T, r *Response) {
				if r.Failed || string(r.Server) != "127.0.0.1" || string(r.Port) != "143" {
					t.Errorf("%+v", r)
				}
			}},
		{"no status line, LF only", "Auth-Status: OK\nAuth-Server: 1.2.3.4\nAuth-Port: 1\n\n", nil, -1,
			func(t *testing.T, r *Response) {
				if string(r.Server) != "1.2.3.4" {
					t.Errorf("server %q", r.Server)
				}
			}},
		{"HTTP prefix only partly", "HTTX: y\r\n\r\n", nil, -1, nil},
		{"tab is not trimmed", "Auth-Status:\tOK\r\n\r\n", nil, -1,
			func(t *testing.T, r *Response) {
				if !r.Failed || string(r.Message) != "\tOK" {
					t.Errorf("%+v", r)
				}
			}},
		{"spaces trimmed, inner kept", "Auth-Status:   a  b \t c   \r\n\r\n", nil, -1,
			func(t *testing.T, r *Response) {
				if string(r.Message) != "a  b \t c" {
					t.Errorf("message %q", r.Message)
				}
			}},
		{"failure sticks, last failure text", "Auth-Status: one\r\nAuth-Status: two\r\nAuth-Status: OK\r\nAuth-Status: WAIT\r\n\r\n", nil, -1,
			func(t *testing.T, r *Response) {
				if !r.Failed || string(r.Message) != "two" || !r.Wait {
					t.Errorf("%+v", r)
				}
			}},
		{"name without colon: empty value", "Auth-Server: 1.1.1.1\r\nAuth-Server\r\nX-Y\r\n\r\n", nil, -1,
			func(t *testing.T, r *Response) {
				if r.Server == nil || len(r.Server) != 0 {
					t.Errorf("server %q", r.Server)
				}
			}},
		{"case-insensitive names, last wins", "AUTH-SERVER: 1.1.1.1\r\nauth-server: 2.2.2.2\r\nauth-USER: u\r\nAuth-Pass:\r\nAuth-Error-Code: 451 4.3.0\r\n\r\n", nil, -1,
			func(t *testing.T, r *Response) {
				if string(r.Server) != "2.2.2.2" || string(r.User) != "u" || r.Pass == nil || len(r.Pass) != 0 || string(r.ErrorCode) != "451 4.3.0" {
					t.Errorf("%+v", r)
				}
			}},
		{"wait numeric then junk", "Auth-Wait: 3\r\nAuth-Wait: x\r\nAuth-Wait: -1\r\n\r\n", nil, -1,
			func(t *testing.T, r *Response) {
				if !r.HasWait || r.WaitSeconds != 3 {
					t.Errorf("%+v", r)
				}
			}},
		{"wait overflow ignored", "Auth-Wait: 99999999999999999999\r\n\r\n", nil, -1,
			func(t *testing.T, r *Response) {
				if r.HasWait {
					t.Errorf("%+v", r)
				}
			}},
		{"empty block", "\r\n", nil, 2, nil},
		{"digit first", "1X: y\r\n\r\n", nil, -1, nil},
		{"underscore", "Auth_Status: OK\r\n\r\n", ErrInvalidHeader, 0, nil},
		{"space in name", "Auth-Status OK\r\n\r\n", ErrInvalidHeader, 0, nil},
		{"dash first", "-X: y\r\n\r\n", ErrInvalidHeader, 0, nil},
		{"space first", " X: y\r\n\r\n", ErrInvalidHeader, 0, nil},
		{"garbage", "garbage line\r\n\r\n", ErrInvalidHeader, 0, nil},
		{"bare CR in status line", "HTTP/1.0 200 OK\rX\r\n\r\n", ErrInvalidResponse, 0, nil},
		{"bare CR in value", "Auth-Status: OK\rX\r\n\r\n", ErrInvalidHeader, 0, nil},
		{"bare CR in name", "Auth-Status\rX\r\n\r\n", ErrInvalidHeader, 0, nil},
		{"bare CR at end", "Auth-Status: OK\r\n\rX", ErrInvalidHeader, 0, nil},
		{"error before the end is seen", "Auth-Status: OK\r\nbad line", ErrInvalidHeader, 0, nil},
		{"incomplete", "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n", ErrIncomplete, 0, nil},
		{"incomplete CR", "Auth-Status: OK\r\n\r", ErrIncomplete, 0, nil},
		{"incomplete HTTP prefix", "HTT", ErrIncomplete, 0, nil},
		{"empty input", "", ErrIncomplete, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, n, err := ParseResponse([]byte(tc.in))
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			want := tc.n
			if want < 0 {
				want += len(tc.in) + 1
			}
			if n != want {
				t.Errorf("consumed %d, want %d", n, want)
			}
			if tc.chk != nil {
				tc.chk(t, r)
			}
		})
	}
}

// TestParseResponseLimit checks the 1024-byte buffer: a block ending
// exactly at byte 1024 is accepted (as nginx 1.22.1 does), one byte more is
// not, and an error inside the first 1024 bytes still wins.
func TestParseResponseLimit(t *testing.T) {
	block := func(total int, end string) []byte {
		head := "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nX-Pad: "
		return []byte(head + strings.Repeat("x", total-len(head)-len(end)) + end)
	}
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"1024 CRLF", block(1024, "\r\n\r\n"), nil},
		{"1024 LF", block(1024, "\n\n"), nil},
		{"1024 then body", append(block(1024, "\r\n\r\n"), "more"...), nil},
		{"1025", block(1025, "\r\n\r\n"), ErrTooLarge},
		{"1023 incomplete", block(1023, "\r\n"), ErrIncomplete},
		{"1024 incomplete", block(1024, "\r\n"), ErrTooLarge},
		{"invalid at 1000", append(block(1000, "\r\n"), "_bad\r\n\r\n"...), ErrInvalidHeader},
		{"invalid after 1024", append(block(1030, "\r\n"), "_bad\r\n\r\n"...), ErrTooLarge},
	}
	for _, tc := range tests {
		_, _, err := ParseResponse(tc.in)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestDecide(t *testing.T) {
	up := "Auth-Server: 127.0.0.1\r\nAuth-Port: 19110\r\n"
	tests := []struct {
		name, proto, method, in string
		problem                 string
		want                    Result
	}{
		{"ok", "pop3", MethodPlain, "Auth-Status: OK\r\n" + up, "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:19110"), ServerText: "127.0.0.1:19110"}},
		{"missing status is success", "imap", MethodPlain, up, "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:19110"), ServerText: "127.0.0.1:19110"}},
		{"fail with wait", "imap", MethodPlain, "Auth-Status: Invalid login or password\r\nAuth-Wait: 2\r\nAuth-User: x\r\n", "",
			Result{Kind: Fail, Message: "Invalid login or password", HasWait: true, WaitSeconds: 2, User: []byte("x")}},
		{"fail beats wait", "pop3", MethodPlain, "Auth-Status: WAIT\r\nAuth-Status: no\r\n", "",
			Result{Kind: Fail, Message: "no"}},
		{"pop3 empty failure", "pop3", MethodPlain, "Auth-Status:\r\n" + up, "",
			Result{Kind: Fail, Message: ""}},
		{"smtp empty failure is no failure", "smtp", MethodPlain, "Auth-Status: bad\r\nAuth-Status:\r\n" + up, "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:19110"), ServerText: "127.0.0.1:19110"}},
		{"smtp error code", "smtp", MethodPlain, "Auth-Status: Temporary\r\nAuth-Error-Code: 451 4.3.0\r\n", "",
			Result{Kind: Fail, Message: "Temporary", ErrorCode: "451 4.3.0"}},
		{"wait", "imap", MethodPlain, "Auth-Status: WAIT\r\nAuth-Wait: 5\r\n", "",
			Result{Kind: Again, HasWait: true, WaitSeconds: 5}},
		{"wait at once", "imap", MethodPlain, "Auth-Status: WAIT\r\n", "", Result{Kind: Again}},
		{"upstream TLS (mailgate-only Auth-SSL), last one wins", "imap", MethodPlain, "Auth-SSL: off\r\nauth-ssl: starttls\r\n" + up, "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:19110"), ServerText: "127.0.0.1:19110", UpstreamSSL: "starttls"}},
		{"Auth-SSL is not kept on failure", "imap", MethodPlain, "Auth-Status: no\r\nAuth-SSL: on\r\n", "",
			Result{Kind: Fail, Message: "no"}},
		{"no port", "imap", MethodPlain, "Auth-Server: 127.0.0.1\r\n", "did not send server or port", Result{}},
		{"empty server", "imap", MethodPlain, "Auth-Server:\r\nAuth-Port: 1\r\n", "did not send server or port", Result{}},
		{"apop needs password", "pop3", MethodAPOP, up, "did not send password", Result{}},
		{"cram-md5 needs password", "imap", MethodCRAMMD5, up, "did not send password", Result{}},
		{"external needs password", "imap", MethodExternal, up, "did not send password", Result{}},
		{"smtp needs no password", "smtp", MethodCRAMMD5, up, "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:19110"), ServerText: "127.0.0.1:19110"}},
		{"empty password counts", "pop3", MethodAPOP, up + "Auth-Pass:\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:19110"), ServerText: "127.0.0.1:19110", Pass: []byte{}}},
		{"password check before address", "pop3", MethodAPOP, "Auth-Server: x\r\nAuth-Port: 1\r\n", "did not send password", Result{}},
		{"hostname", "imap", MethodPlain, "Auth-Server: localhost\r\nAuth-Port: 70000\r\n", `sent invalid server address:"localhost"`, Result{}},
		{"brackets", "imap", MethodPlain, "Auth-Server: [::1]\r\nAuth-Port: 1\r\n", `sent invalid server address:"[::1]"`, Result{}},
		{"zone", "imap", MethodPlain, "Auth-Server: fe80::1%lo\r\nAuth-Port: 1\r\n", `sent invalid server address:"fe80::1%lo"`, Result{}},
		{"broadcast", "imap", MethodPlain, "Auth-Server: 255.255.255.255\r\nAuth-Port: 1\r\n", `sent invalid server address:"255.255.255.255"`, Result{}},
		{"five parts", "imap", MethodPlain, "Auth-Server: 1.2.3.4.5\r\nAuth-Port: 1\r\n", `sent invalid server address:"1.2.3.4.5"`, Result{}},
		{"octet 256", "imap", MethodPlain, "Auth-Server: 1.2.3.256\r\nAuth-Port: 1\r\n", `sent invalid server address:"1.2.3.256"`, Result{}},
		{"lenient ipv4", "imap", MethodPlain, "Auth-Server: 127..0.01\r\nAuth-Port: 022\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:22"), ServerText: "127..0.01:022"}},
		{"ipv6", "imap", MethodPlain, "Auth-Server: ::1\r\nAuth-Port: 143\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("[::1]:143"), ServerText: "::1:143"}},
		{"ipv6 leading colon", "imap", MethodPlain, "Auth-Server: :1:2:3:4:5:6:7:8\r\nAuth-Port: 1\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("[1:2:3:4:5:6:7:8]:1"), ServerText: ":1:2:3:4:5:6:7:8:1"}},
		{"ipv6 trailing colon", "imap", MethodPlain, "Auth-Server: 1::2:\r\nAuth-Port: 1\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("[1::2:0]:1"), ServerText: "1::2::1"}},
		{"ipv6 v4 tail", "imap", MethodPlain, "Auth-Server: ::1:2:3:4:5:1.2.3.4\r\nAuth-Port: 1\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("[0:1:2:3:4:5:102:304]:1"), ServerText: "::1:2:3:4:5:1.2.3.4:1"}},
		{"ipv6 mapped lenient v4", "imap", MethodPlain, "Auth-Server: ::FFFF:127.000.0.01\r\nAuth-Port: 1\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), ServerText: "::FFFF:127.000.0.01:1"}},
		{"ipv6 all zero", "imap", MethodPlain, "Auth-Server: ::\r\nAuth-Port: 1\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("[::]:1"), ServerText: ":::1"}},
		{"ipv6 triple colon", "imap", MethodPlain, "Auth-Server: :::\r\nAuth-Port: 1\r\n", `sent invalid server address:":::"`, Result{}},
		{"ipv6 v4 tail too late", "imap", MethodPlain, "Auth-Server: 1:2:3:4:5:6:7:1.2.3.4\r\nAuth-Port: 1\r\n", `sent invalid server address:"1:2:3:4:5:6:7:1.2.3.4"`, Result{}},
		{"ipv6 nine groups", "imap", MethodPlain, "Auth-Server: 1:2:3:4:5:6:7:8:9\r\nAuth-Port: 1\r\n", `sent invalid server address:"1:2:3:4:5:6:7:8:9"`, Result{}},
		{"ipv6 seven groups", "imap", MethodPlain, "Auth-Server: 1:2:3:4:5:6:7\r\nAuth-Port: 1\r\n", `sent invalid server address:"1:2:3:4:5:6:7"`, Result{}},
		{"ipv6 seven groups then ::", "imap", MethodPlain, "Auth-Server: 1:2:3:4:5:6:7::\r\nAuth-Port: 1\r\n", `sent invalid server address:"1:2:3:4:5:6:7::"`, Result{}},
		{"ipv6 five nibbles", "imap", MethodPlain, "Auth-Server: 00001::1\r\nAuth-Port: 1\r\n", `sent invalid server address:"00001::1"`, Result{}},
		{"ipv6 hex in v4 tail", "imap", MethodPlain, "Auth-Server: ::1a7.0.0.1\r\nAuth-Port: 1\r\n", `sent invalid server address:"::1a7.0.0.1"`, Result{}},
		{"port plus", "imap", MethodPlain, "Auth-Server: ::1\r\nAuth-Port: +143\r\n", `sent invalid server port:"+143"`, Result{}},
		{"port zero", "imap", MethodPlain, "Auth-Server: ::1\r\nAuth-Port: 0\r\n", `sent invalid server port:"0"`, Result{}},
		{"port 65536", "imap", MethodPlain, "Auth-Server: ::1\r\nAuth-Port: 65536\r\n", `sent invalid server port:"65536"`, Result{}},
		{"overrides", "imap", MethodPlain, up + "Auth-User: other\r\nAuth-Pass: p w\r\n", "",
			Result{Kind: OK, Server: netip.MustParseAddrPort("127.0.0.1:19110"), ServerText: "127.0.0.1:19110", User: []byte("other"), Pass: []byte("p w")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := ParseResponse([]byte(tc.in + "\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			got, problem := Decide(r, &Request{Protocol: tc.proto, Method: tc.method})
			if problem != tc.problem {
				t.Fatalf("problem %q, want %q", problem, tc.problem)
			}
			if problem != "" {
				if got != nil {
					t.Errorf("result %+v with a problem", got)
				}
				return
			}
			if got.Kind != tc.want.Kind || got.Message != tc.want.Message || got.ErrorCode != tc.want.ErrorCode ||
				got.HasWait != tc.want.HasWait || got.WaitSeconds != tc.want.WaitSeconds ||
				got.Server != tc.want.Server || got.ServerText != tc.want.ServerText ||
				!bytes.Equal(got.User, tc.want.User) || (got.User == nil) != (tc.want.User == nil) ||
				!bytes.Equal(got.Pass, tc.want.Pass) || (got.Pass == nil) != (tc.want.Pass == nil) {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// FuzzParseResponse: no panic, consumed bytes within the limit and ending
// at a line end, parsing a prefix never contradicts parsing the whole.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n",
		"Auth-Status: Invalid login or password\nAuth-Wait: 3\n\n",
		"HTTP/1.0 200 OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 993\r\nAuth-SSL: starttls\r\n\r\n",
		"HTTP/1.0 200\rX", "Auth-Status\r\n\r\n", "garbage line\r\n\r\n", "\r\n", "HTT",
		"Auth-Status:\tOK  \r\nAuth-Server: ::1\r\nAuth-Port: +1\r\nAuth-Pass:\r\n\r\n",
		strings.Repeat("X-A: b\r\n", 200) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, n, err := ParseResponse(data)
		if err != nil {
			if r != nil || n != 0 {
				t.Fatalf("result with error %v", err)
			}
			if errors.Is(err, ErrTooLarge) && len(data) < MaxResponse {
				t.Fatalf("ErrTooLarge with %d bytes", len(data))
			}
			if errors.Is(err, ErrIncomplete) && len(data) >= MaxResponse {
				t.Fatalf("ErrIncomplete with %d bytes", len(data))
			}
			return
		}
		if n <= 0 || n > MaxResponse || n > len(data) || data[n-1] != '\n' {
			t.Fatalf("consumed %d of %d", n, len(data))
		}
		// The same block alone parses the same; any shorter prefix is
		// incomplete.
		r2, n2, err2 := ParseResponse(data[:n])
		if err2 != nil || n2 != n || r2.Failed != r.Failed || !bytes.Equal(r2.Message, r.Message) {
			t.Fatalf("re-parse differs: %v", err2)
		}
		if _, _, err3 := ParseResponse(data[:n-1]); !errors.Is(err3, ErrIncomplete) {
			t.Fatalf("prefix gave %v", err3)
		}
		for _, proto := range []string{"pop3", "smtp"} {
			res, problem := Decide(r, &Request{Protocol: proto, Method: MethodAPOP})
			if (res == nil) == (problem == "") {
				t.Fatalf("Decide: result %v problem %q", res, problem)
			}
		}
	})
}

// FuzzParseAddr: nginx's parser accepts every address Go's strict parser
// accepts and reads it the same way, except 255.255.255.255, zones, and
// seven groups followed by "::" (nginx counts a zero group after a final
// "::", verified with 1:2:3:4:5:6:7::).
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8", "::", "1::", "fe80::1%lo", "127..0.1", ":1:2:3:4:5:6:7:8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseAddr([]byte(s))
		want, err := netip.ParseAddr(s)
		if err != nil || want.Zone() != "" || s == "255.255.255.255" {
			return
		}
		if !ok && !(strings.HasSuffix(s, "::") && strings.Count(s, ":") == 8) {
			t.Fatalf("parseAddr(%q) refused a valid address", s)
		}
		if !ok {
			return
		}
		if want.Is4() {
			if got != want {
				t.Fatalf("parseAddr(%q) = %v, want %v", s, got, want)
			}
			return
		}
		if got != netip.AddrFrom16(want.As16()) {
			t.Fatalf("parseAddr(%q) = %v, want %v", s, got, want)
		}
	})
}
