// Package resolve is mailgate's DNS client for nginx's `resolver`
// directive: A, AAAA and PTR lookups on github.com/miekg/dns, UDP to the
// resolver addresses in turn, a resend every few seconds, TCP when the
// answer is truncated, and a cache of positive answers kept for their TTL
// (or resolver's valid=), as nginx's resolver does. The SMTP client
// resolver (mail/smtp) and the mailgate-only upstream host names
// (auth_http_resolve, mail/upstream_resolve.go) use it.
package resolve

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
	RcodeOK       = 0
	RcodeFormErr  = 1
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeNotImp   = 4
	RcodeRefused  = 5
	RcodeTimedOut = 110
)

// ErrorText is nginx's ngx_resolver_strerror.
func ErrorText(code int) string {
	switch code {
	case RcodeFormErr:
		return "Format error"
	case RcodeServFail:
		return "Server failure"
	case RcodeNXDomain:
		return "Host not found"
	case RcodeNotImp:
		return "Unimplemented"
	case RcodeRefused:
		return "Operation refused"
	case RcodeTimedOut:
		return "Operation timed out"
	}
	return "Unknown error"
}

// ResendInterval is how long a query waits for an answer before it is sent
// again (to the next resolver address).
var ResendInterval = 5 * time.Second

// Client asks the configured resolvers.
type Client struct {
	Conf *confparse.Resolver
	// Log gets the resolver's own lines (I/O errors, an ignored answer);
	// nginx logs them without a connection number.
	Log *logrus.Entry
}

// next spreads queries over the resolver addresses (nginx round-robins).
var next atomic.Uint32

// PTR returns the first PTR name of addr, without the trailing dot, as raw
// bytes (DNS escapes undone).
func (c *Client) PTR(ctx context.Context, addr netip.Addr) (string, int) {
	rev, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return "", RcodeFormErr
	}
	m, code := c.query(ctx, rev, dns.TypePTR)
	if code != RcodeOK {
		return "", code
	}
	return PresentationToRaw(m.Answer[0].(*dns.PTR).Ptr), RcodeOK
}

// usable says whether a response answers the question. Like nginx, a PTR
// response whose first record is not a PTR (a CNAME, a DNAME) is logged
// and ignored: the query then waits for another answer or times out.
func (c *Client) usable(m *dns.Msg, qtype uint16) bool {
	if qtype != dns.TypePTR || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		return true
	}
	if _, ok := m.Answer[0].(*dns.PTR); ok {
		return true
	}
	if c.Log != nil {
		errlog.Log(c.Log, errlog.Error, "no PTR type in DNS response")
	}
	return false
}

// Lookup returns the A and AAAA addresses of name (as enabled by the
// resolver's ipv4=/ipv6= flags).
func (c *Client) Lookup(ctx context.Context, name string) ([]netip.Addr, int) {
	fqdn := dns.Fqdn(name)
	type result struct {
		addrs []netip.Addr
		code  int
		typ   int // 0: A, 1: AAAA
	}
	var qtypes []uint16
	if c.Conf.IPv4 || !c.Conf.IPv6 {
		qtypes = append(qtypes, dns.TypeA)
	}
	if c.Conf.IPv6 {
		qtypes = append(qtypes, dns.TypeAAAA)
	}
	results := make(chan result, len(qtypes))
	for _, qt := range qtypes {
		go func(qt uint16) {
			m, code := c.query(ctx, fqdn, qt)
			var r result
			r.code = code
			if qt == dns.TypeAAAA {
				r.typ = 1
			}
			if code == RcodeOK {
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
	code := RcodeNXDomain
	errCode := 0
	// A answers first, then AAAA, as nginx's resolver lists them.
	var byType [2][]netip.Addr
	for range qtypes {
		r := <-results
		byType[r.typ] = r.addrs
		if r.code != RcodeOK && r.code != RcodeNXDomain && errCode == 0 {
			errCode = r.code
		}
	}
	addrs = append(byType[0], byType[1]...)
	if len(addrs) > 0 {
		return addrs, RcodeOK
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

func (c *Client) cacheKey(name string, qtype uint16) string {
	var b strings.Builder
	for _, a := range c.Conf.Addrs {
		b.WriteString(a.String())
		b.WriteByte(',')
	}
	b.WriteString(strings.ToLower(name))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(int(qtype)))
	return b.String()
}

func (c *Client) cached(key string) *dns.Msg {
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

func (c *Client) store(key string, m *dns.Msg) {
	ttl := c.Conf.Valid
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
func (c *Client) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, int) {
	key := c.cacheKey(name, qtype)
	if m := c.cached(key); m != nil {
		return m, RcodeOK
	}
	m, code := c.ask(ctx, name, qtype)
	if code == RcodeOK {
		c.store(key, m)
	}
	return m, code
}

// ask sends one question until an answer comes or ctx ends.
func (c *Client) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, int) {
	if len(c.Conf.Addrs) == 0 {
		return nil, RcodeTimedOut
	}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true

	for {
		server := c.Conf.Addrs[int(next.Add(1)-1)%len(c.Conf.Addrs)]
		wait := ResendInterval
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
				code = RcodeNXDomain
			}
			return m, code
		}
		if ctx.Err() != nil {
			return nil, RcodeTimedOut
		}
	}
}

func (c *Client) exchange(ctx context.Context, q *dns.Msg, server netip.AddrPort) (*dns.Msg, error) {
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

func (c *Client) logIOError(err error, server netip.AddrPort) {
	if c.Log == nil {
		return
	}
	errlog.Log(c.Log, errlog.Error, fmt.Sprintf("recv() failed %s while resolving, resolver: %s", errlog.SysErrText(err), server))
}

// PresentationToRaw undoes miekg/dns's escapes (\DDD and \X) and drops the
// trailing dot, giving the name's bytes as nginx sees them.
func PresentationToRaw(s string) string {
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

// ResetCache forgets every cached answer (tests).
func ResetCache() {
	cache.Lock()
	cache.m = map[string]cacheEntry{}
	cache.Unlock()
}
