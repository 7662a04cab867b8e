// Package dnstest is a tiny scriptable DNS server on loopback for resolver
// tests (mailgate's unit tests and the nginx compat tests): PTR and A/AAAA
// answers, error codes, silence (timeouts), raw records.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Answer is the scripted reply to one question (name and type).
type Answer struct {
	Rcode int      // dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeServerFailure...
	RRs   []string // zone-file records, e.g. "1.0.0.127.in-addr.arpa. 60 IN PTR a.example.net."
	Drop  bool     // never answer (the client times out)
	Delay time.Duration
}

// Server answers from its table; unknown questions get NXDOMAIN.
type Server struct {
	Addr string // "127.0.0.1:PORT"

	mu      sync.Mutex
	answers map[string]Answer
	queries []string
	srv     *dns.Server
	tcp     *dns.Server
}

func key(name string, qtype uint16) string {
	return strings.ToLower(dns.Fqdn(name)) + "/" + dns.TypeToString[qtype]
}

// Start listens on addr ("127.0.0.1:0" for any port) over UDP and TCP.
func Start(addr string) (*Server, error) {
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// With port 0 the UDP port may be taken over TCP: try a few.
	for try := 0; try < 20; try++ {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if !strings.HasSuffix(addr, ":0") {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: pc.LocalAddr().String(), answers: map[string]Answer{}}
	s.srv = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: ln, Handler: s}
	started := make(chan struct{}, 2)
	s.srv.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.srv.ActivateAndServe() //nolint:errcheck
	go s.tcp.ActivateAndServe() //nolint:errcheck
	<-started
	<-started
	return s, nil
}

// Close stops the server.
func (s *Server) Close() {
	s.srv.Shutdown() //nolint:errcheck
	s.tcp.Shutdown() //nolint:errcheck
}

// Set scripts the answer to (name, qtype).
func (s *Server) Set(name string, qtype uint16, a Answer) {
	s.mu.Lock()
	s.answers[key(name, qtype)] = a
	s.mu.Unlock()
}

// SetPTR scripts the PTR answer for an IP address.
func (s *Server) SetPTR(ip string, a Answer) {
	rev, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	s.Set(rev, dns.TypePTR, a)
}

// Reset forgets every scripted answer and recorded query.
func (s *Server) Reset() {
	s.mu.Lock()
	s.answers = map[string]Answer{}
	s.queries = nil
	s.mu.Unlock()
}

// Queries returns the questions received, as "name/TYPE", in order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	k := key(q.Name, q.Qtype)
	s.mu.Lock()
	s.queries = append(s.queries, k)
	a, ok := s.answers[k]
	s.mu.Unlock()
	if !ok {
		a = Answer{Rcode: dns.RcodeNameError}
	}
	if a.Drop {
		return
	}
	if a.Delay > 0 {
		time.Sleep(a.Delay)
	}
	m := new(dns.Msg)
	m.SetRcode(r, a.Rcode)
	m.RecursionAvailable = true
	for _, z := range a.RRs {
		rr, err := dns.NewRR(z)
		if err == nil && rr != nil {
			m.Answer = append(m.Answer, rr)
		}
	}
	w.WriteMsg(m) //nolint:errcheck
}
