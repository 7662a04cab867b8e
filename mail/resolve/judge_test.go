package resolve

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"mailgate/confparse"
)

func question(name string, qt uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qt)
	q.RecursionDesired = true
	return q
}

func reply(q *dns.Msg, rcode int, rrs ...string) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	for _, z := range rrs {
		rr, err := dns.NewRR(z)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	return m
}

// judge follows ngx_resolver_process_response, _process_ptr and
// _process_a: which answers end a question, which are logged and ignored.
func TestJudge(t *testing.T) {
	const arpa = "2.0.0.127.in-addr.arpa."
	ptrQ := question(arpa, dns.TypePTR)
	aQ := question("h.example.net", dns.TypeA)
	for _, tc := range []struct {
		name   string
		q      *dns.Msg
		m      func() *dns.Msg
		code   int
		ok     bool
		logged string
	}{
		{name: "PTR", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, 0, arpa+" 60 IN PTR h.example.net.") }, ok: true},
		{name: "CNAME then PTR (RFC 2317)", q: ptrQ, m: func() *dns.Msg {
			return reply(ptrQ, 0, arpa+" 60 IN CNAME 2.0/25.0.0.127.in-addr.arpa.", "2.0/25.0.0.127.in-addr.arpa. 60 IN PTR h.example.net.")
		}, ok: true},
		{name: "CNAME only", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, 0, arpa+" 60 IN CNAME x.example.net.") },
			logged: "no PTR type in DNS response"},
		{name: "other type before PTR", q: ptrQ, m: func() *dns.Msg {
			return reply(ptrQ, 0, arpa+" 60 IN TXT \"x\"", arpa+" 60 IN PTR h.example.net.")
		}, ok: true, logged: "unexpected RR type 16"},
		{name: "DNAME in a PTR answer", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, 0, "0.127.in-addr.arpa. 60 IN DNAME x.example.net.") },
			logged: "unexpected RR type 39\nno PTR type in DNS response"},
		{name: "class CH", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, 0, arpa+" 60 CH PTR h.example.net.") },
			logged: "unexpected RR class 3"},
		{name: "empty answer", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, 0) }, code: RcodeNXDomain, ok: true},
		{name: "SERVFAIL", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, dns.RcodeServerFailure) }, code: RcodeServFail, ok: true},
		{name: "NOTIMP", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, dns.RcodeNotImplemented) }, code: RcodeNotImp, ok: true},
		{name: "REFUSED", q: ptrQ, m: func() *dns.Msg { return reply(ptrQ, dns.RcodeRefused) }, code: RcodeRefused, ok: true},
		{name: "FORMERR of a PTR", q: ptrQ, m: func() *dns.Msg { m := reply(ptrQ, dns.RcodeFormatError); m.Id = 7; return m },
			logged: "DNS error (1: Format error), query id:7"},
		{name: "FORMERR of a name", q: aQ, m: func() *dns.Msg { m := reply(aQ, dns.RcodeFormatError); m.Id = 7; return m },
			logged: `DNS error (1: Format error), query id:7, name:"h.example.net"`},
		{name: "YXDOMAIN", q: ptrQ, m: func() *dns.Msg { m := reply(ptrQ, dns.RcodeYXDomain); m.Id = 9; return m },
			logged: "DNS error (6: Unknown error), query id:9"},
		{name: "AD bit", q: ptrQ, m: func() *dns.Msg {
			m := reply(ptrQ, 0, arpa+" 60 IN PTR h.example.net.")
			m.Id, m.AuthenticatedData = 258, true
			return m
		}, logged: "invalid UDP DNS response 258 fl:81A0"},
		{name: "not a response", q: ptrQ, m: func() *dns.Msg { m := reply(ptrQ, 0); m.Response = false; m.Id = 1; return m },
			logged: "invalid UDP DNS response 1 fl:0180"},
		{name: "other question", q: ptrQ, m: func() *dns.Msg { return reply(question("3.0.0.127.in-addr.arpa.", dns.TypePTR), 0) },
			logged: "unexpected response for 3.0.0.127.in-addr.arpa"},
		{name: "A", q: aQ, m: func() *dns.Msg { return reply(aQ, 0, "h.example.net. 60 IN A 192.0.2.1") }, ok: true},
		{name: "AAAA in an A answer", q: aQ, m: func() *dns.Msg { return reply(aQ, 0, "h.example.net. 60 IN AAAA 2001:db8::1") },
			logged: "unexpected AAAA record in DNS response"},
		{name: "CNAME only for a name", q: aQ, m: func() *dns.Msg { return reply(aQ, 0, "h.example.net. 60 IN CNAME t.example.net.") }, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := logged()
			c := &Client{Conf: &confparse.Resolver{}, Log: log}
			code, ok := c.judge(tc.m(), tc.q)
			if code != tc.code || ok != tc.ok {
				t.Errorf("judge = %d, %v; want %d, %v", code, ok, tc.code, tc.ok)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if _, msg, found := strings.Cut(l, ": "); found {
					got = append(got, msg)
				}
			}
			if strings.Join(got, "\n") != tc.logged {
				t.Errorf("logged %q, want %q", strings.Join(got, "\n"), tc.logged)
			}
		})
	}
}

// FuzzJudge: any response a server may send is judged without a panic,
// and a PTR answer judged OK holds a PTR record.
func FuzzJudge(f *testing.F) {
	q := question("2.0.0.127.in-addr.arpa.", dns.TypePTR)
	for _, m := range []*dns.Msg{
		reply(q, 0, "2.0.0.127.in-addr.arpa. 60 IN PTR h.example.net."),
		reply(q, 0, "2.0.0.127.in-addr.arpa. 60 IN CNAME 2.0/25.0.0.127.in-addr.arpa.", "2.0/25.0.0.127.in-addr.arpa. 60 IN PTR h.example.net."),
		reply(q, dns.RcodeServerFailure),
		reply(q, 0, "2.0.0.127.in-addr.arpa. 60 CH TXT \"x\""),
	} {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		c := &Client{Conf: &confparse.Resolver{}}
		code, ok := c.judge(m, q)
		if ok && code == RcodeOK {
			found := false
			for _, rr := range m.Answer {
				if _, is := rr.(*dns.PTR); is {
					found = true
				}
			}
			if !found {
				t.Fatalf("judged OK without a PTR: %v", m)
			}
		}
		c.judge(m, question("h.example.net", dns.TypeA))
	})
}
