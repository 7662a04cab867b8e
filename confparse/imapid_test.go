package confparse

import (
	"reflect"
	"strings"
	"testing"
)

// imap_id, imap_id_fields and imap_forward_id: parsed and merged into
// IMAPConf, checked against RFC 2971's limits, listed by check as
// mailgate-only.
func TestIMAPIDDirectives(t *testing.T) {
	long := strings.Repeat("f", 31)
	for _, c := range []struct {
		mail, server string
		id, forward  bool
		fields       [][2]string
		err          string
	}{
		{},
		{mail: "imap_id on;", id: true},
		{mail: "imap_id on;", server: "imap_id off;"},
		{server: "imap_forward_id on;", forward: true},
		{mail: `imap_id_fields "name" "mailgate" "version" "1";`, fields: [][2]string{{"name", "mailgate"}, {"version", "1"}}},
		{mail: `imap_id_fields name mailgate; imap_id_fields vendor example;`, fields: [][2]string{{"name", "mailgate"}, {"vendor", "example"}}},
		{mail: `imap_id_fields name mailgate;`, server: `imap_id_fields name other;`, fields: [][2]string{{"name", "other"}}},
		{mail: `imap_id_fields name;`, err: `invalid number of arguments in "imap_id_fields" directive`},
		{mail: `imap_id_fields name a b;`, err: `name without value`},
		{mail: `imap_id_fields ` + long + ` x;`, err: `is longer than 30 octets`},
		{mail: `imap_id_fields x ` + strings.Repeat("v", 1025) + `;`, err: `is longer than 1024 octets`},
		{mail: `imap_id_fields "" x;`, err: `empty field name`},
		{mail: `imap_id_fields` + strings.Repeat(" a b", 31) + `;`, err: `too many fields`},
		{mail: `imap_id maybe;`, err: `it must be "on" or "off"`},
		{mail: `imap_id on; imap_id on;`, err: `"imap_id" directive is duplicate`},
	} {
		conf := "events {}\nmail {\n  auth_http 127.0.0.1:9/auth;\n" + c.mail +
			"\n  server { listen 127.0.0.1:27143; protocol imap; " + c.server + " }\n}\n"
		diags, dir := checkString(t, conf)
		errs := strings.Join(diagLines(diags, dir, false), "\n")
		all := strings.Join(diagLines(diags, dir, true), "\n")
		name := c.mail + " / " + c.server
		if c.err != "" {
			if !strings.Contains(errs, c.err) {
				t.Errorf("%q: errors %q, want %q", name, errs, c.err)
			}
			continue
		}
		if errs != "" {
			t.Errorf("%q: errors %q", name, errs)
			continue
		}
		for _, d := range []string{"imap_id", "imap_forward_id", "imap_id_fields"} {
			used := strings.Contains(c.mail+c.server, d+" ")
			if listed := strings.Contains(all, `"`+d+`" is not in nginx 1.22.1`); used != listed {
				t.Errorf("%q: %s used %v, listed as mailgate-only %v:\n%s", name, d, used, listed, all)
			}
		}
		cfg, _ := Check(Options{Prefix: dir + "/", ConfFile: "nginx.conf", Hostname: "mx"})
		if cfg == nil {
			t.Fatalf("%q: not loaded", name)
		}
		got := cfg.Mail.Servers[0].IMAP
		if got.ID != c.id || got.ForwardID != c.forward || !reflect.DeepEqual(got.IDFields, c.fields) {
			t.Errorf("%q: ID %v ForwardID %v IDFields %q, want %v %v %q", name, got.ID, got.ForwardID, got.IDFields, c.id, c.forward, c.fields)
		}
	}
}
