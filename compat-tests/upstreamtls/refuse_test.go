package upstreamtls

import (
	"os/exec"
	"strings"
	"testing"

	"mailgate/compat-tests/harness"
)

// nginx 1.22.1 refuses the directives in mail{} (its stream and http
// proxy modules have the proxy_ssl_* names, not here; proxy_starttls it
// does not know at all), and mailgate check lists each as mailgate-only,
// with the error nginx gives for it under --nginx. That reference is
// nginx with the stream module loaded, where proxy_ssl is "not allowed
// here"; the harness's nginx loads only the mail module and calls it
// unknown.
func TestNginxRefusesUpstreamTLS(t *testing.T) {
	for _, c := range []struct{ line, nginx, check, checkNginx string }{
		{"proxy_ssl on;", `unknown directive "proxy_ssl"`, `"proxy_ssl" is not in nginx 1.22.1`, `"proxy_ssl" directive is not allowed here`},
		{"proxy_starttls on;", `unknown directive "proxy_starttls"`, `"proxy_starttls" is not in nginx 1.22.1`, ""},
		{"proxy_ssl_auth_header on;", `unknown directive "proxy_ssl_auth_header"`, `"proxy_ssl_auth_header" is not in nginx 1.22.1`, ""},
		{"proxy_ssl_verify on;", `"proxy_ssl_verify" directive is not allowed here`, `"proxy_ssl_verify" is not in nginx 1.22.1`, ""},
	} {
		if c.checkNginx == "" {
			c.checkNginx = c.nginx
		}
		conf := harness.Config{Vars: map[string]string{"auth": "127.0.0.1:9/auth"}, Mail: `
    auth_http {{auth}};
    server { listen 127.0.0.1:{{port imap}}; protocol imap; ` + c.line + ` }`}
		if np, err := harness.TryStart(t, harness.Nginx, conf); err == nil {
			np.Stop()
			t.Fatalf("nginx accepted %s", c.line)
		} else if !strings.Contains(err.Error(), c.nginx) {
			t.Fatalf("nginx on %s: %v", c.line, err)
		}
		p := harness.StartMailgate(t, conf)
		bin := harness.MailgateBinary(t)
		out, _ := exec.Command(bin, "check", "-p", p.Prefix, "-c", p.Prefix+"nginx.conf").CombinedOutput()
		if !strings.Contains(string(out), c.check) {
			t.Errorf("mailgate check on %s:\n%s", c.line, out)
		}
		out, _ = exec.Command(bin, "check", "--nginx", "-p", p.Prefix, "-c", p.Prefix+"nginx.conf").CombinedOutput()
		if !strings.Contains(string(out), c.checkNginx) {
			t.Errorf("mailgate check --nginx on %s:\n%s", c.line, out)
		}
		p.Stop()
	}
}
