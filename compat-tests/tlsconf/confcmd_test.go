package tlsconf_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TestConfCommandTestAgainstNginx runs `-t` on ssl_conf_command lines
// with nginx and mailgate: the same verdict, and for a refused command
// the same output (OpenSSL's text as nginx prints it).
func TestConfCommandTestAgainstNginx(t *testing.T) {
	cert, key := harness.SelfSigned("mx.test")
	cmds := []string{
		"NoSuchCommand value", "no_ticket x", "Options Bogus", "Options SessionTicket,Bogus", "Options ''",
		"MinProtocol TLSv9", "MinProtocol tlsv1.2", "MaxProtocol ''", "Groups nosuch", "Groups X25519:nosuch",
		"Ciphersuites nosuch", "CipherString nosuch", "Certificate /nonexist", "PrivateKey /nonexist",
		"DHParameters /nonexist", "Certificate {{dir}}/garbage.pem", "PrivateKey {{dir}}/garbage.pem", "PrivateKey {{dir}}/cert.pem",
		// accepted
		"Options -SessionTicket", "options sessionticket", "Options 'SessionTicket, -ServerPreference'", "NumTickets 2",
		"MinProtocol None", "MaxProtocol TLSv1.2", "Ciphersuites ''", "Ciphersuites TLS_AES_128_GCM_SHA256:nosuch",
		"Curves X25519", "VerifyMode Request", "Certificate {{dir}}/cert.pem", "PrivateKey {{dir}}/key.pem",
	}
	for _, c := range cmds {
		t.Run(c, func(t *testing.T) {
			var outs []string
			for _, bin := range []string{harness.NginxBin, harness.MailgateBinary(t)} {
				dir, err := os.MkdirTemp("", "confcmd")
				if err != nil {
					t.Fatal(err)
				}
				defer os.RemoveAll(dir)
				conf := "load_module " + harness.NginxMailModule + ";\nerror_log stderr;\npid " + dir + "/nginx.pid;\nevents {}\nmail {\n" +
					"  auth_http 127.0.0.1:9/auth;\n  ssl_certificate cert.pem; ssl_certificate_key key.pem;\n" +
					"  server { listen 127.0.0.1:19993 ssl; protocol imap; ssl_conf_command " + strings.ReplaceAll(c, "{{dir}}", dir) + "; }\n}\n"
				for name, body := range map[string]string{"nginx.conf": conf, "cert.pem": cert, "key.pem": key, "garbage.pem": "garbage\n"} {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				out, err := exec.Command(bin, "-t", "-p", dir+"/", "-c", "nginx.conf", "-e", "stderr").CombinedOutput()
				s := strings.ReplaceAll(string(out), dir, "DIR")
				s = strings.ReplaceAll(s, filepath.Base(bin)+":", "nginx:")
				s = logPrefix.ReplaceAllString(s, "[$1] ")
				if err != nil {
					s += "[failed]\n"
				}
				outs = append(outs, s)
			}
			if outs[0] != outs[1] {
				t.Errorf("nginx -t and mailgate -t differ:\nnginx:\n%s\nmailgate:\n%s", outs[0], outs[1])
			} else {
				t.Logf("identical:\n%s", outs[0])
			}
		})
	}
}

var logPrefix = regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: `)

// TestConfCommandHandshakesAgainstNginx: the handshakes of the commands
// mailgate applies, through s_client, against nginx's.
func TestConfCommandHandshakesAgainstNginx(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl (the command) is needed: apt-get install openssl")
	}
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: "127.0.0.1:9"},
	}})
	cert, key := harness.SelfSigned("mx.test")
	other := issue(t, certSpec{cn: "other.test", rsaBits: 2048, notCA: true})
	files := map[string]string{"cert.pem": cert, "key.pem": key, "other.pem": other.pem, "other.key": other.kpem}
	chachaFirst := []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"}
	serverOrder := "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305; "
	scenarios := []scenario{
		{name: "Options ServerPreference", server: serverOrder + "ssl_conf_command Options ServerPreference;", client: chachaFirst,
			must: []string{"Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256"}},
		{name: "Options -ServerPreference over ssl_prefer_server_ciphers on", server: serverOrder + "ssl_prefer_server_ciphers on; ssl_conf_command Options -ServerPreference;",
			client: chachaFirst, must: []string{"Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305"}},
		{name: "MaxProtocol TLSv1.2", server: "ssl_conf_command MaxProtocol TLSv1.2;", must: []string{"Protocol version: TLSv1.2"}},
		{name: "MinProtocol TLSv1.3, TLS 1.2 client", server: "ssl_conf_command MinProtocol TLSv1.3;", client: []string{"-tls1_2"},
			must: []string{"handshake error"}},
		{name: "CipherString", server: "ssl_protocols TLSv1.2; ssl_conf_command CipherString ECDHE-ECDSA-AES128-SHA;",
			must: []string{"Ciphersuite: ECDHE-ECDSA-AES128-SHA"}},
		{name: "Groups", server: "ssl_conf_command Groups secp384r1;", client: []string{"-ciphersuites", "TLS_AES_128_GCM_SHA256"},
			must: []string{"Server Temp Key: ECDH, secp384r1, 384 bits"}},
		{name: "Ciphersuites empty, TLS 1.3 enabled", server: "ssl_conf_command Ciphersuites '';",
			must:   []string{"handshake error", "[crit] *1 SSL_do_handshake() failed (SSL: error:0A0000B5:SSL routines::no ciphers available:No ciphers enabled for max supported SSL/TLS version)"},
			differ: "OpenSSL refuses before reading the hello, with a handshake_failure alert; crypto/tls refuses while choosing the config, with internal_error"},
		{name: "Ciphersuites empty, TLS 1.2 only", server: "ssl_protocols TLSv1.2; ssl_conf_command Ciphersuites '';", must: []string{"Protocol version: TLSv1.2"}},
		{name: "Certificate and PrivateKey", server: "ssl_conf_command Certificate {{prefix}}other.pem; ssl_conf_command PrivateKey {{prefix}}other.key;",
			client: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"},
			must:   []string{"Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256"}},
	}
	runScenarios(t, auth, files, scenarios)
}
