package mailtest_test

// auth_http_resolve (mailgate-only): an Auth-Server host name resolved
// through the resolver directive against a loopback miekg/dns server, every
// address tried in order, TTLs and valid= honoured, nginx's log lines for
// failures, and nginx's refusal of a name when the directive is off.

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailgate/mail/mailtest"
	"mailgate/mail/resolve"
	"mailgate/mail/smtp/dnstest"
)

const authOKName = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: up.example.test\r\nAuth-Port: 1143\r\n\r\n"

// refusingDial wraps an Upstream: addresses in refuse fail with
// ECONNREFUSED; every address tried is recorded.
type refusingDial struct {
	up     *mailtest.Upstream
	refuse map[netip.Addr]bool
	mu     sync.Mutex
	tried  []string
}

func (r *refusingDial) Dial(ctx context.Context, ap netip.AddrPort, pp int) (net.Conn, error) {
	r.mu.Lock()
	r.tried = append(r.tried, ap.String())
	r.mu.Unlock()
	if r.refuse[ap.Addr()] {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.OpError{Op: "connect", Err: syscall.ECONNREFUSED}}
	}
	return r.up.Dial(ctx, ap, pp)
}

func (r *refusingDial) Tried() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.tried, " ")
}

func TestUpstreamHostName(t *testing.T) {
	d, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	up4 := dnstest.Answer{RRs: []string{"up.example.test. 300 IN A 192.0.2.10", "up.example.test. 300 IN A 192.0.2.11"}}
	up6 := dnstest.Answer{RRs: []string{"up.example.test. 300 IN AAAA 2001:db8::10"}}
	upIMAP := []string{"* OK up\r\n", "+ go\r\n", "+ go\r\n", "a1 OK done\r\n"}
	loginOK := exch{"a1 LOGIN alice secret\r\n", "a1 OK done\r\n"}
	internal := exch{"a1 LOGIN alice secret\r\n", "* BAD internal server error\r\n"}

	for _, tc := range []struct {
		name, conf string
		a, aaaa    *dnstest.Answer
		refuse     []string
		step       exch
		tried      string
		log        []string
		queries    int // DNS queries for two sessions (answers without an address are not cached)
	}{
		{name: "off: nginx refuses the name", conf: "resolver {{dns}};",
			a: &up4, step: internal,
			log: []string{`[error] `, `auth http server unix:`, ` sent invalid server address:"up.example.test" while in http auth state`}},
		{name: "first address", conf: "resolver {{dns}}; auth_http_resolve on;",
			a: &up4, aaaa: &up6, step: loginOK, tried: "192.0.2.10:1143", queries: 2},
		{name: "refused addresses are skipped, A before AAAA", conf: "resolver {{dns}}; auth_http_resolve on;",
			a: &up4, aaaa: &up6, refuse: []string{"192.0.2.10", "192.0.2.11"}, step: loginOK,
			tried: "192.0.2.10:1143 192.0.2.11:1143 [2001:db8::10]:1143", queries: 2,
			log: []string{"[error] ", "connect() to 192.0.2.10:1143 failed (111: Connection refused) while connecting to upstream",
				"connect() to 192.0.2.11:1143 failed (111: Connection refused) while connecting to upstream"}},
		{name: "IPv6 only", conf: "resolver {{dns}}; auth_http_resolve on;",
			aaaa: &up6, step: loginOK, tried: "[2001:db8::10]:1143", queries: 3},
		{name: "ipv6=off", conf: "resolver {{dns}} ipv6=off; auth_http_resolve on;",
			a: &up4, aaaa: &up6, refuse: []string{"192.0.2.10", "192.0.2.11"}, step: internal,
			tried: "192.0.2.10:1143 192.0.2.11:1143", queries: 1,
			log: []string{"connect() to 192.0.2.10:1143 failed (111: Connection refused)", "recv() failed (111: Connection refused) while reading response from upstream"}},
		{name: "all refused", conf: "resolver {{dns}}; auth_http_resolve on;",
			aaaa: &up6, refuse: []string{"2001:db8::10"}, step: internal, tried: "[2001:db8::10]:1143", queries: 3,
			log: []string{"recv() failed (111: Connection refused) while reading response from upstream", "upstream: up.example.test:1143"}},
		{name: "not found", conf: "resolver {{dns}}; auth_http_resolve on;",
			step: internal, queries: 4,
			log: []string{"[error] ", "up.example.test could not be resolved (3: Host not found) while resolving upstream"}},
		{name: "server failure", conf: "resolver {{dns}}; auth_http_resolve on;",
			a: &dnstest.Answer{Rcode: dns.RcodeServerFailure}, step: internal, queries: 4,
			log: []string{"up.example.test could not be resolved (2: Server failure) while resolving upstream"}},
		{name: "timeout", conf: "resolver {{dns}}; resolver_timeout 300ms; auth_http_resolve on;",
			a: &dnstest.Answer{Drop: true}, aaaa: &dnstest.Answer{Drop: true}, step: internal,
			log: []string{"up.example.test could not be resolved (110: Operation timed out) while resolving upstream"}},
		{name: "no resolver", conf: "auth_http_resolve on;", step: internal,
			log: []string{"[error] ", "no resolver defined to resolve up.example.test while resolving upstream"}},
		{name: "TTL 0 is not cached", conf: "resolver {{dns}}; auth_http_resolve on;",
			a: &dnstest.Answer{RRs: []string{"up.example.test. 0 IN A 192.0.2.10"}}, step: loginOK, tried: "192.0.2.10:1143", queries: 4},
		{name: "valid= overrides TTL 0", conf: "resolver {{dns}} valid=1m; auth_http_resolve on;",
			a: &dnstest.Answer{RRs: []string{"up.example.test. 0 IN A 192.0.2.10"}}, step: loginOK, tried: "192.0.2.10:1143", queries: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resolve.ResetCache()
			d.Reset()
			if tc.a != nil {
				d.Set("up.example.test", dns.TypeA, *tc.a)
			}
			if tc.aaaa != nil {
				d.Set("up.example.test", dns.TypeAAAA, *tc.aaaa)
			}
			rd := &refusingDial{up: &mailtest.Upstream{Replies: upIMAP}, refuse: map[netip.Addr]bool{}}
			for _, a := range tc.refuse {
				rd.refuse[netip.MustParseAddr(a)] = true
			}
			as := mailtest.StartAuthServer(t)
			as.Script([]byte(authOKName))
			conf := strings.ReplaceAll(tc.conf, "{{dns}}", d.Addr)
			cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; "+conf+" }")
			env := mailtest.Start(t, cfg, mailtest.Options{Protocols: allProtocols, DialUpstream: rd.Dial})
			// Two sessions: the second one's lookups come from the cache
			// while the answer's TTL (or valid=) lasts.
			for i := 0; i < 2; i++ {
				c := env.Dial(t, mailtest.Unix, 0)
				if g := c.ReadN(len(oauthGreeting["imap"]), 5*time.Second); g != oauthGreeting["imap"] {
					t.Fatalf("greeting %q", g)
				}
				if err := c.Send(tc.step.send); err != nil {
					t.Fatal(err)
				}
				if got := c.ReadN(len(tc.step.want), 5*time.Second); got != tc.step.want {
					t.Fatalf("session %d: got %q, want %q\nlog:\n%s", i, got, tc.step.want, env.Log)
				}
				if msg := c.End(true); msg != "" {
					t.Fatalf("session %d: %s\nlog:\n%s", i, msg, env.Log)
				}
				if i == 0 && rd.Tried() != tc.tried {
					t.Errorf("tried %q, want %q\nlog:\n%s", rd.Tried(), tc.tried, env.Log)
				}
			}
			rd.up.Wait()
			log := env.Log.String()
			for _, want := range tc.log {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if tc.queries > 0 {
				if q := d.Queries(); len(q) != tc.queries {
					t.Errorf("DNS queries %q, want %d", q, tc.queries)
				}
			}
		})
	}
}
