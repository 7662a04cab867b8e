package smtp

// The client resolver (docs/smtp.md, "Before the greeting"): before the greeting, the client address
// is looked up (PTR), the name is checked, and it is confirmed by a forward
// lookup (A and AAAA). The answer is the host name, "[UNAVAILABLE]" or
// "[TEMPUNAVAIL]"; it travels as Client-Host and XCLIENT NAME=.
//
// The DNS client is a small one on github.com/miekg/dns: UDP to the
// resolver addresses in turn, a resend every few seconds, TCP when the
// answer is truncated, and resolver_timeout per lookup, as nginx's resolver
// does.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// nginx's resolver result codes: the DNS RCODE, or 110 for a timeout.
const (
	rcodeOK       = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeTimedOut = 110
)

// resolverError is nginx's ngx_resolver_strerror.
func resolverError(code int) string {
	switch code {
	case rcodeFormErr:
		return "Format error"
	case rcodeServFail:
		return "Server failure"
	case rcodeNXDomain:
		return "Host not found"
	case rcodeNotImp:
		return "Unimplemented"
	case rcodeRefused:
		return "Operation refused"
	case rcodeTimedOut:
		return "Operation timed out"
	}
	return "Unknown error"
}

// resendInterval is how long a query waits for an answer before it is sent
// again (to the next resolver address).
var resendInterval = 5 * time.Second

// resolveClient runs the whole client lookup for a session and returns the
// value of Session.ClientHost. It logs as nginx does.
func resolveClient(h *handler) string {
	s := h.s
	rc := h.conf.Core.Resolver
	if rc == nil {
		return HostUnavailable
	}
	addr := s.Client.Addr().Unmap()
	if !addr.IsValid() {
		// A unix-socket client has no address to look up.
		return HostTempUnavail
	}
	timeout := h.conf.Core.ResolverTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cl := &dnsClient{conf: rc, log: baseLogger(s.Log)}

	saved := s.Action
	defer func() { s.Action = saved }()

	parent := s.Context() // cancelled when the server shuts down
	s.Action = "in resolving client address"
	ctx, cancel := context.WithTimeout(parent, timeout)
	name, code := cl.ptr(ctx, addr)
	cancel()
	if parent.Err() != nil {
		return HostTempUnavail
	}
	if code != rcodeOK {
		s.Logf(errlog.Error, "%s could not be resolved (%d: %s)", s.ClientIP, code, resolverError(code))
		if code == rcodeNXDomain {
			return HostUnavailable
		}
		return HostTempUnavail
	}
	if !validHostName(name) {
		s.Logf(errlog.Error, "%s resolved to invalid host name \"%s\"", s.ClientIP, name)
		return HostTempUnavail
	}

	s.Action = "in resolving client hostname"
	ctx, cancel = context.WithTimeout(parent, timeout)
	addrs, code := cl.lookup(ctx, name)
	cancel()
	if parent.Err() != nil {
		return HostTempUnavail
	}
	if code != rcodeOK {
		s.Logf(errlog.Error, "\"%s\" could not be resolved (%d: %s)", name, code, resolverError(code))
		if code == rcodeNXDomain {
			return HostUnavailable
		}
		return HostTempUnavail
	}
	for _, a := range addrs {
		if a.Unmap() == addr {
			return name
		}
	}
	return HostUnavailable
}

// baseLogger is the session's logger without its connection number: nginx
// logs resolver I/O errors on the resolver's own log.
func baseLogger(e *logrus.Entry) *logrus.Entry {
	if e == nil {
		return nil
	}
	data := logrus.Fields{}
	for k, v := range e.Data {
		if k != errlog.ConnKey {
			data[k] = v
		}
	}
	return e.Logger.WithFields(data)
}

// validHostName is newer nginx's check of a PTR name (CVE-2026-28753): not
// empty, only letters, digits, '-' and '.'.
func validHostName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// dnsClient asks the configured resolvers.
type dnsClient struct {
	conf *confparse.Resolver
	log  *logrus.Entry
}

// next spreads queries over the resolver addresses (nginx round-robins).
var next atomic.Uint32

// ptr returns the first PTR name of addr, without the trailing dot, as raw
// bytes (DNS escapes undone).
func (c *dnsClient) ptr(ctx context.Context, addr netip.Addr) (string, int) {
	rev, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return "", rcodeFormErr
	}
	m, code := c.query(ctx, rev, dns.TypePTR)
	if code != rcodeOK {
		return "", code
	}
	return presentationToRaw(m.Answer[0].(*dns.PTR).Ptr), rcodeOK
}

// usable says whether a response answers the question. Like nginx, a PTR
// response whose first record is not a PTR (a CNAME, a DNAME) is logged
// and ignored: the query then waits for another answer or times out.
func (c *dnsClient) usable(m *dns.Msg, qtype uint16) bool {
	if qtype != dns.TypePTR || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		return true
	}
	if _, ok := m.Answer[0].(*dns.PTR); ok {
		return true
	}
	if c.log != nil {
		errlog.Log(c.log, errlog.Error, "no PTR type in DNS response")
	}
	return false
}

// lookup returns the A and AAAA addresses of name (as enabled by the
// resolver's ipv4=/ipv6= flags).
func (c *dnsClient) lookup(ctx context.Context, name string) ([]netip.Addr, int) {
	fqdn := dns.Fqdn(name)
	type result struct {
		addrs []netip.Addr
		code  int
	}
	var qtypes []uint16
	if c.conf.IPv4 || !c.conf.IPv6 {
		qtypes = append(qtypes, dns.TypeA)
	}
	if c.conf.IPv6 {
		qtypes = append(qtypes, dns.TypeAAAA)
	}
	results := make(chan result, len(qtypes))
	for _, qt := range qtypes {
		go func(qt uint16) {
			m, code := c.query(ctx, fqdn, qt)
			var r result
			r.code = code
			if code == rcodeOK {
				for _, rr := range m.Answer {
					switch v := rr.(type) {
					case *dns.A:
						if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
							r.addrs = append(r.addrs, a)
						}
					case *dns.AAAA:
						if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
							r.addrs = append(r.addrs, a)
						}
					}
				}
			}
			results <- r
		}(qt)
	}
	var addrs []netip.Addr
	code := rcodeNXDomain
	errCode := 0
	for range qtypes {
		r := <-results
		addrs = append(addrs, r.addrs...)
		if r.code != rcodeOK && r.code != rcodeNXDomain && errCode == 0 {
			errCode = r.code
		}
	}
	if len(addrs) > 0 {
		return addrs, rcodeOK
	}
	if errCode != 0 {
		code = errCode
	}
	return nil, code
}

// cache keeps positive answers as nginx's resolver does: for valid= when
// set, else for the smallest TTL of the answer. Failures are not kept.
var cache = struct {
	sync.Mutex
	m map[string]cacheEntry
}{m: map[string]cacheEntry{}}

type cacheEntry struct {
	msg     *dns.Msg
	expires time.Time
}

const cacheMax = 10000

func (c *dnsClient) cacheKey(name string, qtype uint16) string {
	var b strings.Builder
	for _, a := range c.conf.Addrs {
		b.WriteString(a.String())
		b.WriteByte(',')
	}
	b.WriteString(strings.ToLower(name))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(int(qtype)))
	return b.String()
}

func (c *dnsClient) cached(key string) *dns.Msg {
	cache.Lock()
	defer cache.Unlock()
	e, ok := cache.m[key]
	if !ok {
		return nil
	}
	if time.Now().After(e.expires) {
		delete(cache.m, key)
		return nil
	}
	return e.msg
}

func (c *dnsClient) store(key string, m *dns.Msg) {
	ttl := c.conf.Valid
	if ttl <= 0 {
		for i, rr := range m.Answer {
			d := time.Duration(rr.Header().Ttl) * time.Second
			if i == 0 || d < ttl {
				ttl = d
			}
		}
	}
	if ttl <= 0 {
		return
	}
	now := time.Now()
	cache.Lock()
	defer cache.Unlock()
	if len(cache.m) >= cacheMax {
		for k, e := range cache.m {
			if now.After(e.expires) {
				delete(cache.m, k)
			}
		}
		if len(cache.m) >= cacheMax {
			return
		}
	}
	cache.m[key] = cacheEntry{msg: m, expires: now.Add(ttl)}
}

// query answers one question from the cache or the resolvers.
func (c *dnsClient) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, int) {
	key := c.cacheKey(name, qtype)
	if m := c.cached(key); m != nil {
		return m, rcodeOK
	}
	m, code := c.ask(ctx, name, qtype)
	if code == rcodeOK {
		c.store(key, m)
	}
	return m, code
}

// ask sends one question until an answer comes or ctx ends.
func (c *dnsClient) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, int) {
	if len(c.conf.Addrs) == 0 {
		return nil, rcodeTimedOut
	}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true

	for {
		server := c.conf.Addrs[int(next.Add(1)-1)%len(c.conf.Addrs)]
		wait := resendInterval
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			wait = time.Until(dl)
		}
		attempt, cancel := context.WithTimeout(ctx, wait)
		m, err := c.exchange(attempt, q, server)
		if err != nil && isRefused(err) {
			c.logIOError(err, server)
			<-attempt.Done() // nginx waits for the resend timer
		}
		if err == nil && !c.usable(m, qtype) {
			err = errIgnored
			<-attempt.Done()
		}
		cancel()
		if err == nil {
			code := m.Rcode
			if code == dns.RcodeSuccess && len(m.Answer) == 0 {
				code = rcodeNXDomain
			}
			return m, code
		}
		if ctx.Err() != nil {
			return nil, rcodeTimedOut
		}
	}
}

func (c *dnsClient) exchange(ctx context.Context, q *dns.Msg, server netip.AddrPort) (*dns.Msg, error) {
	q = q.Copy()
	q.Id = dns.Id()
	cl := &dns.Client{Net: "udp", UDPSize: 4096}
	m, _, err := cl.ExchangeContext(ctx, q, server.String())
	if err == nil && m.Truncated {
		cl = &dns.Client{Net: "tcp"}
		m, _, err = cl.ExchangeContext(ctx, q, server.String())
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

var errIgnored = errors.New("dns: response ignored")

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

func (c *dnsClient) logIOError(err error, server netip.AddrPort) {
	if c.log == nil {
		return
	}
	errlog.Log(c.log, errlog.Error, fmt.Sprintf("recv() failed %s while resolving, resolver: %s", errlog.SysErrText(err), server))
}

// presentationToRaw undoes miekg/dns's escapes (\DDD and \X) and drops the
// trailing dot, giving the name's bytes as nginx sees them.
func presentationToRaw(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	} else if s == "." {
		return ""
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n, _ := strconv.Atoi(s[i+1 : i+4])
			b = append(b, byte(n))
			i += 3
			continue
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
