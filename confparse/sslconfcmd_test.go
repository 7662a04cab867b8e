package confparse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The error lines are nginx 1.22.1's with Debian's OpenSSL 3, from
// `nginx -t` on the same directive.
func TestConfCommandErrors(t *testing.T) {
	tests := []struct {
		cmd  string
		want string // "" loads
	}{
		{"NoSuchCommand value", `SSL_CONF_cmd("NoSuchCommand", "value") failed (SSL: error:0A000182:SSL routines::unknown cmd name:cmd=NoSuchCommand)`},
		{"no_ticket x", `SSL_CONF_cmd("no_ticket", "x") failed (SSL: error:0A000182:SSL routines::unknown cmd name:cmd=no_ticket)`},
		{"Options Bogus", `SSL_CONF_cmd("Options", "Bogus") failed (SSL: error:0A000180:SSL routines::bad value:cmd=Options, value=Bogus)`},
		{"Options SessionTicket,Bogus", `SSL_CONF_cmd("Options", "SessionTicket,Bogus") failed (SSL: error:0A000180:SSL routines::bad value:cmd=Options, value=SessionTicket,Bogus)`},
		{"Options ''", `SSL_CONF_cmd("Options", "") failed (SSL: error:0A000180:SSL routines::bad value:cmd=Options, value=)`},
		{"Options AllowNoDHEKE", `SSL_CONF_cmd("Options", "AllowNoDHEKE") failed (SSL: error:0A000180:SSL routines::bad value:cmd=Options, value=AllowNoDHEKE)`},
		{"MinProtocol TLSv9", `SSL_CONF_cmd("MinProtocol", "TLSv9") failed (SSL: error:0A000180:SSL routines::bad value:cmd=MinProtocol, value=TLSv9)`},
		{"MinProtocol tlsv1.2", `SSL_CONF_cmd("MinProtocol", "tlsv1.2") failed (SSL: error:0A000180:SSL routines::bad value:cmd=MinProtocol, value=tlsv1.2)`},
		{"MaxProtocol ''", `SSL_CONF_cmd("MaxProtocol", "") failed (SSL: error:0A000180:SSL routines::bad value:cmd=MaxProtocol, value=)`},
		{"Groups nosuch", `SSL_CONF_cmd("Groups", "nosuch") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group 'nosuch' cannot be set error:0A000180:SSL routines::bad value:cmd=Groups, value=nosuch)`},
		{"Groups X25519:nosuch", `SSL_CONF_cmd("Groups", "X25519:nosuch") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group 'nosuch' cannot be set error:0A000180:SSL routines::bad value:cmd=Groups, value=X25519:nosuch)`},
		{"Groups ''", `SSL_CONF_cmd("Groups", "") failed (SSL: error:0A000180:SSL routines::bad value:cmd=Groups, value=)`},
		{"Ciphersuites nosuch", `SSL_CONF_cmd("Ciphersuites", "nosuch") failed (SSL: error:0A0000B9:SSL routines::no cipher match error:0A000180:SSL routines::bad value:cmd=Ciphersuites, value=nosuch)`},
		{"CipherString nosuch", `SSL_CONF_cmd("CipherString", "nosuch") failed (SSL: error:0A0000B9:SSL routines::no cipher match error:0A000180:SSL routines::bad value:cmd=CipherString, value=nosuch)`},
		{"CipherString ''", `SSL_CONF_cmd("CipherString", "") failed (SSL: error:0A0000B9:SSL routines::no cipher match error:0A000180:SSL routines::bad value:cmd=CipherString, value=)`},
		{"Certificate /nonexist", `SSL_CONF_cmd("Certificate", "/nonexist") failed (SSL: error:80000002:system library::No such file or directory:calling fopen(/nonexist, r) error:10080002:BIO routines::system lib error:0A080002:SSL routines::system lib error:0A000180:SSL routines::bad value:cmd=Certificate, value=/nonexist)`},
		{"PrivateKey /nonexist", `SSL_CONF_cmd("PrivateKey", "/nonexist") failed (SSL: error:80000002:system library::No such file or directory:calling fopen(/nonexist, r) error:10080002:BIO routines::system lib error:0A080002:SSL routines::system lib error:0A000180:SSL routines::bad value:cmd=PrivateKey, value=/nonexist)`},
		{"DHParameters /nonexist", `SSL_CONF_cmd("DHParameters", "/nonexist") failed (SSL: error:80000002:system library::No such file or directory:calling fopen(/nonexist, r) error:10080002:BIO routines::system lib error:0A000180:SSL routines::bad value:cmd=DHParameters, value=/nonexist)`},
		{"ServerInfoFile /nonexist", `SSL_CONF_cmd("ServerInfoFile", "/nonexist") failed (SSL: error:80000002:system library::No such file or directory:calling fopen(/nonexist, r) error:10080002:BIO routines::system lib error:0A080002:SSL routines::system lib error:0A000180:SSL routines::bad value:cmd=ServerInfoFile, value=/nonexist)`},
		// accepted by nginx -t
		{"Options -SessionTicket", ""},
		{"options sessionticket", ""}, // names and options without case
		{"Options 'SessionTicket, -ServerPreference'", ""},
		{"Options PrioritizeChaCha,-ServerPreference", ""},
		{"NumTickets 2", ""},
		{"RecordPadding 0", ""},
		{"VerifyMode Request", ""},
		{"Protocol -TLSv1", ""},
		{"SignatureAlgorithms ECDSA+SHA256", ""},
		{"MinProtocol None", ""},
		{"MinProtocol SSLv3", ""},
		{"MinProtocol DTLSv1", ""},
		{"MaxProtocol TLSv1.3", ""},
		{"CipherString ECDHE-ECDSA-AES128-SHA", ""},
		{"Ciphersuites ''", ""},
		{"Ciphersuites TLS_AES_128_GCM_SHA256:nosuch", ""},
		{"Curves X25519", ""},
		{"Certificate @DIR@/c.pem", ""},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nssl_certificate c.pem; ssl_certificate_key c.pem;\n" +
				"server { listen 127.0.0.1:27143 ssl; protocol imap; ssl_conf_command " + tc.cmd + "; }\n}\n"
			_, _, err := loadString(t, conf, map[string]string{"c.pem": string(testCombinedPEM)})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("error %q\nwant %q", got, tc.want)
			}
			if tc.want != "" && strings.Contains(got, " in ") && strings.Contains(got, "nginx.conf:") {
				t.Errorf("nginx's line has no file position: %q", got)
			}
		})
	}
	// A server without TLS does not apply them (nginx merges them only
	// for a TLS server).
	conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nserver { listen 127.0.0.1:27143; protocol imap; ssl_conf_command NoSuchCommand x; }\n}\n"
	if _, _, err := loadString(t, conf, nil); err != nil {
		t.Errorf("a plain server: %v", err)
	}
}

func TestConfCommandCheckNamesUnhonoured(t *testing.T) {
	dir := t.TempDir()
	conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nssl_certificate c.pem; ssl_certificate_key c.pem;\n" +
		"server { listen 127.0.0.1:27143 ssl; protocol imap;\n" +
		"ssl_conf_command Options -SessionTicket,PrioritizeChaCha;\n" +
		"ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;\n" +
		"ssl_conf_command NumTickets 4;\n" +
		"ssl_conf_command MinProtocol TLSv1.2;\n}\n}\n"
	writeFiles(t, dir, map[string]string{"nginx.conf": conf, "c.pem": string(testCombinedPEM)})
	_, diags := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
	var got []string
	for _, d := range diags {
		if strings.Contains(d.Msg, "ssl_conf_command") {
			got = append(got, d.Msg+" | "+d.Extra)
		}
		// each at its own line
		for line, what := range map[int]string{6: "PrioritizeChaCha", 7: "Ciphersuites", 8: "NumTickets"} {
			if strings.Contains(d.Msg, what) && d.Pos.Line != line {
				t.Errorf("%q at line %d, want %d", d.Msg, d.Pos.Line, line)
			}
		}
		if d.Sev != SevWarn {
			t.Errorf("not a warning: %+v", d)
		}
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{`"ssl_conf_command Options PrioritizeChaCha" is not honoured`, `"ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256" is not honoured`, `"ssl_conf_command NumTickets 4" is not honoured`} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in:\n%s", want, all)
		}
	}
	for _, honoured := range []string{"-SessionTicket\"", "MinProtocol"} {
		if strings.Contains(all, honoured) {
			t.Errorf("an honoured command is named: %q in\n%s", honoured, all)
		}
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTLSOrderAndSessionAdvice(t *testing.T) {
	tests := []struct {
		server string
		want   string // "" : none of the three
	}{
		{"ssl_conf_command Ciphersuites '';", `"ssl_conf_command Ciphersuites" leaves TLS 1.3 no suite while TLS 1.3 is enabled`},
		{"ssl_protocols TLSv1.2; ssl_conf_command Ciphersuites '';", ""},
		{"ssl_conf_command Ciphersuites ''; ssl_conf_command MaxProtocol TLSv1.2;", ""},
		{"ssl_prefer_server_ciphers on;", "server cipher preference orders TLS 1.2 suites only"},
		{"ssl_conf_command Options ServerPreference;", "server cipher preference orders TLS 1.2 suites only"},
		{"ssl_prefer_server_ciphers on; ssl_conf_command Options -ServerPreference;", ""},
		{"ssl_prefer_server_ciphers on; ssl_protocols TLSv1.2;", ""},
		{"ssl_session_cache builtin; ssl_session_tickets off;", `"ssl_session_cache" resumes TLS 1.2 sessions only for clients that accept session tickets`},
		{"ssl_session_cache none;", ""},
		{"ssl_session_cache off;", ""},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nssl_certificate c.pem; ssl_certificate_key c.pem;\n" +
			"server { listen 127.0.0.1:27143 ssl; protocol imap; " + tc.server + " }\n}\n"
		writeFiles(t, dir, map[string]string{"nginx.conf": conf, "c.pem": string(testCombinedPEM)})
		_, diags := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
		var got []string
		for _, d := range diags {
			if strings.Contains(d.Msg, "TLS 1.3") || strings.Contains(d.Msg, "preference") || strings.Contains(d.Msg, "resumes") {
				got = append(got, d.Msg)
			}
		}
		if tc.want == "" && len(got) > 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
			t.Errorf("%s: got %q, want %q", tc.server, got, tc.want)
		}
	}
}

func TestSessionCacheZoneSizes(t *testing.T) {
	tests := []struct {
		a, b string
		want string
	}{
		{"shared:S:1m", "shared:S:1m", ""},
		{"shared:S:1m", "shared:T:2m", ""},
		{"shared:S:1m", "builtin shared:S:2m", `the size 2097152 of shared memory zone "S" conflicts with already declared size 1048576 in `},
		{"shared:S:1024k", "shared:S:1m", ""},
	}
	for _, tc := range tests {
		conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nssl_certificate c.pem; ssl_certificate_key c.pem;\n" +
			"server { listen 127.0.0.1:27143 ssl; protocol imap; ssl_session_cache " + tc.a + "; }\n" +
			"server { listen 127.0.0.1:27144 ssl; protocol imap; ssl_session_cache " + tc.b + "; }\n}\n"
		_, _, err := loadString(t, conf, map[string]string{"c.pem": string(testCombinedPEM)})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nginx.conf:6")) {
			t.Errorf("%s / %s: %v, want %q", tc.a, tc.b, err, tc.want)
		}
	}
}
