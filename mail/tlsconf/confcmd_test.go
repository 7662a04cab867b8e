package tlsconf

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestParseConfCommands(t *testing.T) {
	on, off := true, false
	tests := []struct {
		cmds  [][2]string
		check func(*ConfCommands) bool
	}{
		{[][2]string{{"Options", "-SessionTicket"}}, func(c *ConfCommands) bool { return c.Tickets != nil && *c.Tickets == off }},
		{[][2]string{{"Options", "-SessionTicket"}, {"options", "sessionticket"}}, func(c *ConfCommands) bool { return *c.Tickets == on }},
		{[][2]string{{"Options", "ServerPreference, -SessionTicket"}}, func(c *ConfCommands) bool { return *c.ServerPreference && !*c.Tickets }},
		{[][2]string{{"MinProtocol", "TLSv1.3"}, {"MaxProtocol", "None"}}, func(c *ConfCommands) bool {
			return c.MinSet && c.MinVersion == tls.VersionTLS13 && c.MaxSet && c.MaxVersion == 0
		}},
		{[][2]string{{"Ciphersuites", ""}}, func(c *ConfCommands) bool { return c.NoTLS13 && len(c.Unhonoured) == 0 }},
		{[][2]string{{"Ciphersuites", "TLS_AES_128_CCM_SHA256"}}, func(c *ConfCommands) bool { return c.NoTLS13 && len(c.Unhonoured) == 1 }},
		{[][2]string{{"Ciphersuites", "TLS_AES_128_GCM_SHA256"}}, func(c *ConfCommands) bool { return !c.NoTLS13 && len(c.Unhonoured) == 1 }},
		{[][2]string{{"CipherString", "ECDHE+AESGCM"}, {"Curves", "secp384r1"}}, func(c *ConfCommands) bool {
			return *c.CipherString == "ECDHE+AESGCM" && *c.Groups == "secp384r1" && len(c.Unhonoured) == 0
		}},
		{[][2]string{{"NumTickets", "4"}, {"Options", "Compression"}}, func(c *ConfCommands) bool {
			return len(c.Unhonoured) == 2 && c.Unhonoured[1].Why == "crypto/tls never compresses"
		}},
	}
	for _, tc := range tests {
		c, err := ParseConfCommands(tc.cmds)
		if err != nil {
			t.Errorf("%v: %v", tc.cmds, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("%v: got %+v", tc.cmds, c)
		}
	}
}

func TestParseSessionCache(t *testing.T) {
	tests := []struct {
		in   string
		want SessionCache
		bad  bool
	}{
		{"none", SessionCache{}, false},
		{"off", SessionCache{Off: true}, false},
		{"builtin", SessionCache{Builtin: true, BuiltinSize: DefaultBuiltinSessions}, false},
		{"builtin:1000", SessionCache{Builtin: true, BuiltinSize: 1000}, false},
		{"builtin:0", SessionCache{Builtin: true}, false},
		{"shared:SSL:10m", SessionCache{SharedName: "SSL", SharedSize: 10 << 20}, false},
		{"builtin:5 shared:a:b:64k", SessionCache{Builtin: true, BuiltinSize: 5, SharedName: "a", SharedSize: 0}, true},
		{"builtin:5 shared:a:64k", SessionCache{Builtin: true, BuiltinSize: 5, SharedName: "a", SharedSize: 64 << 10}, false},
		{"shared:SSL:1m off", SessionCache{Off: true}, false},
		{"builtin:x", SessionCache{}, true},
		{"shared:SSL", SessionCache{}, true},
		{"other", SessionCache{}, true},
	}
	for _, tc := range tests {
		got, err := ParseSessionCache(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if n := SharedSessions(1 << 20); n != 4000 {
		t.Errorf("1m holds %d sessions", n)
	}
	if n := SharedSessions(32 << 10); n != 125 {
		t.Errorf("32k holds %d sessions", n)
	}
}

func FuzzParseConfCommands(f *testing.F) {
	for _, s := range []string{"Options\x00-SessionTicket", "MinProtocol\x00TLSv1.2", "Ciphersuites\x00", "Groups\x00X25519:nosuch",
		"NoSuchCommand\x00value", "Options\x00SessionTicket, -ServerPreference", "CipherString\x00HIGH:!aNULL"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, value, _ := strings.Cut(s, "\x00")
		if strings.EqualFold(name, "Certificate") || strings.EqualFold(name, "PrivateKey") ||
			strings.EqualFold(name, "DHParameters") || strings.EqualFold(name, "ServerInfoFile") {
			return // files
		}
		c, err := ParseConfCommands([][2]string{{name, value}})
		if err != nil {
			if !strings.HasPrefix(err.Error(), `SSL_CONF_cmd("`+name+`", "`+value+`") failed (SSL: `) {
				t.Fatalf("error text %q", err)
			}
			return
		}
		if c == nil {
			t.Fatal("nil without error")
		}
	})
}

func FuzzParseSessionCache(f *testing.F) {
	for _, s := range []string{"none", "off", "builtin", "builtin:1000 shared:SSL:10m", "shared:a:1k", "builtin:-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseSessionCache(s)
		if err == nil && (c.BuiltinSize < 0 || c.SharedSize < 0 || (c.Off && c.Stores())) {
			t.Fatalf("%q: %+v", s, c)
		}
	})
}
