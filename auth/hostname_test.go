package auth

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestIsHostName(t *testing.T) {
	for in, want := range map[string]bool{
		"up.example.test": true, "UP.Example.Test.": true, "imap": true, "a-b.c1": true, "1a.example": true,
		"x.123abc": true, strings.Repeat("a", 63) + ".test": true,
		"": false, ".": false, "1.2.3.256": false, "1.2.3.4.5": false, "127.0.0.1": false, "a..b": false,
		"-a.test": false, "a-.test": false, "a_b.test": false, "[::1]": false, "::1": false, "a.test:143": false,
		"a b": false, strings.Repeat("a", 64) + ".test": false, strings.Repeat("a.", 127) + "test": false,
		"fe80::1%lo": false, "a.test..": false,
	} {
		if got := IsHostName([]byte(in)); got != want {
			t.Errorf("IsHostName(%q) = %v, want %v", in, got, want)
		}
	}
}

// Decide takes a host name only with Request.AllowHostName; an IP address
// is nginx's either way.
func TestDecideHostName(t *testing.T) {
	for _, c := range []struct {
		server, port string
		allow        bool
		name, err    string
		addr         netip.AddrPort
	}{
		{server: "up.example.test", port: "143", err: `sent invalid server address:"up.example.test"`},
		{server: "up.example.test", port: "143", allow: true, name: "up.example.test", addr: netip.AddrPortFrom(netip.Addr{}, 143)},
		{server: "up.example.test", port: "0", allow: true, err: `sent invalid server port:"0"`},
		{server: "1.2.3.256", port: "143", allow: true, err: `sent invalid server address:"1.2.3.256"`},
		{server: "[::1]", port: "143", allow: true, err: `sent invalid server address:"[::1]"`},
		{server: "127.0.0.1", port: "143", allow: true, addr: netip.MustParseAddrPort("127.0.0.1:143")},
	} {
		r := &Response{Server: []byte(c.server), Port: []byte(c.port)}
		res, e := Decide(r, &Request{Protocol: "imap", Method: MethodPlain, AllowHostName: c.allow})
		if e != c.err {
			t.Errorf("%s allow=%v: error %q, want %q", c.server, c.allow, e, c.err)
			continue
		}
		if e != "" {
			continue
		}
		if res.ServerName != c.name || res.Server != c.addr || res.ServerText != c.server+":"+c.port {
			t.Errorf("%s allow=%v: %q %v %q", c.server, c.allow, res.ServerName, res.Server, res.ServerText)
		}
	}
}

// FuzzIsHostName: what IsHostName accepts is never an address nginx would
// take, and holds only letters, digits, '-' and '.'.
func FuzzIsHostName(f *testing.F) {
	for _, s := range []string{"up.example.test", "1.2.3.4", "a..b", "x.1", "-", "a.b.", "::1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !IsHostName(in) {
			return
		}
		if _, ok := parseAddr(in); ok {
			t.Fatalf("%q is both an address and a host name", in)
		}
		if len(in) > 254 {
			t.Fatalf("%d bytes", len(in))
		}
		for _, c := range in {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("%q holds %q", in, c)
			}
		}
	})
}

// The login cache keeps an Auth-Server host name, and gives it only to
// requests that allow one (auth_http_resolve on).
func TestLoginCacheHostName(t *testing.T) {
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuth-Status: OK\r\nAuth-Server: imap1.example.test\r\nAuth-Port: 1143\r\n\r\n"
	srv := startHTTPAuth(t, nil, func(string) (string, bool) { return answer, false })
	c := NewClient(ptr(cacheConf(srv.addr(), "memory")))
	c.cache.st = newMemStore(1 << 20)
	for i, st := range []struct {
		allow    bool
		wantReqs int64
		wantErr  bool
	}{
		{allow: true, wantReqs: 1},
		{allow: true, wantReqs: 1}, // a hit
		{allow: false, wantReqs: 2, wantErr: true},
		{allow: true, wantReqs: 2},
	} {
		req := loginReq("alice", "secret")
		req.AllowHostName = st.allow
		res, err := c.Do(context.Background(), req)
		if (err != nil) != st.wantErr || srv.reqs.Load() != st.wantReqs {
			t.Fatalf("step %d: %v, %d requests; want error %v, %d", i, err, srv.reqs.Load(), st.wantErr, st.wantReqs)
		}
		if err == nil && (res.ServerName != "imap1.example.test" || res.Server.Port() != 1143 || res.ServerText != "imap1.example.test:1143") {
			t.Fatalf("step %d: %+v", i, res)
		}
	}
}
