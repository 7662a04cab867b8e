// Package admin tests mailgate's admin endpoint (mailgate-only, issue 13,
// docs/admin.md) with real IMAP sessions through mailgate to Dovecot: the
// counters of /metrics against what the scenario did, /sessions with a
// live relayed session, DELETE ending it (the client sees EOF), reloads,
// and POST /drain. nginx refuses admin_listen, so only mailgate runs.
package admin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

const (
	alicePass = "alice-s3cret"
	bobPass   = "bob-s3cret"
)

// session is one IMAP client connection through the proxy.
type session struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *session {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &session{t: t, c: c, br: bufio.NewReader(c)}
	if l := s.line(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q", l)
	}
	return s
}

func (s *session) line() string {
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	l, err := s.br.ReadString('\n')
	if err != nil {
		s.t.Fatalf("read: %q %v", l, err)
	}
	return l
}

// cmd sends "tag line" and returns the tagged reply.
func (s *session) cmd(tag, line string) string {
	s.t.Helper()
	fmt.Fprintf(s.c, "%s %s\r\n", tag, line)
	for {
		if l := s.line(); strings.HasPrefix(l, tag+" ") {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

// eof waits for the server to close: true when the read ends in EOF
// without more bytes.
func (s *session) eof() (bool, string) {
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	b, err := io.ReadAll(s.br)
	return err == nil && len(b) == 0, string(b) + fmt.Sprint(err)
}

func login(t *testing.T, addr, user, pass string) *session {
	t.Helper()
	s := dial(t, addr)
	if r := s.cmd("a", "LOGIN "+user+" "+pass); !strings.HasPrefix(r, "a OK") {
		t.Fatalf("LOGIN %s: %q", user, r)
	}
	return s
}

type adminClient struct {
	t    *testing.T
	base string
}

func (a *adminClient) do(method, path string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.base+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

type sessionInfo struct {
	ID        uint64 `json:"id"`
	Client    string `json:"client"`
	Server    string `json:"server"`
	Protocol  string `json:"protocol"`
	State     string `json:"state"`
	Login     string `json:"login"`
	Upstream  string `json:"upstream"`
	Start     time.Time
	BytesUp   int64 `json:"bytes_up"`
	BytesDown int64 `json:"bytes_down"`
}

func (a *adminClient) sessions() ([]sessionInfo, string) {
	a.t.Helper()
	code, body := a.do("GET", "/sessions")
	if code != 200 {
		a.t.Fatalf("GET /sessions: %d %s", code, body)
	}
	var ss []sessionInfo
	if err := json.Unmarshal([]byte(body), &ss); err != nil {
		a.t.Fatalf("GET /sessions: %v in %s", err, body)
	}
	return ss, body
}

// metrics scrapes /metrics into "name{labels}" → value.
func (a *adminClient) metrics() map[string]float64 {
	a.t.Helper()
	code, body := a.do("GET", "/metrics")
	if code != 200 {
		a.t.Fatalf("GET /metrics: %d", code)
	}
	m := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			m[l[:i]] = v
		}
	}
	return m
}

// waitMetric polls until name has want (counters settle when sessions
// end, just after the client sees EOF).
func (a *adminClient) waitMetric(name string, want float64) {
	a.t.Helper()
	var got float64
	for i := 0; i < 100; i++ {
		if got = a.metrics()[name]; got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.t.Errorf("%s = %v, want %v", name, got, want)
}

func TestAdmin(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": alicePass, "bob": bobPass})
	dc.Deliver("alice", "Subject: hello\n\nfirst message body\n")
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: alicePass, Upstream: dc.IMAPAddr},
		"bob":   {Password: bobPass, Upstream: dc.IMAPAddr},
	}})
	p := harness.StartMailgate(t, harness.Config{
		Main: "admin_listen 127.0.0.1:{{port admin}};",
		Vars: map[string]string{"auth": as.URL()},
		Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port imap}}; protocol imap; }`})
	addr := p.Addr("imap")
	a := &adminClient{t: t, base: "http://" + p.Addr("admin")}
	// lb is the label set as the text format writes it: sorted by name.
	lb := func(extra string) string {
		ls := []string{`protocol="imap"`, `server="` + addr + `"`}
		if extra != "" {
			ls = append(ls, extra)
		}
		sort.Strings(ls)
		return "{" + strings.Join(ls, ",") + "}"
	}

	// Three logins that end with LOGOUT (Dovecot closes), one refused.
	for i := 0; i < 3; i++ {
		s := login(t, addr, "alice", alicePass)
		if r := s.cmd("b", "SELECT INBOX"); !strings.HasPrefix(r, "b OK") {
			t.Fatalf("SELECT: %q", r)
		}
		s.cmd("c", "LOGOUT")
		if ok, got := s.eof(); !ok {
			t.Fatalf("after LOGOUT: %q", got)
		}
	}
	s := dial(t, addr)
	if r := s.cmd("a", "LOGIN alice wrong-password"); !strings.HasPrefix(r, "a NO") {
		t.Fatalf("wrong password: %q", r)
	}
	s.eof()

	a.waitMetric("mailgate_connections_active"+lb(""), 0)
	m := a.metrics()
	for name, want := range map[string]float64{
		"mailgate_connections_accepted_total" + lb(""):                   4,
		"mailgate_logins_total" + lb(`outcome="ok"`):                     3,
		"mailgate_logins_total" + lb(`outcome="invalid"`):                1,
		"mailgate_auth_http_duration_seconds_count" + lb(""):             4,
		"mailgate_upstream_connect_duration_seconds_count" + lb(""):      3,
		"mailgate_upstream_login_duration_seconds_count" + lb(""):        3,
		"mailgate_sessions_ended_total" + lb(`reason="upstream_closed"`): 3,
		"mailgate_sessions_ended_total" + lb(`reason="error"`):           1,
		"mailgate_panics_recovered_total":                                0,
		`mailgate_config_reloads_total{result="ok"}`:                     0,
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, dir := range []string{"up", "down"} {
		if got := m["mailgate_relayed_bytes_total"+lb(`direction="`+dir+`"`)]; got <= 0 {
			t.Errorf("relayed bytes %s = %v, want > 0", dir, got)
		}
	}
	if m["mailgate_relayed_bytes_total"+lb(`direction="down"`)] <= m["mailgate_relayed_bytes_total"+lb(`direction="up"`)] {
		t.Errorf("SELECT and LOGOUT replies: more bytes down than up expected: %v", m)
	}
	if c := m["mailgate_auth_http_duration_seconds_sum"+lb("")]; c <= 0 || c > 10 {
		t.Errorf("auth_http time %v s", c)
	}

	// A live relayed session is listed, with its bytes, and DELETE ends it.
	live := login(t, addr, "alice", alicePass)
	if r := live.cmd("b", "SELECT INBOX"); !strings.HasPrefix(r, "b OK") {
		t.Fatalf("SELECT: %q", r)
	}
	// The relay counts a write once it returned: the client may have
	// read the bytes a moment before.
	ss, raw := a.sessions()
	for i := 0; i < 100 && (len(ss) != 1 || ss[0].BytesDown <= ss[0].BytesUp); i++ {
		time.Sleep(10 * time.Millisecond)
		ss, raw = a.sessions()
	}
	if strings.Contains(raw, alicePass) {
		t.Errorf("the password is in /sessions: %s", raw)
	}
	if len(ss) != 1 {
		t.Fatalf("sessions: %s", raw)
	}
	si := ss[0]
	if si.Login != "alice" || si.State != "relay" || si.Protocol != "imap" || si.Server != addr ||
		si.Upstream != dc.IMAPAddr || si.BytesUp <= 0 || si.BytesDown <= si.BytesUp ||
		si.Client != live.c.LocalAddr().String() {
		t.Errorf("live session: %s", raw)
	}
	// The live session's bytes are in the relayed bytes already.
	lm := a.metrics()
	for _, d := range []struct {
		dir  string
		live int64
	}{{"up", si.BytesUp}, {"down", si.BytesDown}} {
		name := "mailgate_relayed_bytes_total" + lb(`direction="`+d.dir+`"`)
		if got, want := lm[name], m[name]+float64(d.live); got != want {
			t.Errorf("%s with a live session = %v, want %v (ended) + %d (live)", name, got, m[name], d.live)
		}
	}
	if code, body := a.do("DELETE", "/sessions/"+strconv.FormatUint(si.ID, 10)); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if ok, got := live.eof(); !ok {
		t.Errorf("after DELETE the client got %q, want EOF", got)
	}
	a.waitMetric("mailgate_sessions_ended_total"+lb(`reason="admin"`), 1)
	if ss, raw := a.sessions(); len(ss) != 0 {
		t.Errorf("ended session still listed: %s", raw)
	}
	if code, _ := a.do("DELETE", "/sessions/"+strconv.FormatUint(si.ID, 10)); code != 404 {
		t.Errorf("DELETE of an ended session: %d, want 404", code)
	}

	// A session of the generation a reload retired stays listed, and
	// DELETE ?login= ends it with the new generation's.
	bob1 := login(t, addr, "bob", bobPass)
	hup(t, p)
	a.waitMetric(`mailgate_config_reloads_total{result="ok"}`, 1)
	bob2 := login(t, addr, "bob", bobPass)
	alice := login(t, addr, "alice", alicePass)
	if ss, raw := a.sessions(); len(ss) != 3 {
		t.Errorf("sessions across a reload: %s", raw)
	}
	if code, body := a.do("DELETE", "/sessions?login=bob"); code != 200 || !strings.Contains(body, `"ended": 2`) {
		t.Errorf("DELETE ?login=bob: %d %s", code, body)
	}
	for _, s := range []*session{bob1, bob2} {
		if ok, got := s.eof(); !ok {
			t.Errorf("bob after DELETE: %q", got)
		}
	}
	if r := alice.cmd("d", "NOOP"); !strings.HasPrefix(r, "d OK") {
		t.Errorf("alice's session was hit too: %q", r)
	}

	// A reload that fails is counted and changes nothing.
	conf := p.Prefix + "nginx.conf"
	good, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(append([]byte(nil), good...), "bogus_directive on;\n"...), 0o644) //nolint:errcheck
	hup(t, p)
	a.waitMetric(`mailgate_config_reloads_total{result="failed"}`, 1)
	os.WriteFile(conf, good, 0o644) //nolint:errcheck

	// POST /drain: no new connections, the live session goes on.
	code, body := a.do("POST", "/drain")
	if code != 200 || !strings.Contains(body, `"sessions": 1`) {
		t.Errorf("POST /drain: %d %s", code, body)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("a connection was accepted after /drain")
	}
	if r := alice.cmd("e", "NOOP"); !strings.HasPrefix(r, "e OK") {
		t.Errorf("the live session after /drain: %q", r)
	}
	alice.cmd("f", "LOGOUT")
	alice.eof()
	a.waitMetric("mailgate_connections_active"+lb(""), 0)
	m = a.metrics()
	if got := m["mailgate_connections_accepted_total"+lb("")]; got != 8 {
		t.Errorf("accepted %v, want 8", got)
	}
	if got := m["mailgate_sessions_ended_total"+lb(`reason="admin"`)]; got != 3 {
		t.Errorf("ended by admin %v, want 3", got)
	}
	if strings.Contains(p.ErrorLog(), alicePass) || strings.Contains(p.ErrorLog(), bobPass) {
		t.Error("a password in error.log")
	}
}

// hup sends SIGHUP to mailgate (pid from its pid file).
func hup(t *testing.T, p *harness.Proxy) {
	t.Helper()
	b, err := os.ReadFile(p.Prefix + "nginx.pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// nginx 1.22.1 refuses the directive: the suite cannot run against it.
func TestNginxRefuses(t *testing.T) {
	_, err := harness.TryStart(t, harness.Nginx, harness.Config{
		Main: "admin_listen 127.0.0.1:{{port admin}};",
		Mail: `server { listen 127.0.0.1:{{port imap}}; protocol imap; auth_http 127.0.0.1:9/auth; }`})
	if err == nil || !strings.Contains(err.Error(), `unknown directive "admin_listen"`) {
		t.Errorf("nginx with admin_listen: %v", err)
	}
}
