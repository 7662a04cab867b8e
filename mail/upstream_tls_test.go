package mail

import (
	"errors"
	"net/netip"
	"testing"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/proxy"
)

// The TLS of one login: the configured mode, or the auth server's
// Auth-SSL with proxy_ssl_auth_header on; an unknown value fails the login.
func TestUpstreamTLSParams(t *testing.T) {
	res := func(ssl string) *auth.Result {
		return &auth.Result{Kind: auth.OK, Server: netip.MustParseAddrPort("127.0.0.1:993"), ServerText: "127.0.0.1:993", UpstreamSSL: ssl}
	}
	load := func(c confparse.UpstreamTLSConf) *upstreamTLS {
		sc := &confparse.Server{Protocol: "imap"}
		sc.Proxy.TLS = c
		u, err := loadUpstreamTLS(sc)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := load(confparse.UpstreamTLSConf{}); u != nil {
		t.Fatalf("no proxy_ssl: %+v, want nil", u)
	}
	var none *upstreamTLS
	if p, err := none.params(res("on")); p != nil || err != nil {
		t.Errorf("without proxy_ssl_* Auth-SSL is ignored: %+v, %v", p, err)
	}
	for _, c := range []struct {
		name     string
		conf     confparse.UpstreamTLSConf
		header   string
		plain    bool
		starttls bool
		errText  string
		sni      string
		verName  string
	}{
		{name: "proxy_ssl on", conf: confparse.UpstreamTLSConf{Mode: confparse.UpstreamSSL}, verName: "127.0.0.1"},
		{name: "header ignored without proxy_ssl_auth_header", conf: confparse.UpstreamTLSConf{Mode: confparse.UpstreamSSL}, header: "off", verName: "127.0.0.1"},
		{name: "header off", conf: confparse.UpstreamTLSConf{Mode: confparse.UpstreamSSL, AuthHeader: true}, header: "off", plain: true},
		{name: "header starttls", conf: confparse.UpstreamTLSConf{AuthHeader: true}, header: "STARTTLS", starttls: true, verName: "127.0.0.1"},
		{name: "no header: configured plain", conf: confparse.UpstreamTLSConf{AuthHeader: true}, plain: true},
		{name: "bad header", conf: confparse.UpstreamTLSConf{AuthHeader: true, Mode: confparse.UpstreamSSL}, header: "yes",
			errText: `auth http server sent invalid "Auth-SSL" header: "yes"`},
		{name: "name and SNI", conf: confparse.UpstreamTLSConf{Mode: confparse.UpstreamStartTLS, Name: "imap.example", ServerName: true},
			starttls: true, sni: "imap.example", verName: "imap.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := load(c.conf)
			p, err := u.params(res(c.header))
			if c.errText != "" {
				var le *proxy.LoginError
				if !errors.As(err, &le) || le.Log != c.errText || p != nil {
					t.Fatalf("got %+v, %v; want error %q", p, err, c.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.plain {
				if p != nil {
					t.Fatalf("got %+v, want plain", p)
				}
				return
			}
			if p == nil || p.StartTLS != c.starttls || p.Config.ServerName != c.sni || p.Name != c.verName || p.Verify != nil {
				t.Fatalf("got %+v, want starttls %v, SNI %q, name %q", p, c.starttls, c.sni, c.verName)
			}
			if !p.Config.InsecureSkipVerify || p.Config.ClientSessionCache != nil {
				t.Errorf("config %+v: the checks are after the handshake; no session cache unless proxy_ssl_session_reuse", p.Config)
			}
		})
	}
}
