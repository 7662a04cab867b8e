package confparse

import "testing"

// Every mail directive's def string is one its own handler accepts, so
// that the table can be the one source of defaults.
func TestDefaultsParse(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatal(r)
		}
	}()
	vals := parseDefaults()
	for _, want := range []string{"imap_capabilities", "imap_client_buffer", "ssl_protocols", "ssl_session_timeout", "smtp_auth", "timeout"} {
		if vals[want] == nil {
			t.Errorf("no default for %s", want)
		}
	}
}
