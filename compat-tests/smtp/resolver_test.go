package smtp

// Several resolver addresses, some of them bad: nginx and mailgate each run
// a series of sessions from different client addresses (so that no answer
// comes from the cache) against every order of a good and a bad DNS server,
// and the results are compared session by session: the Client-Host sent to
// auth_http, the client's bytes, which DNS server was asked what, and the
// whole error.log (the main-level lines of the resolver included).

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
	"mailgate/mail/smtp/dnstest"
)

// resolverClients are the client addresses of the sessions of one run.
var resolverClients = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

// goodDNS answers the PTR of every client address and the A record of
// its name.
func goodDNS(s *dnstest.Server) {
	for _, ip := range resolverClients {
		name := "c" + ip[strings.LastIndexByte(ip, '.')+1:] + ".example.net."
		s.SetPTR(ip, dnstest.Answer{RRs: []string{reverse(ip) + " 60 IN PTR " + name}})
		s.Set(name, dns.TypeA, dnstest.Answer{RRs: []string{name + " 60 IN A " + ip}})
	}
}

func reverse(ip string) string {
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return r
}

// badDNS answers every question it is scripted for with a.
func badDNS(a dnstest.Answer) func(*dnstest.Server) {
	return func(s *dnstest.Server) {
		for _, ip := range resolverClients {
			name := "c" + ip[strings.LastIndexByte(ip, '.')+1:] + ".example.net."
			s.SetPTR(ip, a)
			s.Set(name, dns.TypeA, a)
		}
	}
}

type dnsKind struct {
	name  string
	setup func(*dnstest.Server) // nil: a port where nothing listens
}

func TestResolverOrders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx and mailgate for a minute")
	}
	as := harness.StartAuth(t, authserver.Script{
		Handler: func(*authserver.Request) *authserver.Behavior {
			return &authserver.Behavior{Status: "Invalid login or password"}
		},
	})
	kinds := []dnsKind{
		{"servfail", badDNS(dnstest.Answer{Rcode: dns.RcodeServerFailure})},
		{"refused", badDNS(dnstest.Answer{Rcode: dns.RcodeRefused})},
		{"formerr", badDNS(dnstest.Answer{Rcode: dns.RcodeFormatError})},
		{"silent", badDNS(dnstest.Answer{Drop: true})},
		{"silent-2s", badDNS(dnstest.Answer{Drop: true})}, // resolver_timeout under the 5s resend
		{"closed", nil},
	}
	good := startDNS(t, goodDNS)
	for _, k := range kinds {
		var bad *dnstest.Server
		badAddr := closedUDPPort(t)
		if k.setup != nil {
			bad = startDNS(t, k.setup)
			badAddr = bad.Addr
		}
		for _, order := range []string{"bad,good", "good,bad"} {
			addrs := badAddr + " " + good.Addr
			if order == "good,bad" {
				addrs = good.Addr + " " + badAddr
			}
			// A resolver_timeout past nginx's 5s resend lets a query that
			// went to a silent server reach the other one.
			timeout := "2s"
			if k.setup == nil || k.name == "silent" || k.name == "formerr" {
				timeout = "7s"
			}
			t.Run(k.name+"/"+order, func(t *testing.T) {
				conf := harness.Config{
					Vars: map[string]string{"auth": as.URL()},
					Mail: `
    auth_http {{auth}};
    server_name mx.example.test;
    error_log {{prefix}}server.log info;
    server {
        listen 127.0.0.1:{{port smtp}};
        protocol smtp;
        smtp_auth plain;
        resolver ` + addrs + ` ipv6=off;
        resolver_timeout ` + timeout + `;
    }`,
				}
				var runs []*resolverRun
				for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
					good.Reset()
					goodDNS(good)
					if bad != nil {
						bad.Reset()
						k.setup(bad)
					}
					runs = append(runs, runResolverSessions(t, impl, conf, as, good, bad))
				}
				a, b := runs[0].String(), runs[1].String()
				if a != b {
					t.Errorf("nginx and mailgate differ:\n--- nginx\n%s--- mailgate\n%s", a, b)
				} else if testing.Verbose() {
					t.Logf("identical:\n%s", a)
				}
			})
		}
	}
}

func startDNS(t *testing.T, setup func(*dnstest.Server)) *dnstest.Server {
	s, err := dnstest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	setup(s)
	return s
}

func closedUDPPort(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// resolverRun is what one implementation did in the sessions of one run.
type resolverRun struct {
	sessions []string // per session: Client-Host and the client's bytes
	queries  string   // per DNS server, the questions in order
	mainLog  string   // main-level error.log: the resolver's own lines
	srvLog   string   // the server's error_log: the sessions' lines
}

func (r *resolverRun) String() string {
	return strings.Join(r.sessions, "") + r.queries + "main error.log:\n" + r.mainLog + "server error_log:\n" + r.srvLog
}

func runResolverSessions(t *testing.T, impl harness.Impl, conf harness.Config, as *authserver.Server, good, bad *dnstest.Server) *resolverRun {
	t.Helper()
	p := harness.Start(t, impl, conf)
	run := &resolverRun{}
	for i, ip := range resolverClients {
		as.Reset()
		got := resolverSession(t, p.Addr("smtp"), ip)
		host := "-"
		if reqs := as.Parsed(); len(reqs) > 0 {
			host = reqs[0].Get("Client-Host")
		}
		run.sessions = append(run.sessions, fmt.Sprintf("session %d from %s: Client-Host %s\n%s", i+1, ip, host, got))
	}
	p.Stop()
	run.queries = "good: " + strings.Join(good.Queries(), " ") + "\n"
	if bad != nil {
		run.queries += "bad: " + strings.Join(bad.Queries(), " ") + "\n"
	}
	port := strconv.Itoa(p.Ports["smtp"])
	norm := func(s string) string { return strings.ReplaceAll(s, "127.0.0.1:"+port, "127.0.0.1:SMTP") }
	run.mainLog = norm(logLines(p.ErrorLog(), true))
	b, _ := os.ReadFile(p.Prefix + "server.log")
	run.srvLog = norm(logLines(string(b), false))
	return run
}

var (
	logPrefix  = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: `)
	clientPort = regexp.MustCompile(`client (127\.0\.0\.\d+):\d+ connected`)
	queryID    = regexp.MustCompile(`query id:\d+`) // random
)

// logLines keeps error.log lines without their time and pid; of the main
// log only the [error] and worse ones (the startup notices differ by
// design).
func logLines(log string, mainLog bool) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(log, "\n") {
		if l == "" {
			continue
		}
		l = logPrefix.ReplaceAllString(l, "$1 ")
		if mainLog && !strings.HasPrefix(l, "[error]") && !strings.HasPrefix(l, "[crit]") && !strings.HasPrefix(l, "[alert]") {
			continue
		}
		l = clientPort.ReplaceAllString(l, "client $1:PORT connected")
		b.WriteString(queryID.ReplaceAllString(l, "query id:N"))
	}
	return b.String()
}

// resolverSession connects from ip, waits for the greeting, tries one
// AUTH PLAIN (auth_http says no) and returns what the client received.
func resolverSession(t *testing.T, addr, ip string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(c)
	var b strings.Builder
	line := func() bool {
		l, err := r.ReadString('\n')
		b.WriteString(strconv.Quote(l) + "\n")
		return err == nil
	}
	if !line() {
		return b.String()
	}
	fmt.Fprintf(c, "AUTH PLAIN %s\r\n", b64("\x00nobody\x00pw"))
	if !line() {
		return b.String()
	}
	fmt.Fprintf(c, "QUIT\r\n")
	line()
	return b.String()
}

// A PTR reached through a CNAME (RFC 2317 classless delegation): with the
// PTR in the same answer nginx takes it; with the CNAME alone it logs "no
// PTR type in DNS response", asks nothing more, and the lookup times out.
func TestResolverPTRThroughCNAME(t *testing.T) {
	as := harness.StartAuth(t, authserver.Script{
		Handler: func(*authserver.Request) *authserver.Behavior {
			return &authserver.Behavior{Status: "Invalid login or password"}
		},
	})
	delegated := func(withPTR bool) func(*dnstest.Server) {
		return func(s *dnstest.Server) {
			goodDNS(s)
			for _, ip := range resolverClients {
				last := ip[strings.LastIndexByte(ip, '.')+1:]
				target := last + ".0/25.0.0.127.in-addr.arpa."
				rrs := []string{reverse(ip) + " 60 IN CNAME " + target}
				ptr := target + " 60 IN PTR c" + last + ".example.net."
				if withPTR {
					rrs = append(rrs, ptr)
				}
				s.SetPTR(ip, dnstest.Answer{RRs: rrs})
				s.Set(target, dns.TypePTR, dnstest.Answer{RRs: []string{ptr}})
			}
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(*dnstest.Server)
	}{
		{"cname and ptr", delegated(true)},
		{"cname only", delegated(false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDNS(t, tc.setup)
			conf := harness.Config{
				Vars: map[string]string{"auth": as.URL()},
				Mail: `
    auth_http {{auth}};
    server_name mx.example.test;
    error_log {{prefix}}server.log info;
    server {
        listen 127.0.0.1:{{port smtp}};
        protocol smtp;
        smtp_auth plain;
        resolver ` + d.Addr + ` ipv6=off;
        resolver_timeout 1s;
    }`,
			}
			var runs []*resolverRun
			for _, impl := range []harness.Impl{harness.Nginx, harness.Mailgate} {
				d.Reset()
				tc.setup(d)
				runs = append(runs, runResolverSessions(t, impl, conf, as, d, nil))
			}
			a, b := runs[0].String(), runs[1].String()
			if a != b {
				t.Errorf("nginx and mailgate differ:\n--- nginx\n%s--- mailgate\n%s", a, b)
			} else if testing.Verbose() {
				t.Logf("identical:\n%s", a)
			}
		})
	}
}
