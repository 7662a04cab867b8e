// Package resolve is mailgate's DNS client for nginx's `resolver`
// directive: A, AAAA and PTR lookups on github.com/miekg/dns, UDP to the
// resolver addresses in turn (a turn per directive, state.go), a resend to
// the next address every 5s, TCP when the answer is truncated, nginx's
// checks of each answer (judge), and a cache of positive answers kept for
// their TTL (or resolver's valid=), as nginx's resolver (ngx_resolver.c)
// does; docs/smtp.md "Before the greeting" tells the rules. The SMTP client
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

// PTR returns the first PTR name of addr, without the trailing dot, as raw
// bytes (DNS escapes undone) in lower case, as nginx's ngx_resolver_copy
// gives it.
func (c *Client) PTR(ctx context.Context, addr netip.Addr) (string, int) {
	rev, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return "", RcodeFormErr
	}
	m, code := c.query(ctx, rev, dns.TypePTR)
	if code != RcodeOK {
		return "", code
	}
	for _, rr := range m.Answer {
		if p, ok := rr.(*dns.PTR); ok {
			return lower(PresentationToRaw(p.Ptr)), RcodeOK
		}
	}
	return "", RcodeNXDomain // not reached: judge keeps only answers with a PTR
}

// lower is ngx_strlow: ASCII letters only.
func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c | 0x20
		}
	}
	return string(b)
}

// Lookup returns the A and AAAA addresses of name (as enabled by the
// resolver's ipv4=/ipv6= flags). Like nginx, both questions go to the same
// resolver address, and an answer holding only a CNAME is followed with a
// new lookup of its target (up to 50 times).
func (c *Client) Lookup(ctx context.Context, name string) ([]netip.Addr, int) {
	for range maxRecursion {
		addrs, cname, code := c.lookup(ctx, name)
		if cname == "" {
			return addrs, code
		}
		name = cname
	}
	return nil, RcodeNXDomain
}

// maxRecursion is NGX_RESOLVER_MAX_RECURSION.
const maxRecursion = 50

func (c *Client) lookup(ctx context.Context, name string) ([]netip.Addr, string, int) {
	fqdn := dns.Fqdn(name)
	var qtypes []uint16
	if c.Conf.IPv4 || !c.Conf.IPv6 {
		qtypes = append(qtypes, dns.TypeA)
	}
	if c.Conf.IPv6 {
		qtypes = append(qtypes, dns.TypeAAAA)
	}
	msgs, codes := c.queryAll(ctx, fqdn, qtypes)
	// A answers first, then AAAA, as nginx's resolver lists them.
	var addrs []netip.Addr
	cname := ""
	errCode := 0
	for i, m := range msgs {
		code := codes[i]
		if code != RcodeOK {
			if code != RcodeNXDomain && errCode == 0 {
				errCode = code
			}
			continue
		}
		for _, rr := range m.Answer {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
					addrs = append(addrs, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
					addrs = append(addrs, a)
				}
			case *dns.CNAME:
				cname = v.Target
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, "", RcodeOK
	}
	if errCode != 0 {
		return nil, "", errCode
	}
	if cname != "" {
		return nil, cname, RcodeOK
	}
	return nil, "", RcodeNXDomain
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
	msgs, codes := c.queryAll(ctx, name, []uint16{qtype})
	return msgs[0], codes[0]
}

// queryAll answers the questions about one name from the cache or, for
// those not cached, with one exchange with the resolvers (one node of
// nginx's resolver).
func (c *Client) queryAll(ctx context.Context, name string, qtypes []uint16) ([]*dns.Msg, []int) {
	msgs := make([]*dns.Msg, len(qtypes))
	codes := make([]int, len(qtypes))
	var ask []*dns.Msg
	var at []int
	for i, qt := range qtypes {
		if m := c.cached(c.cacheKey(name, qt)); m != nil {
			msgs[i] = m
			continue
		}
		q := new(dns.Msg)
		q.SetQuestion(name, qt)
		q.RecursionDesired = true
		ask = append(ask, q)
		at = append(at, i)
	}
	if len(ask) == 0 {
		return msgs, codes
	}
	got, gotCodes := c.shared(ctx, ask, func(got []*dns.Msg, codes []int) {
		for j, i := range at {
			if codes[j] == RcodeOK {
				c.store(c.cacheKey(name, qtypes[i]), got[j])
			}
		}
	})
	for j, i := range at {
		msgs[i], codes[i] = got[j], gotCodes[j]
	}
	return msgs, codes
}

// flight is a query in progress that later lookups of the same questions
// wait for, as nginx queues a ctx on a node that is being resolved (no
// second query, the turn does not move).
type flight struct {
	done    chan struct{}
	waiters int
	cancel  context.CancelFunc
	msgs    []*dns.Msg
	codes   []int
}

// shared runs ask for qs, or waits for the same questions already asked.
// The query runs while someone waits for it; each waiter stops at its own
// ctx. keep runs once with the query's result.
func (c *Client) shared(ctx context.Context, qs []*dns.Msg, keep func([]*dns.Msg, []int)) ([]*dns.Msg, []int) {
	var b strings.Builder
	for _, q := range qs {
		b.WriteString(strings.ToLower(q.Question[0].Name))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(q.Question[0].Qtype)))
		b.WriteByte(' ')
	}
	key := b.String()
	st := stateOf(c.Conf)
	st.mu.Lock()
	f := st.flights[key]
	if f == nil {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		st.flights[key] = f
		go func() {
			msgs, codes := c.ask(fctx, qs)
			keep(msgs, codes)
			cancel()
			st.mu.Lock()
			if st.flights[key] == f {
				delete(st.flights, key)
			}
			f.msgs, f.codes = msgs, codes
			st.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	st.mu.Unlock()
	select {
	case <-f.done:
		return f.msgs, f.codes
	case <-ctx.Done():
	}
	st.mu.Lock()
	f.waiters--
	if f.waiters == 0 {
		// Nobody waits: the next lookup sends a new query, as nginx
		// does for a node whose waiters have all timed out.
		f.cancel()
		if st.flights[key] == f {
			delete(st.flights, key)
		}
	}
	st.mu.Unlock()
	codes := make([]int, len(qs))
	for i := range codes {
		codes[i] = RcodeTimedOut
	}
	return make([]*dns.Msg, len(qs)), codes
}

// ask sends the questions to one resolver address, chosen in turn as
// nginx's ngx_resolver_t.last_connection does (each new query starts at
// the address after the previous query's), and every ResendInterval
// sends the unanswered ones again to the next address. An answer from
// any address asked so far counts, as with nginx's sockets that stay
// open. An answer with an RCODE (SERVFAIL, NXDOMAIN, REFUSED, ...) ends
// the question at once, as in nginx: no other address is asked. Answers
// nginx ignores (see judge) leave the question waiting. Questions left
// unanswered when ctx ends get RcodeTimedOut.
func (c *Client) ask(ctx context.Context, qs []*dns.Msg) ([]*dns.Msg, []int) {
	msgs := make([]*dns.Msg, len(qs))
	codes := make([]int, len(qs))
	for i := range codes {
		codes[i] = RcodeTimedOut
	}
	addrs := c.Conf.Addrs
	if len(addrs) == 0 {
		return msgs, codes
	}
	st := stateOf(c.Conf)
	idx := st.pick(len(addrs))

	type got struct {
		i int
		m *dns.Msg
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan got)
	done := make([]bool, len(qs))
	pending := len(qs)
	send := func(idx int) {
		server := addrs[idx]
		st.open(idx)
		for i, q := range qs {
			if done[i] {
				continue
			}
			go func(i int, q *dns.Msg) {
				m, err := c.exchange(actx, q, server)
				if err != nil {
					if isRefused(err) && actx.Err() == nil {
						c.logIOError(err, server)
						// nginx opens a new socket for the next query
						// to this address (one more connection number).
						st.closed(idx)
					}
					return
				}
				select {
				case ch <- got{i, m}:
				case <-actx.Done():
				}
			}(i, q)
		}
	}
	send(idx)
	resend := time.NewTicker(ResendInterval)
	defer resend.Stop()
	for pending > 0 {
		select {
		case g := <-ch:
			if done[g.i] {
				continue
			}
			code, ok := c.judge(g.m, qs[g.i])
			if !ok {
				continue
			}
			done[g.i] = true
			pending--
			msgs[g.i], codes[g.i] = g.m, code
		case <-resend.C:
			idx = (idx + 1) % len(addrs)
			send(idx)
		case <-ctx.Done():
			return msgs, codes
		}
	}
	return msgs, codes
}

// judge applies nginx's checks of a response (ngx_resolver_process_response,
// _process_a, _process_ptr): it returns the result code of the question,
// or false for a response nginx logs and ignores (the question then waits
// for another answer, a resend, or its timeout).
func (c *Client) judge(m *dns.Msg, q *dns.Msg) (int, bool) {
	flags := headerFlags(m)
	if flags&0xf870 != 0x8000 {
		c.logf("invalid UDP DNS response %d fl:%04X", m.Id, flags)
		return 0, false
	}
	qt := q.Question[0].Qtype
	qname := lower(PresentationToRaw(q.Question[0].Name))
	code := m.Rcode & 0xf
	if code == RcodeFormErr && qt != dns.TypePTR {
		c.logf("DNS error (%d: %s), query id:%d, name:\"%s\"", code, ErrorText(code), m.Id, qname)
		return 0, false
	}
	if code == RcodeFormErr || code > RcodeRefused {
		c.logf("DNS error (%d: %s), query id:%d", code, ErrorText(code), m.Id)
		return 0, false
	}
	if len(m.Question) != 1 {
		c.logf("invalid number of questions in DNS response")
		return 0, false
	}
	rq := m.Question[0]
	if rq.Qclass != dns.ClassINET {
		c.logf("unknown query class %d in DNS response", rq.Qclass)
		return 0, false
	}
	if rq.Qtype != qt || !strings.EqualFold(rq.Name, q.Question[0].Name) {
		c.logf("unexpected response for %s", lower(PresentationToRaw(rq.Name)))
		return 0, false
	}
	if code == RcodeOK && len(m.Answer) == 0 {
		code = RcodeNXDomain
	}
	if code != RcodeOK {
		return code, true
	}
	for _, rr := range m.Answer {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			c.logf("unexpected RR class %d", h.Class)
			return 0, false
		}
		switch h.Rrtype {
		case dns.TypePTR:
			if qt == dns.TypePTR {
				// The first PTR record, whatever its owner: a CNAME
				// before it (RFC 2317 classless delegation) is passed.
				return RcodeOK, true
			}
			c.logf("unexpected RR type %d", h.Rrtype)
		case dns.TypeCNAME:
		case dns.TypeDNAME:
			if qt == dns.TypePTR {
				c.logf("unexpected RR type %d", h.Rrtype)
			}
		case dns.TypeA, dns.TypeAAAA:
			if qt == dns.TypePTR {
				c.logf("unexpected RR type %d", h.Rrtype)
				continue
			}
			if h.Rrtype != qt {
				c.logf("unexpected %s record in DNS response", dns.TypeToString[h.Rrtype])
				return 0, false
			}
		default:
			c.logf("unexpected RR type %d", h.Rrtype)
		}
	}
	if qt == dns.TypePTR {
		c.logf("no PTR type in DNS response")
		return 0, false
	}
	return RcodeOK, true
}

// headerFlags is the second 16-bit word of the DNS header.
func headerFlags(m *dns.Msg) int {
	f := m.Opcode<<11 | m.Rcode&0xf
	for _, b := range []struct {
		on  bool
		bit int
	}{{m.Response, 15}, {m.Authoritative, 10}, {m.Truncated, 9}, {m.RecursionDesired, 8},
		{m.RecursionAvailable, 7}, {m.Zero, 6}, {m.AuthenticatedData, 5}, {m.CheckingDisabled, 4}} {
		if b.on {
			f |= 1 << b.bit
		}
	}
	return f
}

func (c *Client) logf(format string, args ...any) {
	if c.Log != nil {
		errlog.Log(c.Log, errlog.Error, fmt.Sprintf(format, args...))
	}
}

// exchange sends q to server and waits for its answer until ctx ends (TCP
// when the answer is truncated).
func (c *Client) exchange(ctx context.Context, q *dns.Msg, server netip.AddrPort) (*dns.Msg, error) {
	q = q.Copy()
	q.Id = dns.Id()
	// ctx bounds the wait, not miekg/dns's default 2s.
	cl := &dns.Client{Net: "udp", UDPSize: 4096, Timeout: time.Hour}
	m, _, err := cl.ExchangeContext(ctx, q, server.String())
	if err == nil && m.Truncated {
		cl = &dns.Client{Net: "tcp", Timeout: time.Hour}
		m, _, err = cl.ExchangeContext(ctx, q, server.String())
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

func (c *Client) logIOError(err error, server netip.AddrPort) {
	c.logf("recv() failed %s while resolving, resolver: %s", errlog.SysErrText(err), server)
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
