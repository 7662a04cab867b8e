package smtp

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
	"mailgate/mail/resolve"
	"mailgate/mail/smtp/dnstest"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestGreetingDelay(t *testing.T) {
	tests := []struct {
		name    string
		send    string // sent by the client right after connecting ("" = silent)
		wantErr bool
		want    string
		log     string
	}{
		{name: "silent client is greeted", want: greeting},
		{
			name: "early bytes are rejected", send: "EHLO x\r\nMAIL", wantErr: true,
			want: "503 5.5.0 Improper use of SMTP command pipelining\r\n",
			log:  `info: *7 client was rejected before greeting: "EHLO x__MAIL" while in delay pipelining state, client: 127.0.0.1, server: 127.0.0.1:25`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConf()
			c.SMTP.GreetingDelay = 300 * time.Millisecond
			f := newFixture(c)
			srv, cl := tcpPair(t)
			f.s.Conn = srv
			if tc.send != "" {
				if _, err := cl.Write([]byte(tc.send)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			start := time.Now()
			err := f.h.Greet()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Greet error %v, want error %v", err, tc.wantErr)
			}
			if got := f.out.String(); got != tc.want {
				t.Fatalf("reply %q, want %q", got, tc.want)
			}
			if !tc.wantErr {
				if d := time.Since(start); d < 250*time.Millisecond {
					t.Errorf("greeted after %v, before the delay", d)
				}
				return
			}
			if f.out.flushes == 0 {
				t.Error("503 not flushed before close")
			}
			if !errors.Is(err, errRejectedBeforeGreeting) {
				t.Errorf("error %v", err)
			}
			logs := f.logs.all()
			if len(logs) != 1 || logs[0] != tc.log {
				t.Errorf("logs %q", logs)
			}
		})
	}
}

func TestGreetingDelayClientGone(t *testing.T) {
	c := testConf()
	c.SMTP.GreetingDelay = 2 * time.Second
	f := newFixture(c)
	srv, cl := tcpPair(t)
	f.s.Conn = srv
	cl.Close()
	if err := f.h.Greet(); err == nil {
		t.Fatal("Greet succeeded for a closed client")
	}
	if f.out.Len() != 0 || len(f.logs.all()) != 0 {
		t.Errorf("wrote %q, logged %q", f.out.String(), f.logs.all())
	}
}

func TestResolver(t *testing.T) {
	d, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dnsAddr := netip.MustParseAddrPort(d.Addr)

	const ptr = "1.0.0.127.in-addr.arpa. 60 IN PTR "
	tests := []struct {
		name   string
		client string
		setup  func()
		want   string
		logs   []string
	}{
		{
			name: "confirmed name",
			setup: func() {
				d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr + "a.example.net."}})
				d.Set("a.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"a.example.net. 60 IN A 127.0.0.1"}})
			},
			want: "a.example.net",
		},
		{
			name: "confirmed by AAAA",
			setup: func() {
				d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr + "a.example.net."}})
				d.Set("a.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"a.example.net. 60 IN A 127.0.0.9"}})
				d.Set("a.example.net", dns.TypeAAAA, dnstest.Answer{RRs: []string{"a.example.net. 60 IN AAAA ::ffff:127.0.0.1"}})
			},
			want: "a.example.net",
		},
		{
			name: "forward mismatch",
			setup: func() {
				d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr + "a.example.net."}})
				d.Set("a.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"a.example.net. 60 IN A 127.0.0.2"}})
			},
			want: HostUnavailable,
		},
		{
			name: "PTR NXDOMAIN",
			want: HostUnavailable,
			logs: []string{"error: *7 127.0.0.1 could not be resolved (3: Host not found) while in resolving client address"},
		},
		{
			name:  "PTR empty answer",
			setup: func() { d.SetPTR("127.0.0.1", dnstest.Answer{}) },
			want:  HostUnavailable,
			logs:  []string{"error: *7 127.0.0.1 could not be resolved (3: Host not found) while in resolving client address"},
		},
		{
			name:  "PTR SERVFAIL",
			setup: func() { d.SetPTR("127.0.0.1", dnstest.Answer{Rcode: dns.RcodeServerFailure}) },
			want:  HostTempUnavail,
			logs:  []string{"error: *7 127.0.0.1 could not be resolved (2: Server failure) while in resolving client address"},
		},
		{
			name:  "PTR REFUSED",
			setup: func() { d.SetPTR("127.0.0.1", dnstest.Answer{Rcode: dns.RcodeRefused}) },
			want:  HostTempUnavail,
			logs:  []string{"error: *7 127.0.0.1 could not be resolved (5: Operation refused) while in resolving client address"},
		},
		{
			name:  "PTR timeout",
			setup: func() { d.SetPTR("127.0.0.1", dnstest.Answer{Drop: true}) },
			want:  HostTempUnavail,
			logs:  []string{"error: *7 127.0.0.1 could not be resolved (110: Operation timed out) while in resolving client address"},
		},
		{
			name: "PTR answer without PTR record",
			setup: func() {
				d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{"1.0.0.127.in-addr.arpa. 60 IN CNAME x.example.net."}})
			},
			want: HostTempUnavail,
			logs: []string{
				"error: no PTR type in DNS response",
				"error: *7 127.0.0.1 could not be resolved (110: Operation timed out) while in resolving client address",
			},
		},
		{
			name: "injection in PTR name",
			setup: func() {
				d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr + `a\032b\013\010XCLIENT.example.net.`}})
			},
			want: HostTempUnavail,
			logs: []string{"error: *7 127.0.0.1 resolved to invalid host name \"a b\r\nxclient.example.net\" while in resolving client address"}, // ngx_resolver_copy lowercases
		},
		{
			name:  "underscore in PTR name",
			setup: func() { d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr + "a_b.example.net."}}) },
			want:  HostTempUnavail,
			logs:  []string{"error: *7 127.0.0.1 resolved to invalid host name \"a_b.example.net\" while in resolving client address"},
		},
		{
			name:  "forward NXDOMAIN",
			setup: func() { d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr + "a.example.net."}}) },
			want:  HostUnavailable,
			logs:  []string{"error: *7 \"a.example.net\" could not be resolved (3: Host not found) while in resolving client hostname"},
		},
		{
			name: "forward SERVFAIL",
			setup: func() {
				d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{ptr + "a.example.net."}})
				d.Set("a.example.net", dns.TypeA, dnstest.Answer{Rcode: dns.RcodeServerFailure})
			},
			want: HostTempUnavail,
			logs: []string{"error: *7 \"a.example.net\" could not be resolved (2: Server failure) while in resolving client hostname"},
		},
		{name: "unix client", client: "unix", want: HostTempUnavail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.Reset()
			resetCache()
			if tc.setup != nil {
				tc.setup()
			}
			c := testConf()
			c.Core.Resolver = &confparse.Resolver{Addrs: []netip.AddrPort{dnsAddr}, IPv4: true, IPv6: true}
			c.Core.ResolverTimeout = 400 * time.Millisecond
			f := newFixture(c)
			f.h.resolve = resolveClient
			f.s.Action = "in auth state"
			if tc.client == "unix" {
				f.s.Client = netip.AddrPort{}
				f.s.ClientIP = "unix:"
			}
			if err := f.h.Greet(); err != nil {
				t.Fatal(err)
			}
			if f.s.ClientHost != tc.want {
				t.Errorf("ClientHost %q, want %q", f.s.ClientHost, tc.want)
			}
			if f.out.String() != greeting {
				t.Errorf("greeting %q", f.out.String())
			}
			logs := f.logs.all()
			if len(logs) != len(tc.logs) {
				t.Fatalf("logs %q, want %q", logs, tc.logs)
			}
			for i, want := range tc.logs {
				if !strings.HasPrefix(logs[i], want) {
					t.Errorf("log %q, want prefix %q", logs[i], want)
				}
			}
			if tc.client == "unix" && len(d.Queries()) != 0 {
				t.Errorf("unix client was looked up: %q", d.Queries())
			}
		})
	}
}

func resetCache() { resolve.ResetCache() }

// Positive answers are kept for the records' TTL (or valid=); failures are
// asked again.
func TestResolverCache(t *testing.T) {
	d, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	resetCache()
	lookup := func(valid time.Duration) string {
		c := testConf()
		c.Core.Resolver = &confparse.Resolver{Addrs: []netip.AddrPort{netip.MustParseAddrPort(d.Addr)}, IPv4: true, Valid: valid}
		c.Core.ResolverTimeout = 300 * time.Millisecond
		f := newFixture(c)
		return resolveClient(f.h)
	}
	d.SetPTR("127.0.0.1", dnstest.Answer{RRs: []string{"1.0.0.127.in-addr.arpa. 60 IN PTR a.example.net."}})
	d.Set("a.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"a.example.net. 1 IN A 127.0.0.1"}})
	if got := lookup(0); got != "a.example.net" {
		t.Fatalf("first lookup %q", got)
	}
	if q := len(d.Queries()); q != 2 {
		t.Fatalf("%d queries, want 2", q)
	}
	d.Reset() // everything is NXDOMAIN now
	if got := lookup(0); got != "a.example.net" {
		t.Fatalf("cached lookup %q", got)
	}
	if q := len(d.Queries()); q != 0 {
		t.Fatalf("cached lookup asked %q", d.Queries())
	}
	time.Sleep(1100 * time.Millisecond) // the A record's TTL ends
	if got := lookup(0); got != HostUnavailable {
		t.Fatalf("after TTL %q", got)
	}
	if q := d.Queries(); len(q) != 1 || q[0] != "a.example.net./A" {
		t.Fatalf("after TTL asked %q", q)
	}
	// NXDOMAIN was not kept: it is asked again.
	lookup(0)
	if q := len(d.Queries()); q != 2 {
		t.Fatalf("failure cached: %q", d.Queries())
	}
}

// A resolver address where nothing listens: nginx logs the refused recv
// without a connection number and times out.
func TestResolverRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	c := testConf()
	c.Core.Resolver = &confparse.Resolver{Addrs: []netip.AddrPort{addr}, IPv4: true}
	c.Core.ResolverTimeout = 300 * time.Millisecond
	f := newFixture(c)
	f.h.resolve = resolveClient
	if err := f.h.Greet(); err != nil {
		t.Fatal(err)
	}
	if f.s.ClientHost != HostTempUnavail {
		t.Errorf("ClientHost %q", f.s.ClientHost)
	}
	logs := f.logs.all()
	if len(logs) != 2 || logs[0] != "error: recv() failed (111: Connection refused) while resolving, resolver: "+addr.String() ||
		!strings.HasPrefix(logs[1], "error: *7 127.0.0.1 could not be resolved (110: Operation timed out)") {
		t.Errorf("logs %q", logs)
	}
}

// The resolver's own lines go to the main-level error_log: without the
// connection number and without the server that would route them to the
// server's error_log (nginx's r->log is the cycle's log).
func TestResolverLogIsMainLog(t *testing.T) {
	l := logrus.New()
	e := l.WithFields(logrus.Fields{errlog.ConnKey: uint64(7), errlog.ServerKey: &confparse.Server{}, "other": 1})
	b := baseLogger(e)
	if _, ok := b.Data[errlog.ConnKey]; ok {
		t.Error("connection number kept")
	}
	if _, ok := b.Data[errlog.ServerKey]; ok {
		t.Error("server kept: the line would go to the server's error_log")
	}
	if b.Data["other"] != 1 {
		t.Errorf("other fields lost: %v", b.Data)
	}
}
