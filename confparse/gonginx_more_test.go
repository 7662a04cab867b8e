package confparse

// Three more places where gonginx's tokens are not nginx's, found while
// deciding whether gonginx could do the lexing with our layer patching its
// traps (it cannot: every patch needs to know nginx's tokens first). Each
// case shows gonginx's tokens and checks Load against what nginx 1.22.1
// does with the same text (nginx -T output checked by hand, 2026-11-26).

import (
	"strings"
	"testing"
)

func gonginxCaps(t *testing.T, conf string) ([]string, error) {
	t.Helper()
	c, err := gonginxParse(t, conf)
	if err != nil {
		return nil, err
	}
	d := findDirective(c, "imap_capabilities")
	if d == nil {
		return nil, nil
	}
	var ps []string
	for _, p := range d.GetParameters() {
		ps = append(ps, p.Value)
	}
	return ps, nil
}

func TestTrapMoreGonginxTokens(t *testing.T) {
	const head = "events {}\nmail {\nauth_http 127.0.0.1:1;\n"
	const tail = "server { listen 127.0.0.1:27001; protocol imap; }\n}\n"
	tests := []struct {
		name     string
		caps     string
		gonginx  []string // what gonginx returned when this test was written
		want     []string // nginx's arguments
		wantLoad string   // or nginx's error
	}{
		{
			// nginx: a backslash escapes any character, so "a\\" ends at
			// the second quote. gonginx only knows \", and reads on.
			name: "escaped backslash before the closing quote", caps: `"a\\" "b"`,
			gonginx: []string{`"a\\" "`, `b"`}, want: []string{`a\`, "b"},
		},
		{
			// nginx works on bytes; gonginx reads runes and turns a byte
			// that is not UTF-8 into U+FFFD.
			name: "Latin-1 byte", caps: "\"caf\xe9\"",
			gonginx: []string{"\"caf\uFFFD\""}, want: []string{"caf\xe9"},
		},
		{
			// nginx wants a space, ';' or '{' after a closing quote.
			name: "text glued to a closing quote", caps: `"a"b`,
			gonginx: []string{`"a"`, "b"}, wantLoad: `unexpected "b" in @DIR@/nginx.conf:4`,
		},
	}
	for _, tt := range tests {
		conf := head + "imap_capabilities " + tt.caps + ";\n" + tail
		got, err := gonginxCaps(t, conf)
		if err != nil || strings.Join(got, "\x00") != strings.Join(tt.gonginx, "\x00") {
			t.Logf("%s: gonginx now gives %q (err %v), was %q", tt.name, got, err, tt.gonginx)
		}
		if tt.wantLoad != "" {
			if got := loadErr(t, conf); got != tt.wantLoad {
				t.Errorf("%s: Load error %q, want %q", tt.name, got, tt.wantLoad)
			}
			continue
		}
		cfg, _ := mustLoad(t, conf)
		if caps := cfg.Mail.Servers[0].IMAP.Capabilities; strings.Join(caps, "\x00") != strings.Join(tt.want, "\x00") {
			t.Errorf("%s: capabilities %q, want %q", tt.name, caps, tt.want)
		}
	}
}
