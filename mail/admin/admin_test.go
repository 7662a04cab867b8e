package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailgate/mail"
	"mailgate/mail/admin"
	"mailgate/mail/imap"
	"mailgate/mail/mailtest"
)

const authOK = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"

// echoDial is an IMAP upstream that accepts the LOGIN with literals, then
// echoes lines until mailgate closes the connection.
func echoDial(ctx context.Context, _ netip.AddrPort, _ int) (net.Conn, error) {
	mine, theirs := net.Pipe()
	go func() {
		defer mine.Close()
		r := bufio.NewReader(mine)
		io.WriteString(mine, "* OK up\r\n")
		for _, reply := range []string{"+ go\r\n", "+ go\r\n", "a1 OK done\r\n"} {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			io.WriteString(mine, reply)
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(mine, l); err != nil {
				return
			}
		}
	}()
	return theirs, nil
}

type rig struct {
	t    *testing.T
	env  *mailtest.Env
	as   *mailtest.AuthServer
	m    *admin.Metrics
	reg  *mail.Registry
	http *httptest.Server
}

func newRig(t *testing.T, pprof bool) *rig {
	as := mailtest.StartAuthServer(t)
	cfg := mailtest.Config(t, "server { listen 127.0.0.1:143; protocol imap; auth_http "+as.URL()+"; }")
	m := admin.NewMetrics("9.9.9-test")
	reg := mail.NewRegistry()
	m.CountLive(reg) // as cmd/mailgate does
	env := mailtest.Start(t, cfg, mailtest.Options{
		Protocols:    map[string]mail.Protocol{"imap": imap.Protocol{}},
		DialUpstream: echoDial,
		Observer:     m,
		Registry:     reg,
	})
	hs := httptest.NewServer(admin.Handler(admin.Config{Metrics: m, Sessions: reg, Pprof: pprof}))
	t.Cleanup(hs.Close)
	return &rig{t: t, env: env, as: as, m: m, reg: reg, http: hs}
}

// login runs a session up to the relay (or the refusal) as user.
func (r *rig) login(user string, ok bool) *mailtest.Client {
	r.t.Helper()
	if ok {
		r.as.Script(nil, []byte(authOK))
	} else {
		r.as.Script(nil, []byte("HTTP/1.0 200 OK\r\nAuth-Status: Invalid login\r\n\r\n"))
	}
	c := r.env.Dial(r.t, mailtest.TCP, 0)
	c.ReadLine(5 * time.Second)
	c.Send("a1 LOGIN " + user + " secret\r\n")
	l := c.ReadLine(5 * time.Second)
	if ok && l != "a1 OK done\r\n" {
		r.t.Fatalf("login reply %q", l)
	}
	if !ok {
		c.ReadAll(5 * time.Second)
		<-c.Done()
	}
	return c
}

func (r *rig) do(method, path string) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.http.URL+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (r *rig) sessions() []mail.SessionInfo {
	r.t.Helper()
	code, body := r.do("GET", "/sessions")
	if code != 200 {
		r.t.Fatalf("GET /sessions: %d %s", code, body)
	}
	var ss []mail.SessionInfo
	if err := json.Unmarshal([]byte(body), &ss); err != nil {
		r.t.Fatalf("GET /sessions: %v in %s", err, body)
	}
	return ss
}

// metric returns the value of the sample whose line starts with name
// (name and labels as the text format writes them), or -1.
func metric(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func TestSessionsAndDelete(t *testing.T) {
	r := newRig(t, false)
	if ss := r.sessions(); len(ss) != 0 {
		t.Fatalf("sessions before any: %+v", ss)
	}
	a := r.login("alice", true)
	b1 := r.login("bob", true)
	b2 := r.login("bob", true)
	a.Send("x NOOP\r\n")
	a.ReadLine(5 * time.Second)

	_, raw := r.do("GET", "/sessions")
	if strings.Contains(raw, "secret") {
		t.Errorf("a password in /sessions: %s", raw)
	}
	// The relay counts a write once it returned: the client may have
	// read the bytes a moment before.
	var ss []mail.SessionInfo
	for i := 0; i < 100; i++ {
		if ss = r.sessions(); len(ss) == 3 && ss[0].BytesDown == 8 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ss) != 3 || ss[0].Login != "alice" || ss[1].Login != "bob" || ss[2].Login != "bob" {
		t.Fatalf("sessions %+v", ss)
	}
	if ss[0].BytesUp != 8 || ss[0].BytesDown != 8 || ss[0].State != "relay" {
		t.Errorf("alice's session %+v", ss[0])
	}
	for _, c := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"DELETE", "/sessions/abc", 400, "number"},
		{"DELETE", "/sessions/999999999", 404, "no such session"},
		{"DELETE", "/sessions", 400, "login=NAME"},
		{"DELETE", "/sessions?login=", 400, "login=NAME"},
		{"DELETE", "/sessions?login=carol", 200, `"ended": 0`},
		{"GET", "/debug/pprof/", 404, ""},
		{"PUT", "/sessions", 405, ""},
	} {
		code, body := r.do(c.method, c.path)
		if code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.path, code, body, c.code, c.body)
		}
	}

	code, body := r.do("DELETE", "/sessions/"+strconv.FormatUint(ss[0].ID, 10))
	if code != 200 || !strings.Contains(body, `"ended": 1`) {
		t.Errorf("DELETE alice: %d %s", code, body)
	}
	if rest := a.ReadAll(5 * time.Second); rest != "" {
		t.Errorf("alice got %q after DELETE, want EOF", rest)
	}
	<-a.Done()
	code, body = r.do("DELETE", "/sessions?login=bob")
	if code != 200 || !strings.Contains(body, `"ended": 2`) {
		t.Errorf("DELETE bob: %d %s", code, body)
	}
	for _, c := range []*mailtest.Client{b1, b2} {
		c.ReadAll(5 * time.Second)
		<-c.Done()
	}
	if ss := r.sessions(); len(ss) != 0 {
		t.Errorf("sessions left: %+v", ss)
	}
}

func TestMetrics(t *testing.T) {
	r := newRig(t, false)
	r.m.Reloaded(true)
	r.m.Reloaded(false)
	r.m.Reloaded(false)
	for range 2 {
		c := r.login("alice", true)
		c.Send("x NOOP\r\n")
		c.ReadLine(5 * time.Second)
		c.CloseWrite() // the client ends the session
		c.ReadAll(5 * time.Second)
		<-c.Done()
	}
	r.login("alice", false)
	live := r.login("bob", true)

	code, text := r.do("GET", "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	// The text format sorts label names.
	sp := `protocol="imap",server="127.0.0.1:143"`
	pr := `protocol="imap",`
	sv := `server="127.0.0.1:143"`
	for name, want := range map[string]float64{
		`mailgate_connections_accepted_total{` + sp + `}`:                                    4,
		`mailgate_connections_active{` + sp + `}`:                                            1,
		`mailgate_logins_total{outcome="ok",` + sp + `}`:                                     3,
		`mailgate_logins_total{outcome="invalid",` + sp + `}`:                                1,
		`mailgate_auth_http_duration_seconds_count{` + sp + `}`:                              4,
		`mailgate_upstream_connect_duration_seconds_count{` + sp + `}`:                       3,
		`mailgate_upstream_login_duration_seconds_count{` + sp + `}`:                         3,
		`mailgate_sessions_ended_total{` + pr + `reason="client_closed",` + sv + `}`:         2,
		`mailgate_sessions_ended_total{` + pr + `reason="error",` + sv + `}`:                 1,
		`mailgate_relayed_bytes_total{direction="up",` + sp + `}`:                            16,
		`mailgate_relayed_bytes_total{direction="down",` + sp + `}`:                          16,
		`mailgate_config_reloads_total{result="ok"}`:                                         1,
		`mailgate_config_reloads_total{result="failed"}`:                                     2,
		`mailgate_panics_recovered_total`:                                                    float64(mail.PanicsRecovered()),
		`mailgate_connections_refused_total{reason="worker_connections"}`:                    float64(mail.ConnectionsRefused()),
		`mailgate_build_info{goversion="` + runtimeVersion(text) + `",version="9.9.9-test"}`: 1,
	} {
		if got := metric(text, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if v := metric(text, "mailgate_config_last_reload_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last reload timestamp %v", v)
	}
	// Never a login or a client address in a label.
	if strings.Contains(text, "alice") || strings.Contains(text, "bob") {
		t.Error("a login in /metrics")
	}

	// A live session's traffic counts while it relays, and once when it
	// has ended.
	live.Send("y NOOP\r\n")
	live.ReadLine(5 * time.Second)
	relayed := func(dir string) float64 {
		_, text := r.do("GET", "/metrics")
		return metric(text, `mailgate_relayed_bytes_total{direction="`+dir+`",`+sp+`}`)
	}
	waitMetric(t, "live bytes", func() bool { return relayed("up") == 24 && relayed("down") == 24 })
	live.Close()
	<-live.Done()
	if up, down := relayed("up"), relayed("down"); up != 24 || down != 24 {
		t.Errorf("after the live session ended: up %v down %v, want 24 each", up, down)
	}
}

func waitMetric(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Without a registry (CountLive), relayed bytes count when a session's
// relay ends.
func TestRelayedBytesWithoutRegistry(t *testing.T) {
	m := admin.NewMetrics("x")
	l := mail.Labels{Server: "127.0.0.1:143", Protocol: "imap"}
	m.Relayed(l, 5, 7)
	m.Relayed(l, 1, 1)
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	res, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sp := `protocol="imap",server="127.0.0.1:143"`
	if up, down := metric(string(b), `mailgate_relayed_bytes_total{direction="up",`+sp+`}`),
		metric(string(b), `mailgate_relayed_bytes_total{direction="down",`+sp+`}`); up != 6 || down != 8 {
		t.Errorf("up %v down %v, want 6 and 8", up, down)
	}
}

func runtimeVersion(text string) string {
	m := regexp.MustCompile(`mailgate_build_info\{goversion="([^"]*)"`).FindStringSubmatch(text)
	if m == nil {
		return "?"
	}
	return m[1]
}

func TestPprofAndDrain(t *testing.T) {
	r := newRig(t, true)
	code, body := r.do("GET", "/debug/pprof/")
	if code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof: %d", code)
	}
	c := r.login("alice", true)
	code, body = r.do("POST", "/drain")
	if code != 200 || !strings.Contains(body, `"sessions": 1`) || !strings.Contains(body, `"draining": true`) {
		t.Errorf("POST /drain: %d %s", code, body)
	}
	if code, _ := r.do("GET", "/drain"); code != 405 {
		t.Errorf("GET /drain: %d, want 405", code)
	}
	if code, body := r.do("POST", "/drain?wait=soon"); code != 400 {
		t.Errorf("POST /drain?wait=soon: %d %s", code, body)
	}
	// With wait, the answer comes when the time passed with the session
	// still live, or as soon as the last session has ended: 0.
	t0 := time.Now()
	code, body = r.do("POST", "/drain?wait=200ms")
	if code != 200 || !strings.Contains(body, `"sessions": 1`) || time.Since(t0) < 200*time.Millisecond {
		t.Errorf("POST /drain?wait=200ms with a live session: %d %s after %v", code, body, time.Since(t0))
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		c.Close()
	}()
	t0 = time.Now()
	code, body = r.do("POST", "/drain?wait=1m")
	if d := time.Since(t0); code != 200 || !strings.Contains(body, `"sessions": 0`) || d < 250*time.Millisecond || d > 30*time.Second {
		t.Errorf("POST /drain?wait=1m: %d %s after %v", code, body, d)
	}
	<-c.Done()
}

// A unix admin socket is private (0600) and a stale socket file is
// replaced.
func TestListenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := admin.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves a stale socket file
	ln, err = admin.Listen("unix", path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s := admin.Serve(ln, admin.Handler(admin.Config{Sessions: mail.NewRegistry()}))
	defer s.Close()
	fi, err := osStat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v, want 0600", fi, err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", path)
	}}}
	res, err := hc.Get("http://admin/sessions")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("GET /sessions over unix: %q", b)
	}
}
