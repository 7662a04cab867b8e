package resolve

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
	"mailgate/mail/smtp/dnstest"
)

func startDNS(t *testing.T) *dnstest.Server {
	t.Helper()
	s, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func rev(ip string) string {
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return r
}

// lockedBuf is a log sink the test reads while resolver goroutines write.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logged returns a logger and the lines it got.
func logged() (*logrus.Entry, *lockedBuf) {
	b := &lockedBuf{}
	l := logrus.New()
	l.Out = b
	l.Formatter = &errlog.Formatter{Min: errlog.Debug, Now: func() time.Time { return time.Time{} }}
	return logrus.NewEntry(l), b
}

func client(addrs ...string) *Client {
	r := &confparse.Resolver{IPv4: true}
	for _, a := range addrs {
		r.Addrs = append(r.Addrs, netip.MustParseAddrPort(a))
	}
	return &Client{Conf: r}
}

func ptr(t *testing.T, c *Client, ip string, timeout time.Duration) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.PTR(ctx, netip.MustParseAddr(ip))
}

// Each new query starts at the address after the previous query's start,
// per resolver directive, as ngx_resolver_t.last_connection does; an RCODE
// answer ends the query there. Checked against nginx by
// compat-tests/smtp TestResolverOrders.
func TestRotationPerResolver(t *testing.T) {
	ResetCache()
	good, bad := startDNS(t), startDNS(t)
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		good.SetPTR(ip, dnstest.Answer{RRs: []string{rev(ip) + " 60 IN PTR h.example.net."}})
		bad.SetPTR(ip, dnstest.Answer{Rcode: dns.RcodeServerFailure})
	}
	for _, tc := range []struct {
		order []string
		want  []int
	}{
		{[]string{bad.Addr, good.Addr}, []int{RcodeServFail, RcodeOK, RcodeServFail, RcodeOK}},
		{[]string{good.Addr, bad.Addr}, []int{RcodeOK, RcodeServFail, RcodeOK, RcodeServFail}},
	} {
		ResetCache()
		c := client(tc.order...)
		other := client(tc.order...) // another resolver directive: its own turn
		for i, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
			if _, code := ptr(t, c, ip, time.Second); code != tc.want[i] {
				t.Errorf("order %v, query %d: code %d, want %d", tc.order, i+1, code, tc.want[i])
			}
		}
		ResetCache()
		if _, code := ptr(t, other, "127.0.0.2", time.Second); code != tc.want[0] {
			t.Errorf("second resolver's first query: code %d, want %d", code, tc.want[0])
		}
	}
}

// A and AAAA of one name are one query: both go to the same address, and
// the turn moves on once.
func TestLookupOneAddressForBothTypes(t *testing.T) {
	ResetCache()
	a, b := startDNS(t), startDNS(t)
	for _, s := range []*dnstest.Server{a, b} {
		s.Set("n.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"n.example.net. 60 IN A 192.0.2.1"}})
		s.Set("n.example.net", dns.TypeAAAA, dnstest.Answer{RRs: []string{"n.example.net. 60 IN AAAA 2001:db8::1"}})
		s.Set("m.example.net", dns.TypeA, dnstest.Answer{RRs: []string{"m.example.net. 60 IN A 192.0.2.2"}})
		s.Set("m.example.net", dns.TypeAAAA, dnstest.Answer{RRs: []string{"m.example.net. 60 IN AAAA 2001:db8::2"}})
	}
	c := client(a.Addr, b.Addr)
	c.Conf.IPv6 = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addrs, code := c.Lookup(ctx, "n.example.net")
	if code != RcodeOK || len(addrs) != 2 || addrs[0].String() != "192.0.2.1" || addrs[1].String() != "2001:db8::1" {
		t.Fatalf("Lookup = %v, %d", addrs, code)
	}
	if _, code := c.Lookup(ctx, "m.example.net"); code != RcodeOK {
		t.Fatalf("second Lookup code %d", code)
	}
	qa, qb := strings.Join(a.Queries(), " "), strings.Join(b.Queries(), " ")
	if !strings.Contains(qa, "n.example.net./A") || !strings.Contains(qa, "n.example.net./AAAA") || strings.Contains(qa, "m.example.net") {
		t.Errorf("first server asked %q", qa)
	}
	if !strings.Contains(qb, "m.example.net./A") || !strings.Contains(qb, "m.example.net./AAAA") || strings.Contains(qb, "n.example.net") {
		t.Errorf("second server asked %q", qb)
	}
}

// An unanswered question goes to the next address after ResendInterval;
// an answer from an address asked before still counts.
func TestResend(t *testing.T) {
	saved := ResendInterval
	ResendInterval = 150 * time.Millisecond
	defer func() { ResendInterval = saved }()

	silent, good, slow := startDNS(t), startDNS(t), startDNS(t)
	silent.SetPTR("127.0.0.2", dnstest.Answer{Drop: true})
	good.SetPTR("127.0.0.2", dnstest.Answer{RRs: []string{rev("127.0.0.2") + " 60 IN PTR good.example.net."}})
	slow.SetPTR("127.0.0.2", dnstest.Answer{Delay: 400 * time.Millisecond, RRs: []string{rev("127.0.0.2") + " 60 IN PTR slow.example.net."}})

	ResetCache()
	start := time.Now()
	name, code := ptr(t, client(silent.Addr, good.Addr), "127.0.0.2", 2*time.Second)
	if code != RcodeOK || name != "good.example.net" {
		t.Fatalf("silent, good: %q %d", name, code)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v, before the resend", d)
	}
	ResetCache()
	name, code = ptr(t, client(slow.Addr, silent.Addr), "127.0.0.2", 2*time.Second)
	if code != RcodeOK || name != "slow.example.net" {
		t.Fatalf("late answer of the first address: %q %d", name, code)
	}
	if q := silent.Queries(); len(q) < 2 {
		t.Errorf("silent server asked %q: the resend did not reach it", q)
	}
	ResetCache()
	if _, code := ptr(t, client(silent.Addr), "127.0.0.2", 200*time.Millisecond); code != RcodeTimedOut {
		t.Errorf("silent only: code %d", code)
	}
}

// Connection numbers: the first query to an address opens nginx's socket
// (one number); after a refused recv() the next query opens another.
func TestCountConn(t *testing.T) {
	var n atomic.Int32
	saved := CountConn
	CountConn = func() { n.Add(1) }
	defer func() { CountConn = saved }()

	good := startDNS(t)
	good.SetPTR("127.0.0.2", dnstest.Answer{RRs: []string{rev("127.0.0.2") + " 60 IN PTR h.example.net."}})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()

	c := client(good.Addr)
	for range 3 {
		ResetCache()
		ptr(t, c, "127.0.0.2", time.Second)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("good address: %d numbers, want 1", got)
	}
	n.Store(0)
	log, buf := logged()
	c = client(closed)
	c.Log = log
	for range 2 {
		ptr(t, c, "127.0.0.2", 200*time.Millisecond)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("refused address: %d numbers, want 2", got)
	}
	if want := "recv() failed (111: Connection refused) while resolving, resolver: " + closed; strings.Count(buf.String(), want) != 2 {
		t.Errorf("log:\n%s", buf)
	}
}

// Lookups of the same address at the same moment share one query, as
// nginx queues them on the node being resolved: one question is sent and
// the turn moves once.
func TestConcurrentLookupsShareAQuery(t *testing.T) {
	ResetCache()
	a, b := startDNS(t), startDNS(t)
	for _, s := range []*dnstest.Server{a, b} {
		s.SetPTR("127.0.0.2", dnstest.Answer{Delay: 200 * time.Millisecond, RRs: []string{rev("127.0.0.2") + " 60 IN PTR h.example.net."}})
		s.SetPTR("127.0.0.3", dnstest.Answer{RRs: []string{rev("127.0.0.3") + " 60 IN PTR g.example.net."}})
	}
	c := client(a.Addr, b.Addr)
	var wg sync.WaitGroup
	names := make([]string, 3)
	for i := range names {
		wg.Go(func() {
			// Each waiter has its own timeout; the first one gives up
			// early and the query goes on for the others.
			timeout := time.Second
			if i == 0 {
				timeout = 50 * time.Millisecond
			}
			names[i], _ = ptr(t, c, "127.0.0.2", timeout)
		})
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	if names[0] != "" || names[1] != "h.example.net" || names[2] != "h.example.net" {
		t.Errorf("names %q", names)
	}
	if q := a.Queries(); len(q) != 1 {
		t.Errorf("first server asked %q, want one question", q)
	}
	// The turn moved once: the next query goes to the second server.
	ptr(t, c, "127.0.0.3", time.Second)
	if q := b.Queries(); len(q) != 1 || q[0] != "3.0.0.127.in-addr.arpa./PTR" {
		t.Errorf("second server asked %q", q)
	}
}
