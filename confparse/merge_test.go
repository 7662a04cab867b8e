package confparse

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// loadString writes conf (plus extra files) into a fresh directory and
// loads it with that directory as prefix and config dir.
func loadString(t *testing.T, conf string, extra map[string]string) (*Config, string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range extra {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "@DIR@", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(main, []byte(strings.ReplaceAll(conf, "@DIR@", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "MX.Example"})
	return cfg, dir, err
}

func mustLoad(t *testing.T, conf string) (*Config, string) {
	t.Helper()
	cfg, dir, err := loadString(t, conf, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg, dir
}

const srv = "listen 127.0.0.1:27001; protocol imap; auth_http 127.0.0.1:9000/auth;"

func TestMergeRules(t *testing.T) {
	tests := []struct {
		name  string
		mail  string // mail-level directives
		srv   string // extra server-level directives
		check func(t *testing.T, s *Server, dir string)
	}{
		{"scalar default", "", "", func(t *testing.T, s *Server, _ string) {
			if s.Core.Timeout != 60*time.Second || s.Proxy.Timeout != 24*time.Hour || s.Core.MaxErrors != 5 {
				t.Errorf("defaults: %v %v %v", s.Core.Timeout, s.Proxy.Timeout, s.Core.MaxErrors)
			}
			if _, ok := s.Sources["timeout"]; ok {
				t.Errorf("default has a source")
			}
		}},
		{"scalar inherited", "timeout 5s;", "", func(t *testing.T, s *Server, dir string) {
			if s.Core.Timeout != 5*time.Second {
				t.Errorf("timeout %v", s.Core.Timeout)
			}
			if p := s.Sources["timeout"]; p.Line != 3 || p.File != filepath.Join(dir, "nginx.conf") {
				t.Errorf("source %v", p)
			}
		}},
		{"scalar server wins", "timeout 5s;", "timeout 500ms;", func(t *testing.T, s *Server, _ string) {
			if s.Core.Timeout != 500*time.Millisecond || s.Sources["timeout"].Line != 6 {
				t.Errorf("timeout %v from %v", s.Core.Timeout, s.Sources["timeout"])
			}
		}},
		{"flag case-insensitive", "xclient OFF;", "", func(t *testing.T, s *Server, _ string) {
			if s.Proxy.XClient {
				t.Errorf("xclient still on")
			}
		}},
		{"bitmask ORs within a level", "imap_auth plain;\nimap_auth cram-md5;", "", func(t *testing.T, s *Server, _ string) {
			if s.IMAP.Auth != AuthPlain|AuthCRAMMD5 {
				t.Errorf("imap_auth %b", s.IMAP.Auth)
			}
		}},
		{"bitmask server replaces", "imap_auth plain cram-md5;", "imap_auth login;", func(t *testing.T, s *Server, _ string) {
			if s.IMAP.Auth != AuthLogin {
				t.Errorf("imap_auth %b", s.IMAP.Auth)
			}
		}},
		{"bitmask defaults", "", "", func(t *testing.T, s *Server, _ string) {
			if s.IMAP.Auth != AuthPlain || s.POP3.Auth != AuthPlain || s.SMTP.Auth != AuthPlain|AuthLogin {
				t.Errorf("auth defaults %b %b %b", s.IMAP.Auth, s.POP3.Auth, s.SMTP.Auth)
			}
			if !reflect.DeepEqual(s.SSL.Protocols, []string{"TLSv1.2", "TLSv1.3"}) {
				t.Errorf("ssl_protocols %v", s.SSL.Protocols)
			}
		}},
		{"ssl_protocols bitmask in table order", "ssl_protocols TLSv1.3;\nssl_protocols tlsv1.2;", "", func(t *testing.T, s *Server, _ string) {
			if !reflect.DeepEqual(s.SSL.Protocols, []string{"TLSv1.2", "TLSv1.3"}) {
				t.Errorf("ssl_protocols %v", s.SSL.Protocols)
			}
		}},
		{"array appends within a level", "imap_capabilities A B;\nimap_capabilities C;", "", func(t *testing.T, s *Server, _ string) {
			if !reflect.DeepEqual(s.IMAP.Capabilities, []string{"A", "B", "C"}) {
				t.Errorf("caps %v", s.IMAP.Capabilities)
			}
		}},
		{"array server replaces", "imap_capabilities A B;", "imap_capabilities X;", func(t *testing.T, s *Server, _ string) {
			if !reflect.DeepEqual(s.IMAP.Capabilities, []string{"X"}) {
				t.Errorf("caps %v", s.IMAP.Capabilities)
			}
		}},
		{"array defaults", "", "", func(t *testing.T, s *Server, _ string) {
			if !reflect.DeepEqual(s.IMAP.Capabilities, []string{"IMAP4", "IMAP4rev1", "UIDPLUS"}) ||
				!reflect.DeepEqual(s.POP3.Capabilities, []string{"TOP", "USER", "UIDL"}) || s.SMTP.Capabilities != nil {
				t.Errorf("caps %v %v %v", s.IMAP.Capabilities, s.POP3.Capabilities, s.SMTP.Capabilities)
			}
		}},
		{"auth_http_header array", "auth_http_header X-A 1;\nauth_http_header X-B $remote_port;", "", func(t *testing.T, s *Server, _ string) {
			want := [][2]string{{"X-A", "1"}, {"X-B", "$remote_port"}}
			if !reflect.DeepEqual(s.AuthHTTP.Headers, want) {
				t.Errorf("headers %v", s.AuthHTTP.Headers)
			}
		}},
		{"auth_http server overrides, URL/Host/URI together", "auth_http http://localhost:81/mail?x=1;", "auth_http 127.0.0.2;", func(t *testing.T, s *Server, _ string) {
			a := s.AuthHTTP
			if a.URL != "127.0.0.2" || a.Addr != "127.0.0.2:80" || a.Peer != "127.0.0.2:80" || a.Host != "127.0.0.2" || a.URI != "/" || a.Network != "tcp" {
				t.Errorf("auth_http %+v", a)
			}
		}},
		{"auth_http inherited, URL/Host/URI together", "auth_http http://localhost:81/mail?x=1;\nauth_http_timeout 5s;", "", func(t *testing.T, s *Server, _ string) {
			a := s.AuthHTTP
			if a.URL != "http://localhost:81/mail?x=1" || a.Addr != "127.0.0.1:81" || a.Host != "localhost" || a.URI != "/mail?x=1" ||
				a.Timeout != 5*time.Second || a.Pos.Line != 3 {
				t.Errorf("auth_http %+v", a)
			}
		}},
		{"auth_http last one wins", "", "auth_http 127.0.0.3:8080;", func(t *testing.T, s *Server, _ string) {
			if s.AuthHTTP.Addr != "127.0.0.3:8080" {
				t.Errorf("auth_http %+v", s.AuthHTTP)
			}
		}},
		{"set_real_ip_from server replaces", "set_real_ip_from 10.0.0.0/8;\nset_real_ip_from unix:;", "set_real_ip_from 192.168.1.1;", func(t *testing.T, s *Server, _ string) {
			if !reflect.DeepEqual(s.RealIP.From, []netip.Prefix{netip.MustParsePrefix("192.168.1.1/32")}) || s.RealIP.FromUnix {
				t.Errorf("realip %+v", s.RealIP)
			}
		}},
		{"set_real_ip_from inherited", "set_real_ip_from 10.1.2.3/8;\nset_real_ip_from ::1;\nset_real_ip_from unix:;", "", func(t *testing.T, s *Server, _ string) {
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
			if !reflect.DeepEqual(s.RealIP.From, want) || !s.RealIP.FromUnix {
				t.Errorf("realip %+v", s.RealIP)
			}
		}},
		{"error_log falls back to mail level", "error_log logs/mail.log info;", "", func(t *testing.T, s *Server, dir string) {
			if len(s.Core.ErrorLogs) != 1 || s.Core.ErrorLogs[0].Path != filepath.Join(dir, "logs/mail.log") || s.Core.ErrorLogs[0].Level != SevInfo {
				t.Errorf("error_log %+v", s.Core.ErrorLogs)
			}
		}},
		{"error_log server's own, several", "error_log logs/mail.log info;", "error_log stderr;\nerror_log /tmp/x.log debug;", func(t *testing.T, s *Server, _ string) {
			want := []LogTarget{{Path: "stderr", Level: SevError}, {Path: "/tmp/x.log", Level: SevDebug}}
			if len(s.Core.ErrorLogs) != 2 || s.Core.ErrorLogs[0].Path != want[0].Path || s.Core.ErrorLogs[1].Level != want[1].Level || s.Core.ErrorLogs[0].Level != want[0].Level {
				t.Errorf("error_log %+v", s.Core.ErrorLogs)
			}
		}},
		{"error_log none: main level applies (empty)", "", "", func(t *testing.T, s *Server, _ string) {
			if s.Core.ErrorLogs != nil {
				t.Errorf("error_log %+v", s.Core.ErrorLogs)
			}
		}},
		{"resolver inherited", "resolver 127.0.0.53 [::1]:5353 valid=30s ipv6=off;\nresolver_timeout 3s;", "", func(t *testing.T, s *Server, _ string) {
			r := s.Core.Resolver
			if r == nil || !reflect.DeepEqual(r.Addrs, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53"), netip.MustParseAddrPort("[::1]:5353")}) ||
				r.Valid != 30*time.Second || r.IPv6 || !r.IPv4 || s.Core.ResolverTimeout != 3*time.Second {
				t.Errorf("resolver %+v", r)
			}
		}},
		{"resolver off at server", "resolver 127.0.0.53;", "resolver off;", func(t *testing.T, s *Server, _ string) {
			if s.Core.Resolver != nil {
				t.Errorf("resolver %+v", s.Core.Resolver)
			}
		}},
		{"server_name default is the lowercased hostname", "", "", func(t *testing.T, s *Server, _ string) {
			if s.Core.ServerName != "mx.example" {
				t.Errorf("server_name %q", s.Core.ServerName)
			}
		}},
		{"server_name empty means hostname", `server_name "";`, "", func(t *testing.T, s *Server, _ string) {
			if s.Core.ServerName != "mx.example" {
				t.Errorf("server_name %q", s.Core.ServerName)
			}
		}},
		{"ssl paths relative to the config dir", "ssl_certificate certs/a.pem;\nssl_certificate_key /k.pem;\nssl_dhparam dh.pem;", "", func(t *testing.T, s *Server, dir string) {
			if !reflect.DeepEqual(s.SSL.Certificates, []string{filepath.Join(dir, "certs/a.pem")}) ||
				!reflect.DeepEqual(s.SSL.CertificateKeys, []string{"/k.pem"}) || s.SSL.DHParam != filepath.Join(dir, "dh.pem") {
				t.Errorf("ssl %+v", s.SSL)
			}
		}},
		{"ssl defaults", "", "", func(t *testing.T, s *Server, _ string) {
			c := s.SSL
			if c.ECDHCurve != "auto" || c.Ciphers != "HIGH:!aNULL:!MD5" || c.SessionCache != "none" || !c.SessionTickets ||
				c.SessionTimeout != 5*time.Minute || c.VerifyDepth != 1 || c.StartTLS != StartTLSOff {
				t.Errorf("ssl %+v", c)
			}
		}},
		{"ssl_session_timeout takes y and M", "ssl_session_timeout 1M;", "", func(t *testing.T, s *Server, _ string) {
			if s.SSL.SessionTimeout != 30*24*time.Hour {
				t.Errorf("timeout %v", s.SSL.SessionTimeout)
			}
		}},
		{"sizes", "proxy_buffer 16k;\nimap_client_buffer 1M;", "smtp_client_buffer 100;", func(t *testing.T, s *Server, _ string) {
			if s.Proxy.Buffer != 16384 || s.IMAP.ClientBuffer != 1<<20 || s.SMTP.ClientBuffer != 100 {
				t.Errorf("sizes %d %d %d", s.Proxy.Buffer, s.IMAP.ClientBuffer, s.SMTP.ClientBuffer)
			}
		}},
		{"proxy_protocol v2 (newer nginx)", "proxy_protocol v2;", "", func(t *testing.T, s *Server, _ string) {
			if s.Proxy.ProxyProtocol != ProxyProtocolV2 {
				t.Errorf("proxy_protocol %v", s.Proxy.ProxyProtocol)
			}
		}},
		{"enum values", "ssl_verify_client optional_no_ca;\nsmtp_auth none;", "", func(t *testing.T, s *Server, _ string) {
			if s.SSL.VerifyClient != VerifyOptionalNoCA || s.SMTP.Auth != AuthNone {
				t.Errorf("%v %b", s.SSL.VerifyClient, s.SMTP.Auth)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := srv
			if strings.Contains(tc.mail, "auth_http ") {
				base = "listen 127.0.0.1:27001; protocol imap;"
			}
			conf := "events {}\nmail {\n" + tc.mail + "\nserver {\n" + base + "\n" + tc.srv + "\n}\n}\n"
			cfg, dir := mustLoad(t, conf)
			if cfg.Mail == nil || len(cfg.Mail.Servers) != 1 {
				t.Fatalf("servers: %+v", cfg.Mail)
			}
			tc.check(t, cfg.Mail.Servers[0], dir)
		})
	}
}

func TestAuthHTTPURL(t *testing.T) {
	tests := []struct {
		in                                 string
		network, addr, peer, host, uri, er string
	}{
		{in: "http://127.0.0.1:9000/auth", network: "tcp", addr: "127.0.0.1:9000", peer: "127.0.0.1:9000", host: "127.0.0.1", uri: "/auth"},
		{in: "127.0.0.1", network: "tcp", addr: "127.0.0.1:80", peer: "127.0.0.1:80", host: "127.0.0.1", uri: "/"},
		{in: "[::1]:81/a?b=c", network: "tcp", addr: "[::1]:81", peer: "[::1]:81", host: "[::1]", uri: "/a?b=c"},
		{in: "127.0.0.1?x=1", network: "tcp", addr: "127.0.0.1:80", peer: "127.0.0.1:80", host: "127.0.0.1", uri: "?x=1"},
		{in: "unix:/run/auth.sock", network: "unix", addr: "/run/auth.sock", peer: "unix:/run/auth.sock", host: "localhost", uri: "/"},
		{in: "unix:/run/auth.sock:/mail", network: "unix", addr: "/run/auth.sock", peer: "unix:/run/auth.sock", host: "localhost", uri: "/mail"},
		{in: "https://127.0.0.1/auth", er: `invalid port in auth_http "https://127.0.0.1/auth"`},
		{in: "http://127.0.0.1:0/", er: `invalid port in auth_http "127.0.0.1:0/"`},
		{in: "http:///x", er: `no host in auth_http "/x"`},
		{in: "unix:", er: `no path in the unix domain socket in auth_http "unix:"`},
	}
	for _, tc := range tests {
		a, e := parseAuthHTTP(tc.in)
		if e != tc.er {
			t.Errorf("%s: error %q, want %q", tc.in, e, tc.er)
			continue
		}
		if e != "" {
			continue
		}
		got := [5]string{a.network, a.addr, a.peer, a.host, a.uri}
		want := [5]string{tc.network, tc.addr, tc.peer, tc.host, tc.uri}
		if got != want {
			t.Errorf("%s: got %v want %v", tc.in, got, want)
		}
	}
}

func TestListenEntries(t *testing.T) {
	conf := `events {}
mail {
  auth_http 127.0.0.1:1;
  server {
    listen 127.0.0.1:27010-27011 bind;
    listen [::1]:27143 ssl ipv6only=off;
    listen 27025 proxy_protocol so_keepalive=30s:10:3 backlog=64 rcvbuf=8k sndbuf=1m;
    listen unix:@DIR@/imap.sock;
    listen 127.0.0.1;
    listen 127.0.0.1:27143 multipath;
    protocol imap;
    ssl_certificate c.pem; ssl_certificate_key k.pem;
  }
  server {
    listen *:587;
    listen 127.0.0.1:110;
  }
}`
	cfg, _, err := loadString(t, conf, map[string]string{"c.pem": string(testCombinedPEM), "k.pem": string(testCombinedPEM)})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Mail
	var texts []string
	for _, l := range m.Listens {
		texts = append(texts, l.Text)
	}
	want := []string{"127.0.0.1:27010", "127.0.0.1:27011", "[::1]:27143", "0.0.0.0:27025",
		"unix:" + filepath.Dir(cfg.ConfFile) + "/imap.sock", "127.0.0.1:0", "127.0.0.1:27143", "0.0.0.0:587", "127.0.0.1:110"}
	if !reflect.DeepEqual(texts, want) {
		t.Fatalf("listens\n got %q\nwant %q", texts, want)
	}
	l := m.Listens
	if !l[0].Bind || l[0].Backlog != 511 || !l[0].IPv6Only {
		t.Errorf("bind entry %+v", l[0])
	}
	if !l[2].SSL || l[2].IPv6Only || !l[2].Bind || l[2].Addr != netip.MustParseAddrPort("[::1]:27143") {
		t.Errorf("ipv6 entry %+v", l[2])
	}
	ka := KeepAlive{Set: true, On: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}
	if !l[3].ProxyProtocol || l[3].KeepAlive != ka || l[3].Backlog != 64 || l[3].RcvBuf != 8192 || l[3].SndBuf != 1<<20 || !l[3].Bind {
		t.Errorf("options entry %+v", l[3])
	}
	if l[4].Network != "unix" || l[4].Path == "" {
		t.Errorf("unix entry %+v", l[4])
	}
	if !l[6].Multipath || !l[6].Bind {
		t.Errorf("multipath entry %+v", l[6])
	}
	if l[0].Server != m.Servers[0] || l[7].Server != m.Servers[1] || len(m.Servers[0].Listens) != 7 {
		t.Errorf("server back-pointers")
	}
	// the first well-known port decides the protocol
	if m.Servers[1].Protocol != ProtoSMTP {
		t.Errorf("guessed protocol %q", m.Servers[1].Protocol)
	}
	if m.Servers[0].Protocol != ProtoIMAP || m.Servers[0].Pos.Line != 4 {
		t.Errorf("server 0: %q %v", m.Servers[0].Protocol, m.Servers[0].Pos)
	}
}

func TestProtocolGuess(t *testing.T) {
	tests := []struct {
		listens, protocol, want string
	}{
		{"listen 127.0.0.1:27001; listen 127.0.0.1:587; listen 127.0.0.1:143;", "", ProtoSMTP},
		{"listen 127.0.0.1:995;", "", ProtoPOP3},
		{"listen 127.0.0.1:993;", "", ProtoIMAP},
		{"listen 127.0.0.1:25;", "protocol imap;", ProtoIMAP},
		{"protocol pop3; listen 127.0.0.1:143;", "", ProtoPOP3},
	}
	for _, tc := range tests {
		conf := "events {}\nmail { auth_http 127.0.0.1:1; server { " + tc.listens + tc.protocol + " } }"
		cfg, _ := mustLoad(t, conf)
		if got := cfg.Mail.Servers[0].Protocol; got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.listens, tc.protocol, got, tc.want)
		}
	}
}

func TestCore(t *testing.T) {
	cfg, dir := mustLoad(t, `daemon off; master_process off;
worker_processes auto;
pid run/mg.pid;
worker_shutdown_timeout 10s;
worker_rlimit_nofile 4096;
error_log logs/err.log notice;
error_log stderr;
events { worker_connections 64; }
`)
	c := cfg.Core
	want := Core{Pid: filepath.Join(dir, "run/mg.pid"), Daemon: false, MasterProcess: false, WorkerProcesses: -1,
		WorkerConnections: 64, WorkerShutdownTimeout: 10 * time.Second, WorkerRlimitNofile: 4096}
	errLogs := c.ErrorLogs
	c.ErrorLogs = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("core\n got %+v\nwant %+v", c, want)
	}
	if len(errLogs) != 2 || errLogs[0].Path != filepath.Join(dir, "logs/err.log") || errLogs[0].Level != SevNotice || errLogs[1].Path != "stderr" {
		t.Errorf("error logs %+v", errLogs)
	}
	if cfg.Mail != nil {
		t.Errorf("mail without a mail block")
	}
	cfg, dir = mustLoad(t, "events {}")
	if cfg.Core.Pid != DefaultPid || !cfg.Core.Daemon || cfg.Core.WorkerConnections != 512 || cfg.Core.WorkerProcesses != 1 {
		t.Errorf("defaults %+v", cfg.Core)
	}
}

func TestConfFileResolution(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.conf"), []byte("events {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Options{Prefix: dir + "/", ConfFile: "x.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConfFile != filepath.Join(dir, "x.conf") || cfg.ConfDir != dir+"/" || cfg.Prefix != dir+"/" {
		t.Errorf("paths %q %q %q", cfg.ConfFile, cfg.ConfDir, cfg.Prefix)
	}
	_, err = Load(Options{Prefix: dir + "/", ConfFile: "missing.conf"})
	want := `open() "` + filepath.Join(dir, "missing.conf") + `" failed (2: No such file or directory)`
	if err == nil || err.Error() != want {
		t.Errorf("missing main file: %v", err)
	}
}

func TestAfterSyntax(t *testing.T) {
	for conf, want := range map[string]bool{
		"":                         true,
		"events {}\ndaemon maybe;": false,
		"events { worker_connections 1; }\nmail { auth_http 127.0.0.1:1; server { listen 127.0.0.1:27001; protocol imap; } }": true,
	} {
		_, _, err := loadString(t, conf, nil)
		e, ok := err.(*Error)
		if !ok || e.AfterSyntax != want {
			t.Errorf("%q: %v (AfterSyntax want %v)", conf, err, want)
		}
	}
}

func TestDirectiveTable(t *testing.T) {
	ds := Directives()
	seen := map[string]bool{}
	var modules []string
	for _, d := range ds {
		if seen[d.Name+d.Module] {
			t.Errorf("%s twice in %s", d.Name, d.Module)
		}
		seen[d.Name+d.Module] = true
		if !knownNames[d.Name] && !d.MailgateOnly && d.Name != "ssl_certificate_compression" && d.Name != "ssl_object_cache_inheritable" {
			t.Errorf("%s is not a name nginx 1.22.1 knows", d.Name)
		}
		if len(modules) == 0 || modules[len(modules)-1] != d.Module {
			modules = append(modules, d.Module)
		}
	}
	// the mail modules in nginx's order
	var mail []string
	for _, m := range modules {
		if strings.HasPrefix(m, "mail_") {
			mail = append(mail, m)
		}
	}
	want := "mail_core mail_ssl mail_pop3 mail_imap mail_smtp mail_auth_http mail_proxy mail_realip"
	if strings.Join(mail, " ") != want {
		t.Errorf("mail module order %q", mail)
	}
	// the anchors.md inventory of mail directives, all present
	for _, n := range strings.Fields(`mail server listen protocol server_name timeout resolver resolver_timeout error_log max_errors
		auth_http auth_http_header auth_http_pass_client_cert auth_http_timeout proxy proxy_buffer proxy_pass_error_message
		proxy_protocol proxy_smtp_auth proxy_timeout xclient set_real_ip_from imap_auth imap_capabilities imap_client_buffer
		pop3_auth pop3_capabilities smtp_auth smtp_capabilities smtp_client_buffer smtp_greeting_delay starttls ssl
		ssl_certificate ssl_certificate_key ssl_password_file ssl_dhparam ssl_ecdh_curve ssl_protocols ssl_ciphers
		ssl_prefer_server_ciphers ssl_session_cache ssl_session_timeout ssl_session_tickets ssl_session_ticket_key
		ssl_verify_client ssl_verify_depth ssl_client_certificate ssl_trusted_certificate ssl_crl ssl_conf_command
		ssl_certificate_compression`) {
		found := false
		for _, d := range ds {
			if d.Name == n && (strings.HasPrefix(d.Module, "mail") || n == "mail") {
				found = true
			}
		}
		if !found {
			t.Errorf("mail directive %s missing", n)
		}
	}
}

func TestSyslogTarget(t *testing.T) {
	cfg, _ := mustLoad(t, "error_log syslog:server=unix:/dev/log,nohostname,tag=x_1,facility=mail,severity=warn warn;\n"+
		"error_log syslog:server=[::1];\nevents {}\n")
	logs := cfg.Core.ErrorLogs
	if len(logs) != 2 {
		t.Fatalf("logs %+v", logs)
	}
	want0 := SyslogTarget{Network: "unixgram", Addr: "/dev/log", Facility: "mail", Severity: "warn", Tag: "x_1", NoHostname: true}
	want1 := SyslogTarget{Network: "udp", Addr: "[::1]:514", Facility: "local7", Severity: "info", Tag: "nginx"}
	if logs[0].Syslog == nil || *logs[0].Syslog != want0 || logs[0].Level != SevWarn || logs[0].Path != "syslog:server=unix:/dev/log,nohostname,tag=x_1,facility=mail,severity=warn" {
		t.Errorf("log 0 %+v %+v", logs[0], logs[0].Syslog)
	}
	if logs[1].Syslog == nil || *logs[1].Syslog != want1 {
		t.Errorf("log 1 %+v", logs[1].Syslog)
	}
}
