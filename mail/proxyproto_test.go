package mail

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"mailgate/auth"
	"mailgate/confparse"
)

func v2Header(cmd, fam byte, body []byte) []byte {
	b := append([]byte{}, proxyV2Sig...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func TestParseProxyHeader(t *testing.T) {
	tcp4 := v2Header(1, 0x11, []byte{192, 0, 2, 1, 127, 0, 0, 1, 0x04, 0xd2, 0x00, 0x6e})
	tcp6body := make([]byte, 36)
	copy(tcp6body, netip.MustParseAddr("2001:db8::1").AsSlice())
	copy(tcp6body[16:], netip.IPv6Loopback().AsSlice())
	binary.BigEndian.PutUint16(tcp6body[32:], 1000)
	binary.BigEndian.PutUint16(tcp6body[34:], 110)
	tests := []struct {
		in       string
		ok       bool
		size     int
		src      string
		srcPort  string
		dst      string
		hasAddrs bool
	}{
		{in: "PROXY TCP4 192.0.2.7 127.0.0.9 4567 110\r\nUSER a\r\n", ok: true, size: 41, src: "192.0.2.7", srcPort: "4567", dst: "127.0.0.9", hasAddrs: true},
		{in: "PROXY TCP6 2001:db8::1 ::1 1 2\r\n", ok: true, size: 32, src: "2001:db8::1", srcPort: "1", dst: "::1", hasAddrs: true},
		{in: "PROXY TCP4 a.b.c.d abc 1 2\r\n", ok: true, size: 28, src: "a.b.c.d", srcPort: "1", dst: "abc", hasAddrs: true},
		{in: "PROXY UNKNOWN\r\n", ok: true, size: 15},
		{in: "PROXY UNKNOWN 1.2.3.4 garbage\r\nX", ok: true, size: 31},
		{in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"},
		{in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"},
		{in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"},
		{in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"},
		{in: "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"},
		{in: "PROXY TCP4 1.2.3.z 5.6.7.8 1 2\r\n"},
		{in: "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"},
		{in: "GET / HTTP/1.0\r\n"},
		{in: ""},
		{in: string(tcp4) + "rest", ok: true, size: 28, src: "192.0.2.1", srcPort: "1234", dst: "127.0.0.1", hasAddrs: true},
		{in: string(v2Header(1, 0x21, tcp6body)), ok: true, size: 52, src: "2001:db8::1", srcPort: "1000", dst: "::1", hasAddrs: true},
		{in: string(v2Header(0, 0x11, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})), ok: true, size: 28},
		{in: string(v2Header(1, 0x12, make([]byte, 12))), ok: true, size: 28},
		{in: string(tcp4[:20])},
		{in: string(append(append([]byte{}, proxyV2Sig...), 0x11, 0x11, 0, 0))},
	}
	for _, tt := range tests {
		h, ok := parseProxyHeader([]byte(tt.in))
		if ok != tt.ok {
			t.Errorf("%q: ok = %v", tt.in, ok)
			continue
		}
		if !ok {
			continue
		}
		if h.size != tt.size || h.src != tt.src || h.srcPort != tt.srcPort || h.dst != tt.dst || h.hasAddrs != tt.hasAddrs {
			t.Errorf("%q: got %+v", tt.in, h)
		}
	}
}

// FuzzProxyHeader: the PROXY header parser never panics and never claims
// more bytes than it was given.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 127.0.0.9 4567 110\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\r\n"))
	f.Add(v2Header(1, 0x11, make([]byte, 12)))
	f.Add(v2Header(1, 0x21, make([]byte, 36)))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, ok := parseProxyHeader(in)
		if ok && (h.size <= 0 || h.size > len(in)) {
			t.Fatalf("size %d of %d", h.size, len(in))
		}
		if ok && h.hasAddrs && (h.src == "" || h.dst == "") {
			t.Fatalf("addresses missing: %+v", h)
		}
	})
}

func TestProxyProtocolListener(t *testing.T) {
	var env *testEnv
	env = startEnvConf(t, 64, 5*time.Second, okAuth(&env), func(sc *confparse.Server) {
		for _, l := range sc.Listens {
			l.ProxyProtocol = true
		}
		sc.RealIP.From = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	tests := []struct {
		in, want string
		auth     *auth.ProxyInfo
		clientIP string
		log      string
	}{
		{in: "PROXY TCP4 192.0.2.7 127.0.0.9 4567 110\r\nLOGIN u bad\r\n", want: "+OK ready\r\n-ERR Invalid login or password\r\n",
			auth:     &auth.ProxyInfo{Addr: "192.0.2.7", Port: "4567", ServerAddr: "127.0.0.9", ServerPort: "110"},
			clientIP: "192.0.2.7", log: `client login failed: "Invalid login or password" while in http auth state, client: 192.0.2.7,`},
		{in: "PROXY TCP4 a.b.c.d 127.0.0.9 4567 110\r\nLOGIN u bad\r\n", want: "+OK ready\r\n-ERR Invalid login or password\r\n",
			auth:     &auth.ProxyInfo{Addr: "a.b.c.d", Port: "4567", ServerAddr: "127.0.0.9", ServerPort: "110"},
			clientIP: "127.0.0.1"},
		{in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", want: "",
			log: `broken header: "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999` + "\r\n" + `" while reading PROXY protocol, client: 127.0.0.1, server: 127.0.0.1:0`},
	}
	for _, tt := range tests {
		got := env.exchange(tt.in)
		if got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
		if tt.auth != nil {
			r := <-env.reqs
			if r.ProxyProtocol == nil || *r.ProxyProtocol != *tt.auth || r.ClientIP != tt.clientIP {
				t.Errorf("%q: auth request proxy %+v client %q", tt.in, r.ProxyProtocol, r.ClientIP)
			}
		}
		if tt.log != "" {
			waitLogs(t, env.log, []string{tt.log})
		}
	}
}

func TestProxyProtocolTimeout(t *testing.T) {
	var env *testEnv
	env = startEnvConf(t, 64, 300*time.Millisecond, okAuth(&env), func(sc *confparse.Server) {
		for _, l := range sc.Listens {
			l.ProxyProtocol = true
		}
	})
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	out, _ := io.ReadAll(bufio.NewReader(c))
	if len(out) != 0 {
		t.Errorf("got %q before the PROXY header", out)
	}
	waitLogs(t, env.log, []string{"client timed out (110: Connection timed out) while reading PROXY protocol"})
}
