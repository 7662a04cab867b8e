package confparse

import (
	"os"
	"testing"
)

// testCombinedPEM is a test-only certificate and its key in one file, for
// tests that need a server with TLS to load.
var testCombinedPEM = func() []byte {
	b, err := os.ReadFile("testdata/sslfile/combined.pem")
	if err != nil {
		panic(err)
	}
	return b
}()

func TestSSLFilesOnlyForTLSServers(t *testing.T) {
	// A garbage certificate matters only to a server that uses TLS.
	for _, tc := range []struct {
		server string
		fails  bool
	}{
		{"listen 127.0.0.1:27143; protocol imap;", false},
		{"listen 127.0.0.1:27143 ssl; protocol imap;", true},
		{"listen 127.0.0.1:27143; protocol imap; starttls on;", true},
		{"listen 127.0.0.1:27143; protocol imap; starttls only;", true},
		{"listen 127.0.0.1:27143; protocol imap; ssl on;", true},
	} {
		conf := "events {}\nmail {\nauth_http 127.0.0.1:1;\nssl_certificate c.pem; ssl_certificate_key c.pem;\nserver { " + tc.server + " }\n}\n"
		_, _, err := loadString(t, conf, map[string]string{"c.pem": "garbage"})
		if (err != nil) != tc.fails {
			t.Errorf("%s: error %v, want failure %v", tc.server, err, tc.fails)
		}
	}
}
