package mail

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

func tcpListen(sc *confparse.Server, addr string, bind bool) *confparse.Listen {
	ap := netip.MustParseAddrPort(addr)
	text := ap.String()
	return &confparse.Listen{Server: sc, Network: "tcp", Addr: ap, Text: text, Bind: bind, Backlog: 511, IPv6Only: true}
}

func TestGroupSockets(t *testing.T) {
	a, b := &confparse.Server{}, &confparse.Server{}
	w4 := tcpListen(a, "0.0.0.0:110", false)
	s4 := tcpListen(b, "127.0.0.1:110", false)
	s4b := tcpListen(b, "127.0.0.2:110", true)
	w6 := tcpListen(a, "[::]:110", false)
	s6 := tcpListen(b, "[::1]:110", false)
	o1 := tcpListen(a, "127.0.0.1:143", false)
	o2 := tcpListen(b, "127.0.0.2:143", false)
	u := &confparse.Listen{Server: a, Network: "unix", Path: "/tmp/x.sock", Text: "unix:/tmp/x.sock"}
	specs := groupSockets([]*confparse.Listen{u, s4, w4, s4b, w6, s6, o1, o2})
	var keys []string
	for _, sp := range specs {
		keys = append(keys, sp.Key)
	}
	want := "127.0.0.2:110 0.0.0.0:110 [::]:110 127.0.0.1:143 127.0.0.2:143 unix:/tmp/x.sock"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("sockets %q, want %q", got, want)
	}
	wild := specs[1]
	if wild.pick(netip.MustParseAddr("127.0.0.1")) != s4 || wild.pick(netip.MustParseAddr("10.0.0.1")) != w4 {
		t.Error("the wildcard socket must pick the exact address, else itself")
	}
	if specs[2].pick(netip.MustParseAddr("::1")) != s6 || specs[2].pick(netip.MustParseAddr("::2")) != w6 {
		t.Error("IPv6 wildcard socket picks wrong")
	}
	if specs[3].pick(netip.MustParseAddr("127.0.0.1")) != o1 || len(specs[3].Exact) != 0 {
		t.Error("a specific address without a wildcard has its own socket")
	}
}

// freePort finds a loopback port that is free now.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// listenProto greets with the listen entry the connection was given.
type listenProto struct{ fakeProto }

func (listenProto) NewHandler(s *Session) Handler { return &listenHandler{fakeHandler{s: s}} }

type listenHandler struct{ fakeHandler }

func (h *listenHandler) Greet() error {
	h.s.WriteString("+OK " + h.s.Listen.Text + " " + h.s.ClientIP + "\r\n")
	return nil
}

func serve(t *testing.T, cfg *confparse.Config) (*Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	lg := logrus.New()
	lg.SetOutput(lb)
	lg.SetLevel(logrus.DebugLevel)
	lg.SetFormatter(&errlog.Formatter{Min: errlog.Info})
	srv, err := NewServer(cfg, Options{Protocols: map[string]Protocol{"pop3": listenProto{fakeProto{buf: 64}}}, Log: lg})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve() //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return srv, lb
}

func greeting(t *testing.T, network, addr string) string {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	l, _ := bufio.NewReader(c).ReadString('\n')
	return l
}

func twoServers(addrs ...*confparse.Listen) *confparse.Config {
	var servers []*confparse.Server
	seen := map[*confparse.Server]bool{}
	for _, l := range addrs {
		if !seen[l.Server] {
			seen[l.Server] = true
			servers = append(servers, l.Server)
		}
		l.Server.Listens = append(l.Server.Listens, l)
	}
	return &confparse.Config{Mail: &confparse.Mail{Servers: servers, Listens: addrs}}
}

func TestWildcardAndExactShareASocket(t *testing.T) {
	port := freePort(t)
	_, a := newTestConf(time.Minute)
	a.Listens = nil
	_, b := newTestConf(time.Minute)
	b.Listens = nil
	p := netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)).String()
	w := tcpListen(a, p, false)
	e := tcpListen(b, "127.0.0.1:"+strings.Split(p, ":")[1], false)
	srv, _ := serve(t, twoServers(w, e))
	if n := len(srv.Addrs()); n != 1 {
		t.Fatalf("%d sockets, want 1 shared wildcard socket", n)
	}
	pt := strings.Split(p, ":")[1]
	if g := greeting(t, "tcp", "127.0.0.1:"+pt); g != "+OK 127.0.0.1:"+pt+" 127.0.0.1\r\n" {
		t.Errorf("via 127.0.0.1: %q", g)
	}
	if g := greeting(t, "tcp", "127.0.0.2:"+pt); g != "+OK 0.0.0.0:"+pt+" 127.0.0.1\r\n" {
		t.Errorf("via 127.0.0.2: %q", g)
	}
}

func TestBindRetries(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, sc := newTestConf(time.Minute)
	sc.Listens = nil
	l := tcpListen(sc, busy.Addr().String(), false)
	var mu sync.Mutex
	var msgs []string
	srv, err := NewServer(twoServers(l), Options{
		Protocols: map[string]Protocol{"pop3": fakeProto{buf: 64}},
		BindLog: func(lv errlog.Level, m string) {
			mu.Lock()
			msgs = append(msgs, lv.String()+" "+m)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err = srv.Listen()
	if err == nil || err.Error() != "still could not bind()" {
		t.Fatalf("Listen = %v", err)
	}
	if d := time.Since(begin); d < 1900*time.Millisecond || d > 4*time.Second {
		t.Errorf("retries took %v, want about 2s", d)
	}
	bindMsg := "emerg bind() to " + busy.Addr().String() + " failed (98: Address already in use)"
	want := []string{bindMsg, "notice try again to bind() after 500ms", bindMsg, "notice try again to bind() after 500ms",
		bindMsg, "notice try again to bind() after 500ms", bindMsg, "notice try again to bind() after 500ms", bindMsg}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

func TestBindOtherErrorAtOnce(t *testing.T) {
	_, sc := newTestConf(time.Minute)
	sc.Listens = nil
	l := tcpListen(sc, "192.0.2.1:25", false)
	srv, err := NewServer(twoServers(l), Options{Protocols: map[string]Protocol{"pop3": fakeProto{buf: 64}}})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Listen()
	if err == nil || err.Error() != "bind() to 192.0.2.1:25 failed (99: Cannot assign requested address)" {
		t.Fatalf("Listen = %v", err)
	}
}

func TestSocketOptions(t *testing.T) {
	_, sc := newTestConf(time.Minute)
	l := tcpListen(sc, "127.0.0.1:0", true)
	l.RcvBuf, l.SndBuf, l.Backlog = 65536, 32768, 7
	ln, kd, err := openSocket(l)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, _ := ln.(syscall.Conn).SyscallConn()
	var rcv, snd int
	rc.Control(func(fd uintptr) { //nolint:errcheck
		rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	// Linux doubles the value it was given.
	if rcv != 2*65536 || snd != 2*32768 {
		t.Errorf("rcvbuf %d sndbuf %d", rcv, snd)
	}
	// Go's Accept turns keepalive on; the engine turns it back off when
	// the listen directive did not ask for it.
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			time.Sleep(200 * time.Millisecond)
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fixKeepalive(c, l, kd)
	crc, _ := c.(*net.TCPConn).SyscallConn()
	var ka int
	crc.Control(func(fd uintptr) { //nolint:errcheck
		ka, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	})
	if ka != 0 {
		t.Errorf("SO_KEEPALIVE = %d on an accepted connection, want 0", ka)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pop3.sock")
	_, sc := newTestConf(time.Minute)
	sc.Listens = nil
	l := &confparse.Listen{Server: sc, Network: "unix", Path: path, Text: "unix:" + path, Backlog: 511}
	srv, lb := serve(t, twoServers(l))
	if g := greeting(t, "unix", path); g != "+OK unix:"+path+" unix:\r\n" {
		t.Errorf("greeting %q", g)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket file %v %v", fi, err)
	}
	waitLogs(t, lb, []string{"client unix: connected to unix:" + path + "\n"})
	srv.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestIPv6Listen(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("IPv6 loopback unavailable: %v", err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	_, sc := newTestConf(time.Minute)
	sc.Listens = nil
	l := tcpListen(sc, netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)).String(), false)
	_, lb := serve(t, twoServers(l))
	addr := l.Text
	if g := greeting(t, "tcp", addr); g != "+OK "+addr+" ::1\r\n" {
		t.Errorf("greeting %q", g)
	}
	waitLogs(t, lb, []string{"client [::1]:"})
}

func TestHandOff(t *testing.T) {
	_, sc := newTestConf(time.Minute)
	sc.Listens = nil
	l := tcpListen(sc, "127.0.0.1:0", false)
	old, _ := serve(t, twoServers(l))
	var addr string
	for _, a := range old.Addrs() {
		addr = a.String()
	}
	socks := old.HandOff()
	if len(socks) != 1 {
		t.Fatalf("handed off %d sockets", len(socks))
	}
	_, sc2 := newTestConf(time.Minute)
	sc2.Listens = nil
	l2 := tcpListen(sc2, "127.0.0.1:0", false)
	srv, err := NewServer(twoServers(l2), Options{Protocols: map[string]Protocol{"pop3": listenProto{fakeProto{buf: 64}}}, Inherit: socks})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve() //nolint:errcheck
	defer srv.Close()
	old.Shutdown(t.Context()) //nolint:errcheck
	if g := greeting(t, "tcp", addr); !strings.HasPrefix(g, "+OK 127.0.0.1:0 ") {
		t.Errorf("new generation greeting %q", g)
	}
}

func TestClientText(t *testing.T) {
	tests := []struct{ in, ip, ipPort string }{
		{"127.0.0.1:5", "127.0.0.1", "127.0.0.1:5"},
		{"[::1]:54262", "::1", "[::1]:54262"},
		{"[::ffff:192.0.2.1]:7", "::ffff:192.0.2.1", "[::ffff:192.0.2.1]:7"},
		// IPv4-compatible: nginx prints a dotted tail, Go's netip does not.
		{"[::1.2.3.4]:7", "::1.2.3.4", "[::1.2.3.4]:7"},
		{"[2001:db8::1]:25", "2001:db8::1", "[2001:db8::1]:25"},
	}
	for _, tt := range tests {
		ap := netip.MustParseAddrPort(tt.in)
		if got := clientText(ap); got != tt.ip {
			t.Errorf("clientText(%s) = %q, want %q", tt.in, got, tt.ip)
		}
		if got := clientTextPort(ap); got != tt.ipPort {
			t.Errorf("clientTextPort(%s) = %q, want %q", tt.in, got, tt.ipPort)
		}
	}
	if clientText(netip.AddrPort{}) != "unix:" || clientTextPort(netip.AddrPort{}) != "unix:" {
		t.Error("a unix-socket client is \"unix:\"")
	}
}

// TestTestBind: -t binds every socket and closes it; "in use" passes, an
// address of no interface fails with nginx's text, a unix socket's file
// does not stay behind.
func TestTestBind(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sc := &confparse.Server{}
	foreign := unassignedIPv4(t)
	sock := filepath.Join(t.TempDir(), "t.sock")
	unix := &confparse.Listen{Server: sc, Network: "unix", Path: sock, Text: "unix:" + sock, Backlog: 511}
	tests := []struct {
		name    string
		listens []*confparse.Listen
		want    string
	}{
		{"free", []*confparse.Listen{tcpListen(sc, "127.0.0.1:"+strconv.Itoa(freePort(t)), false)}, ""},
		{"in use", []*confparse.Listen{tcpListen(sc, busy.Addr().String(), false)}, ""},
		{"unix", []*confparse.Listen{unix}, ""},
		{"no such address", []*confparse.Listen{tcpListen(sc, "127.0.0.1:"+strconv.Itoa(freePort(t)), false), tcpListen(sc, foreign+":25", false)},
			"bind() to " + foreign + ":25 failed (99: Cannot assign requested address)"},
	}
	for _, tt := range tests {
		cfg := &confparse.Config{Mail: &confparse.Mail{Listens: tt.listens}}
		got := ""
		if err := TestBind(cfg); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: TestBind = %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("unix socket file left behind: %v", err)
	}
	if c, err := net.Dial("tcp4", busy.Addr().String()); err != nil {
		t.Errorf("the busy socket stopped listening: %v", err)
	} else {
		c.Close()
	}
}

// unassignedIPv4 returns a documentation address (RFC 5737) that no
// interface of this machine has.
func unassignedIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			have[ipn.IP.String()] = true
		}
	}
	for _, prefix := range []string{"203.0.113.", "198.51.100.", "192.0.2."} {
		for i := 250; i > 1; i-- {
			if ip := prefix + strconv.Itoa(i); !have[ip] {
				return ip
			}
		}
	}
	t.Fatal("every documentation address is assigned here")
	return ""
}

func TestProbeBindReportsEvery(t *testing.T) {
	sc := &confparse.Server{}
	foreign := unassignedIPv4(t)
	cfg := &confparse.Config{Mail: &confparse.Mail{Listens: []*confparse.Listen{
		tcpListen(sc, foreign+":25", false), tcpListen(sc, foreign+":26", false),
	}}}
	errs := ProbeBind(cfg)
	if len(errs) != 2 {
		t.Fatalf("ProbeBind: %v, want two failures", errs)
	}
	if err := TestBind(cfg); err == nil || err.Error() != errs[0].Error() {
		t.Errorf("TestBind: %v, want the first failure %v", err, errs[0])
	}
}
