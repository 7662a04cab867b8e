package confparse

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCompileLogFormat(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  []LogOp
		err   string
	}{
		{words: []string{"plain"}, want: []LogOp{{Lit: "plain"}}},
		{words: []string{"$remote_addr [$time_local] ", "$status"},
			want: []LogOp{{Var: "remote_addr"}, {Lit: " ["}, {Var: "time_local"}, {Lit: "] "}, {Var: "status"}}},
		{words: []string{"${login}x$Login-"}, want: []LogOp{{Var: "login"}, {Lit: "x"}, {Var: "login"}, {Lit: "-"}}},
		{words: []string{`"$login"`}, want: []LogOp{{Lit: `"`}, {Var: "login"}, {Lit: `"`}}},
		{words: []string{"a$"}, err: `invalid parameter "$"`},
		{words: []string{"a$-b"}, err: `invalid parameter "$-b"`},
		{words: []string{"${"}, err: `invalid parameter "${"`},
		{words: []string{"${}"}, err: `invalid parameter "${}"`},
		{words: []string{"${login"}, err: `the closing bracket in "login" variable is missing`},
		{words: []string{"${lo-gin}"}, err: `the closing bracket in "lo" variable is missing`},
		{words: []string{"$foo"}, err: `unknown "foo" variable`},
		{words: []string{"$request"}, err: `unknown "request" variable`},
		{words: []string{"$password"}, err: `unknown "password" variable`},
	} {
		got, err := compileLogFormat(c.words)
		if err != c.err {
			t.Errorf("%q: error %q, want %q", c.words, err, c.err)
			continue
		}
		if c.err == "" && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, want %+v", c.words, got, c.want)
		}
	}
}

func FuzzCompileLogFormat(f *testing.F) {
	for _, s := range []string{"$remote_addr [$time_local] $status", "${login}x", "$", "${", "${}", "${a", "$$", "a$b$c", "\x00$login"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ops, err := compileLogFormat([]string{s})
		if err != "" {
			if ops != nil {
				t.Fatalf("%q: ops %v with error %q", s, ops, err)
			}
			return
		}
		// The ops spell the input again, variables as ${name}
		// (case folded) and literal text as is.
		var b strings.Builder
		for _, op := range ops {
			if op.Var == "" {
				if op.Lit == "" || strings.Contains(op.Lit, "$") {
					t.Fatalf("%q: bad literal %q", s, op.Lit)
				}
				b.WriteString(op.Lit)
				continue
			}
			b.WriteString("$" + op.Var)
		}
		norm := strings.ReplaceAll(strings.ReplaceAll(s, "${", "$"), "}", "")
		got := strings.ReplaceAll(b.String(), "}", "")
		if !strings.EqualFold(got, norm) {
			t.Fatalf("%q: ops %+v spell %q", s, ops, b.String())
		}
	})
}

func TestAccessLogDirectives(t *testing.T) {
	const fm = `log_format f '$remote_addr $login $status';` + "\n"
	for _, c := range []struct {
		name        string
		mail, srv   string
		err         string
		logs        int    // access logs of the server
		path        string // of the first
		buffer      int
		flush       time.Duration
		gzip        int
		escape      LogEscape
		syslog, cnd bool
	}{
		{name: "none"},
		{name: "mail level", mail: fm + "access_log logs/access.log f;", logs: 1, path: "logs/access.log"},
		{name: "server own", mail: fm + "access_log a.log f;", srv: "access_log b.log F; access_log c.log f;", logs: 2, path: "b.log"},
		{name: "server off", mail: fm + "access_log a.log f;", srv: "access_log off;"},
		{name: "off with logs", mail: fm + "access_log a.log f; access_log off;"},
		{name: "buffered", mail: fm + "access_log /tmp/x.log f buffer=32k flush=5s;", logs: 1, path: "/tmp/x.log", buffer: 32768, flush: 5 * time.Second},
		{name: "gzip", mail: fm + "access_log /tmp/x.log.gz f gzip=4;", logs: 1, path: "/tmp/x.log.gz", buffer: 65536, gzip: 4},
		{name: "json", mail: `log_format j escape=json '{"a":"$login"}'; access_log /tmp/j f; access_log /tmp/j j;`, err: `unknown log format "f"`},
		{name: "json ok", mail: `log_format j escape=json '{"a":"$login"}'; access_log /tmp/j j;`, logs: 1, path: "/tmp/j", escape: EscapeJSON},
		{name: "syslog", mail: fm + "access_log syslog:server=127.0.0.1 f;", logs: 1, syslog: true},
		{name: "if", mail: fm + "access_log /tmp/x f if=$login;", logs: 1, path: "/tmp/x", cnd: true},
		{name: "stderr", mail: fm + `access_log "" f;`, logs: 1, path: ""},

		{name: "no format", mail: "access_log /tmp/x;", err: "log format is not specified"},
		{name: "unknown format", mail: fm + "access_log /tmp/x g;", err: `unknown log format "g"`},
		{name: "format after", mail: "access_log /tmp/x f;" + fm, err: `unknown log format "f"`},
		{name: "duplicate format", mail: fm + fm, err: `duplicate "log_format" name "f"`},
		{name: "bad escape", mail: "log_format f escape=xml x;", err: `unknown log format escaping "xml"`},
		{name: "unknown var", mail: "log_format f '$remote_addr $foo';", err: `unknown "foo" variable`},
		{name: "format args", mail: "log_format f;", err: `invalid number of arguments in "log_format" directive`},
		{name: "format in server", srv: "log_format f x;", err: `"log_format" directive is not allowed here`},
		{name: "off param", mail: "access_log off f;", err: `invalid parameter "f"`},
		{name: "bad buffer", mail: fm + "access_log /tmp/x f buffer=0;", err: `invalid buffer size "0"`},
		{name: "bad flush", mail: fm + "access_log /tmp/x f buffer=4k flush=x;", err: `invalid flush time "x"`},
		{name: "flush without buffer", mail: fm + "access_log /tmp/x f flush=1s;", err: `no buffer is defined for access_log "/tmp/x"`},
		{name: "bad gzip", mail: fm + "access_log /tmp/x f gzip=10;", err: `invalid compression level "10"`},
		{name: "bad param", mail: fm + "access_log /tmp/x f bogus;", err: `invalid parameter "bogus"`},
		{name: "bad if", mail: fm + "access_log /tmp/x f if=$nope;", err: `unknown "nope" variable`},
		{name: "syslog buffered", mail: fm + "access_log syslog:server=127.0.0.1 f buffer=1k;", err: "logs to syslog cannot be buffered"},
		{name: "bad syslog", mail: fm + "access_log syslog:foo f;", err: "syslog"},
		{name: "variable path", mail: fm + "access_log /tmp/$login f;", err: `variables in the "access_log" path are not supported`},
		{name: "conflict", mail: fm + "access_log /tmp/x f buffer=1k;", srv: "access_log /tmp/x f buffer=2k;",
			err: `access_log "/tmp/x" already defined with conflicting parameters`},
		{name: "same buffer shared", mail: fm + "access_log /tmp/x f buffer=1k;", srv: "access_log /tmp/x f; access_log /tmp/x f buffer=1k;",
			logs: 2, path: "/tmp/x", buffer: 1024},
	} {
		conf := "events {}\nmail {\n  auth_http 127.0.0.1:9/auth;\n" + c.mail +
			"\n  server { listen 127.0.0.1:27143; protocol imap; " + c.srv + " }\n}\n"
		diags, dir := checkString(t, conf)
		errs := strings.Join(diagLines(diags, dir, false), "\n")
		all := strings.Join(diagLines(diags, dir, true), "\n")
		if c.err != "" {
			if !strings.Contains(errs, c.err) || !strings.Contains(errs, "nginx.conf:") {
				t.Errorf("%s: errors %q, want %q with file:line", c.name, errs, c.err)
			}
			continue
		}
		if errs != "" {
			t.Errorf("%s: errors %q", c.name, errs)
			continue
		}
		if strings.Contains(c.mail+c.srv, "access_log") && !strings.Contains(all, `"access_log" is not in nginx 1.22.1`) {
			t.Errorf("%s: access_log not listed as mailgate-only:\n%s", c.name, all)
		}
		if strings.Contains(c.mail, "log_format") && !strings.Contains(all, `"log_format" is not in nginx 1.22.1`) {
			t.Errorf("%s: log_format not listed as mailgate-only:\n%s", c.name, all)
		}
		cfg, err := Load(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if refused := cfg.NginxRefuses; strings.Contains(c.mail+c.srv, "access_log") &&
			(len(refused) == 0 || !strings.Contains(refused[len(refused)-1].Msg, "directive is not allowed here")) {
			t.Errorf("%s: nginx's refusal %+v", c.name, refused)
		}
		logs := cfg.Mail.Servers[0].AccessLogs
		if len(logs) != c.logs {
			t.Errorf("%s: %d logs, want %d", c.name, len(logs), c.logs)
			continue
		}
		if c.logs == 0 {
			continue
		}
		l := logs[0]
		if c.syslog {
			if l.Syslog == nil || l.Syslog.Addr != "127.0.0.1:514" || l.File != nil {
				t.Errorf("%s: syslog %+v file %+v", c.name, l.Syslog, l.File)
			}
			continue
		}
		want := c.path
		if want != "" && !strings.HasPrefix(want, "/") {
			want = dir + "/" + want
		}
		if l.File == nil || l.File.Path != want || l.File.Buffer != c.buffer || l.File.Flush != c.flush || l.File.Gzip != c.gzip {
			t.Errorf("%s: file %+v, want %q buffer %d flush %v gzip %d", c.name, l.File, want, c.buffer, c.flush, c.gzip)
		}
		if l.Format.Escape != c.escape {
			t.Errorf("%s: escape %v", c.name, l.Format.Escape)
		}
		if (l.If != nil) != c.cnd {
			t.Errorf("%s: if %+v", c.name, l.If)
		}
		if len(logs) > 1 && logs[1].File == l.File && logs[1].File.Path != l.File.Path {
			t.Errorf("%s: files mixed up", c.name)
		}
	}
}

// Two servers naming the same file share one AccessLogFile.
func TestAccessLogFileShared(t *testing.T) {
	conf := `events {}
mail {
  auth_http 127.0.0.1:9/auth;
  log_format f '$login';
  access_log logs/a.log f;
  server { listen 127.0.0.1:27143; protocol imap; }
  server { listen 127.0.0.1:27110; protocol pop3; access_log logs/a.log f buffer=8k; access_log logs/b.log f; }
}
`
	cfg, _, err := loadString(t, conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.AccessLogFiles) != 2 {
		t.Fatalf("files %+v", cfg.AccessLogFiles)
	}
	a, b := cfg.Mail.Servers[0].AccessLogs, cfg.Mail.Servers[1].AccessLogs
	if len(a) != 1 || len(b) != 2 || a[0].File != b[0].File || a[0].File.Buffer != 8192 {
		t.Fatalf("logs %+v / %+v", a, b)
	}
}
