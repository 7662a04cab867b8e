// Package authscale tests mailgate's auth_http extensions (issue 15):
// the login cache in memory and in Redis, failover to auth_http_backup,
// and two mailgate instances behind HAProxy sharing one Redis. nginx
// refuses these directives (unknown directive), so only mailgate runs;
// what is compared is what the auth server, Dovecot and error.log see.
package authscale

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// imapLogin logs in through the proxy at addr and returns the tagged
// LOGIN reply (without CRLF).
func imapLogin(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	br := bufio.NewReader(c)
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q %v", l, err)
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("LOGIN: %q %v", l, err)
		}
		if strings.HasPrefix(l, "a ") {
			fmt.Fprintf(c, "b LOGOUT\r\n")
			br.ReadString('\n') //nolint:errcheck
			return strings.TrimRight(l, "\r\n")
		}
	}
}

func okLogin(t *testing.T, reply string) {
	t.Helper()
	if !strings.HasPrefix(reply, "a OK") {
		t.Fatalf("login refused: %q", reply)
	}
}

// noPassword fails if a password reached any log line.
func noPassword(t *testing.T, log string, passwords ...string) {
	t.Helper()
	for _, p := range passwords {
		if strings.Contains(log, p) {
			t.Errorf("password %q in error.log:\n%s", p, log)
		}
	}
}

func setup(t *testing.T) (*harness.Dovecot, *authserver.Server) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "s3cret-pw"})
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "s3cret-pw", Upstream: dc.IMAPAddr},
	}})
	return dc, as
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if f() {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Errorf("timed out waiting for %s", what)
}

// The auth server sees one request for repeated logins within the TTL and
// a new one after it; a wrong password is never answered from the entry
// of the right one.
func TestLoginCacheMemory(t *testing.T) {
	_, as := setup(t)
	p := harness.StartMailgate(t, harness.Config{LogLevel: "debug", Vars: map[string]string{"auth": as.URL()}, Mail: `
    auth_http {{auth}};
    auth_http_cache memory:1m;
    auth_http_cache_valid 2s;
    server { listen 127.0.0.1:{{port imap}}; protocol imap; }`})
	addr := p.Addr("imap")
	steps := []struct {
		pass     string
		ok       bool
		wantReqs int
		sleep    time.Duration
	}{
		{"s3cret-pw", true, 1, 0},
		{"s3cret-pw", true, 1, 0}, // hit
		{"wrong-pw", false, 2, 0}, // another password: asked, refused
		{"wrong-pw", false, 3, 0}, // failures are not cached by default
		{"s3cret-pw", true, 3, 0}, // still a hit
		{"s3cret-pw", true, 4, 2200 * time.Millisecond},
	}
	for i, st := range steps {
		time.Sleep(st.sleep)
		reply := imapLogin(t, addr, "alice", st.pass)
		if strings.HasPrefix(reply, "a OK") != st.ok {
			t.Fatalf("step %d: %q", i, reply)
		}
		if n := len(as.Requests()); n != st.wantReqs {
			t.Fatalf("step %d: auth server saw %d requests, want %d", i, n, st.wantReqs)
		}
	}
	// every successful login reached Dovecot as alice
	log := p.ErrorLog()
	if n := strings.Count(log, "client logged in"); n != 4 {
		t.Errorf("%d logins in error.log, want 4:\n%s", n, log)
	}
	noPassword(t, log, "s3cret-pw", "wrong-pw")
}

// Redis goes down mid-test: logins still work through the auth server, and
// the failure is logged once, in nginx's style.
func TestLoginCacheRedisDown(t *testing.T) {
	dc, as := setup(t)
	rd := harness.StartRedis(t)
	p := harness.StartMailgate(t, harness.Config{LogLevel: "debug", Vars: map[string]string{"auth": as.URL(), "redis": rd.Addr}, Mail: `
    auth_http {{auth}};
    auth_http_cache redis://{{redis}};
    auth_http_cache_valid 1m;
    server { listen 127.0.0.1:{{port imap}}; protocol imap; }`})
	addr := p.Addr("imap")
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	if n := len(as.Requests()); n != 1 {
		t.Fatalf("%d auth requests, want 1 (second login from Redis)", n)
	}
	dump := rd.Command("KEYS *")
	if !strings.Contains(dump, "mailgate:auth:v1:") || strings.Contains(dump, "alice") {
		t.Errorf("redis keys: %q", dump)
	}
	for _, k := range regexp.MustCompile(`mailgate:auth:v1:[0-9a-f]+`).FindAllString(dump, -1) {
		if v := rd.Command("GET " + k); strings.Contains(v, "s3cret") || !strings.Contains(v, dc.IMAPAddr) {
			t.Errorf("redis value %q", v)
		}
	}

	rd.Stop()
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	if n := len(as.Requests()); n != 3 {
		t.Fatalf("%d auth requests with Redis down, want 3", n)
	}
	log := p.ErrorLog()
	re := regexp.MustCompile(`\[error\] \d+#\d+: \*\d+ auth_http_cache redis://` + regexp.QuoteMeta(rd.Addr) +
		` failed \(.*\), asking the auth http server while in http auth state, client: 127\.0\.0\.1, server: 127\.0\.0\.1:\d+, login: "alice"`)
	if len(re.FindAllString(log, -1)) != 1 {
		t.Errorf("want one cache failure line like %s in:\n%s", re, log)
	}

	rd.Start()
	time.Sleep(1200 * time.Millisecond) // the client skips Redis for 1s after a failure
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	if n := len(as.Requests()); n != 4 {
		t.Fatalf("%d auth requests after Redis came back, want 4", n)
	}
	waitFor(t, "recovery line", func() bool { return strings.Contains(p.ErrorLog(), "works again") })
	noPassword(t, p.ErrorLog(), "s3cret-pw")
}

// The primary auth server refuses connections: the backup answers, the
// failover is logged with the session's context, and the next login
// skips the primary.
func TestFailover(t *testing.T) {
	_, as := setup(t)
	dead, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := harness.StartMailgate(t, harness.Config{Vars: map[string]string{"auth": as.URL(), "dead": fmt.Sprint(dead)}, Mail: `
    auth_http 127.0.0.1:{{dead}}/auth;
    auth_http_backup {{auth}};
    auth_http_fail_timeout 30s;
    server { listen 127.0.0.1:{{port imap}}; protocol imap; }`})
	addr := p.Addr("imap")
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	okLogin(t, imapLogin(t, addr, "alice", "s3cret-pw"))
	if n := len(as.Requests()); n != 2 {
		t.Fatalf("backup saw %d requests", n)
	}
	log := p.ErrorLog()
	ctx := ` while in http auth state, client: 127\.0\.0\.1, server: 127\.0\.0\.1:\d+, login: "alice"`
	for _, re := range []string{
		`\[error\] \d+#\d+: \*\d+ recv\(\) failed \(111: Connection refused\)` + ctx,
		`\[warn\] \d+#\d+: \*\d+ auth http server 127\.0\.0\.1:` + fmt.Sprint(dead) + ` temporarily disabled, trying auth http server ` +
			regexp.QuoteMeta(strings.TrimSuffix(as.URL(), "/auth")) + ctx,
	} {
		if n := len(regexp.MustCompile(re).FindAllString(log, -1)); n != 1 {
			t.Errorf("%d lines like %s (want 1, the second login skips the primary) in:\n%s", n, re, log)
		}
	}
}

// docs/scale-out.md: HAProxy sends PROXY v2 to two mailgate instances
// that share one Redis and one auth_http_cache_secret. A login through
// either instance fills the cache for both.
func TestScaleOutHAProxy(t *testing.T) {
	_, as := setup(t)
	m1, m2, front := scaleOut(t, as, "auth_http_cache_valid 1m;")

	for i := 0; i < 4; i++ {
		okLogin(t, imapLogin(t, front, "alice", "s3cret-pw"))
	}
	if n := len(as.Requests()); n != 1 {
		t.Errorf("auth server saw %d requests for 4 logins through 2 instances, want 1", n)
	}
	for i, m := range []*harness.Proxy{m1, m2} {
		var log string
		waitFor(t, "logins", func() bool { log = m.ErrorLog(); return strings.Count(log, "client logged in") == 2 })
		if n := strings.Count(log, "client logged in"); n != 2 {
			t.Errorf("instance %d: %d logins (round robin: want 2):\n%s", i+1, n, log)
		}
	}
}

// startHAProxy runs haproxy in the foreground: a TCP frontend on a free
// port, round robin to the backends with send-proxy-v2.
func startHAProxy(t *testing.T, backends ...string) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy not found (apt-get install haproxy, or run compat-tests/test-all.sh)")
	}
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend imap
    bind 127.0.0.1:%d
    default_backend mailgate
backend mailgate
    balance roundrobin
`, port)
	for i, be := range backends {
		fmt.Fprintf(&b, "    server mg%d %s send-proxy-v2\n", i+1, be)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	out, _ := os.Create(filepath.Join(dir, "haproxy.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 200; i++ {
		// a probe connection would count as a session; wait for the socket
		if listening(port) {
			return addr
		}
		time.Sleep(25 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
	t.Fatalf("haproxy did not start:\n%s", log)
	return ""
}

// listening reads /proc/net/tcp for a LISTEN socket on port.
func listening(port int) bool {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X 00000000:0000 0A", port)
	return strings.Contains(string(data), want)
}

// auth_http_keepalive: N logins use one connection to the auth server, and
// each request is the one nginx sends for the same login with only the
// request line's version changed.
func TestKeepalive(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "s3cret-pw"})
	as := harness.StartAuth(t, authserver.Script{KeepAlive: true, Users: map[string]authserver.User{
		"alice": {Password: "s3cret-pw", Upstream: dc.IMAPAddr},
	}})
	mail := `
    auth_http {{auth}};
    auth_http_header X-Auth-Key "k 1";
    KEEPALIVE
    server { listen 127.0.0.1:{{port imap}}; protocol imap; }`
	vars := map[string]string{"auth": as.URL()}

	// nginx, for the reference bytes (one login)
	ng := harness.StartNginx(t, harness.Config{Vars: vars, Mail: strings.Replace(mail, "KEEPALIVE", "", 1)})
	okLogin(t, imapLogin(t, ng.Addr("imap"), "alice", "s3cret-pw"))
	ng.Stop()
	if as.Conns() != 1 || len(as.Requests()) != 1 {
		t.Fatalf("nginx: %d connections, %d requests", as.Conns(), len(as.Requests()))
	}
	nginxReq := string(as.Requests()[0])
	as.Reset()

	p := harness.StartMailgate(t, harness.Config{Vars: vars, Mail: strings.Replace(mail, "KEEPALIVE", "auth_http_keepalive 4 60s;", 1)})
	const n = 5
	for i := 0; i < n; i++ {
		okLogin(t, imapLogin(t, p.Addr("imap"), "alice", "s3cret-pw"))
	}
	if r := imapLogin(t, p.Addr("imap"), "alice", "wrong-pw"); !strings.HasPrefix(r, "a NO") {
		t.Fatalf("wrong password: %q", r)
	}
	if got := as.Conns() - 1; got != 1 {
		t.Errorf("%d connections to the auth server for %d logins, want 1", got, n+1)
	}
	reqs := as.Requests()
	if len(reqs) != n+1 {
		t.Fatalf("%d requests", len(reqs))
	}
	want := strings.Replace(nginxReq, "GET /auth HTTP/1.0\r\n", "GET /auth HTTP/1.1\r\n", 1)
	if want == nginxReq {
		t.Fatalf("nginx request line: %q", nginxReq)
	}
	for i, r := range reqs[:n] {
		if string(r) != want {
			t.Errorf("request %d:\n%q\nwant nginx's with HTTP/1.1:\n%q", i, r, want)
		}
	}
	noPassword(t, p.ErrorLog(), "s3cret-pw", "wrong-pw")
}

// auth_http_throttle: after two failures for a login within the minute,
// the next login is refused without asking the auth server, after the
// wait, with nginx's failure reply; the session stays open as after an
// Auth-Wait answer.
func TestThrottle(t *testing.T) {
	_, as := setup(t)
	p := harness.StartMailgate(t, harness.Config{LogLevel: "debug", Vars: map[string]string{"auth": as.URL()}, Mail: `
    auth_http {{auth}};
    auth_http_throttle login=2/m wait=1s;
    server { listen 127.0.0.1:{{port imap}}; protocol imap; }`})
	addr := p.Addr("imap")
	for i := 0; i < 2; i++ {
		if r := imapLogin(t, addr, "alice", "wrong-pw"); !strings.HasPrefix(r, "a NO") {
			t.Fatalf("wrong password %d: %q", i, r)
		}
	}
	start := time.Now()
	r := imapLogin(t, addr, "alice", "s3cret-pw")
	if r != "a NO Too many invalid authentication attempts, try again later" {
		t.Errorf("throttled reply %q", r)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("throttled reply after %v, want the 1s wait", el)
	}
	if n := len(as.Requests()); n != 2 {
		t.Errorf("auth server saw %d requests, want 2 (the throttled login is not asked)", n)
	}
	// another login is not affected
	if r := imapLogin(t, addr, "bob", "x"); !strings.HasPrefix(r, "a NO") || len(as.Requests()) != 3 {
		t.Errorf("bob: %q, %d requests", r, len(as.Requests()))
	}
	log := p.ErrorLog()
	if !strings.Contains(log, `client login failed: "Too many invalid authentication attempts, try again later"`) {
		t.Errorf("no failure line:\n%s", log)
	}
	noPassword(t, log, "s3cret-pw", "wrong-pw")
}

// TestThrottleAcrossInstances: two instances behind HAProxy count failed
// logins in the same Redis, so the failures seen by one throttle the next
// login on the other.
func TestThrottleAcrossInstances(t *testing.T) {
	_, as := setup(t)
	m1, m2, front := scaleOut(t, as, "auth_http_throttle login=2/m wait=1s;")

	// Round robin: one failure on each instance.
	for i := 0; i < 2; i++ {
		if r := imapLogin(t, front, "alice", "wrong-pw"); !strings.HasPrefix(r, "a NO") {
			t.Fatalf("wrong password %d: %q", i, r)
		}
	}
	for i, m := range []*harness.Proxy{m1, m2} {
		waitFor(t, "a failed login on each instance", func() bool { return strings.Contains(m.ErrorLog(), "client login failed") })
		if n := strings.Count(m.ErrorLog(), "client login failed"); n != 1 {
			t.Errorf("instance %d: %d failed logins, want 1 (round robin)", i+1, n)
		}
	}
	// The third login, on the first instance again, is refused from the
	// shared count: the auth server is not asked.
	if r := imapLogin(t, front, "alice", "s3cret-pw"); r != "a NO Too many invalid authentication attempts, try again later" {
		t.Errorf("throttled reply %q", r)
	}
	if n := len(as.Requests()); n != 2 {
		t.Errorf("auth server saw %d requests, want 2 (the throttled login is not asked)", n)
	}
	waitFor(t, "the throttled line", func() bool {
		return strings.Contains(m1.ErrorLog(), `client login failed: "Too many invalid authentication attempts, try again later"`)
	})
	for _, m := range []*harness.Proxy{m1, m2} {
		noPassword(t, m.ErrorLog(), "s3cret-pw", "wrong-pw")
	}
}

// scaleOut starts Redis, two mailgate instances sharing it (the cache with
// one secret, plus extra mail{} lines) and HAProxy in front of them with
// PROXY protocol v2; it returns both instances and HAProxy's address.
func scaleOut(t *testing.T, as *authserver.Server, extra string) (m1, m2 *harness.Proxy, front string) {
	t.Helper()
	rd := harness.StartRedis(t)
	conf := harness.Config{Vars: map[string]string{"auth": as.URL(), "redis": rd.Addr}, Mail: `
    auth_http {{auth}};
    auth_http_cache redis://{{redis}};
    auth_http_cache_secret "shared by every instance";
    ` + extra + `
    server {
        listen 127.0.0.1:{{port imap}} proxy_protocol;
        set_real_ip_from 127.0.0.1;
        protocol imap;
    }`}
	m1, m2 = harness.StartMailgate(t, conf), harness.StartMailgate(t, conf)
	return m1, m2, startHAProxy(t, m1.Addr("imap"), m2.Addr("imap"))
}
