package confparse

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The files in testdata/oracle are configurations together with what the
// real nginx 1.22.1 printed for them under `nginx -t` (NAME.nginx, made by
// gen.sh). "@DIR@" stands for the scratch directory that is both the
// prefix and the configuration directory.
//
// newerNginx lists the cases where mailgate follows newer nginx on
// purpose, or differs from nginx on purpose (docs/compat-config.md); the
// value is mailgate's expected output.
var newerNginx = map[string]string{
	// 1.25.5+ wording of an unknown listen parameter.
	"p6":  `[emerg] invalid parameter "default_server" in @DIR@/p6.conf:5`,
	"x36": `[emerg] invalid parameter "bogus" in @DIR@/x36.conf:3`,
	// 1.29.1+ directive.
	"s13": ``,
	// 1.27.2+: ssl_trusted_certificate alone is enough, and the text says so.
	"s6":    `[emerg] no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client`,
	"real6": `[emerg] no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client`,
	// 1.31.4+: proxy_protocol off|on|v2.
	"pp1": ``,
	// An encrypted key without ssl_password_file: OpenSSL prompts on the
	// terminal ("Enter PEM pass phrase:", twice, on stderr when there is
	// none); mailgate never prompts and prints only nginx's error line.
	"sslfile_key_legacy_nopass": `[emerg] cannot load certificate key "@DIR@/sslfile/enc_legacy.key": PEM_read_bio_PrivateKey() failed (SSL: error:1400006B:UI routines::processing error:while reading strings error:0480006D:PEM routines::problems getting password error:07880109:common libcrypto routines::interrupted or cancelled error:07880109:common libcrypto routines::interrupted or cancelled error:04800068:PEM routines::bad password read)`,
	"sslfile_key_pkcs8_nopass":  `[emerg] cannot load certificate key "@DIR@/sslfile/enc_pkcs8.key": PEM_read_bio_PrivateKey() failed (SSL: error:1400006B:UI routines::processing error:while reading strings error:0480006D:PEM routines::problems getting password error:07880109:common libcrypto routines::interrupted or cancelled error:07880109:common libcrypto routines::interrupted or cancelled error:1C80009F:Provider routines::unable to get passphrase error:1400006B:UI routines::processing error:while reading strings error:0480006D:PEM routines::problems getting password error:07880109:common libcrypto routines::interrupted or cancelled error:04800068:PEM routines::bad password read)`,
}

var sevNames = []string{"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

// render prints what nginx -t -q would print: warnings, then the error.
func render(cfg *Config, err error) string {
	var lines []string
	if cfg != nil {
		for _, n := range cfg.Notices {
			if !n.MailgateOnly {
				lines = append(lines, "["+sevNames[n.Sev]+"] "+n.String())
			}
		}
	}
	if err != nil {
		e := err.(*Error)
		lines = append(lines, "["+sevNames[e.Sev]+"] "+e.Error())
	}
	return strings.Join(lines, "\n")
}

// materialize copies an oracle case into dir, replacing @DIR@.
func materialize(t *testing.T, src, name, dir string) {
	t.Helper()
	sub := func(b []byte) []byte { return []byte(strings.ReplaceAll(string(b), "@DIR@", dir)) }
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, sub(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		copyFile(filepath.Join(src, f), filepath.Join(dir, f))
	}
	ents, err := os.ReadDir(filepath.Join(src, "inc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "inc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		copyFile(filepath.Join(src, "inc", e.Name()), filepath.Join(dir, "inc", e.Name()))
	}
	copyFile(filepath.Join(src, name+".conf"), filepath.Join(dir, name+".conf"))
	// TLS fixtures (sslfile_* cases), as gen.sh copies them.
	fx := filepath.Join(src, "..", "sslfile")
	files, err := os.ReadDir(fx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sslfile"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(fx, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "sslfile", f.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOracle(t *testing.T) {
	src, err := filepath.Abs("testdata/oracle")
	if err != nil {
		t.Fatal(err)
	}
	confs, err := filepath.Glob(filepath.Join(src, "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(confs)
	if len(confs) < 100 {
		t.Fatalf("only %d oracle cases", len(confs))
	}
	for _, c := range confs {
		name := strings.TrimSuffix(filepath.Base(c), ".conf")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			materialize(t, src, name, dir)
			want, ok := newerNginx[name]
			if !ok {
				b, err := os.ReadFile(filepath.Join(src, name+".nginx"))
				if err != nil {
					t.Fatal(err)
				}
				want = string(b)
			}
			want = strings.TrimRight(strings.ReplaceAll(want, "@DIR@", dir), "\n")
			o := Options{Prefix: dir + "/", ConfFile: filepath.Join(dir, name+".conf"), Hostname: "mx.example"}
			if g, err := os.ReadFile(filepath.Join(src, name+".globals")); err == nil {
				o.Globals = strings.TrimRight(strings.ReplaceAll(string(g), "@DIR@", dir), "\n")
			}
			cfg, lerr := Load(o)
			got := render(cfg, lerr)
			if got != want {
				t.Errorf("nginx -t says:\n%s\nmailgate says:\n%s", want, got)
			}
		})
	}
}
