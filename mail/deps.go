package mail

// The engine's links to package auth (the auth_http client) and package
// proxy (upstream dial). Options can replace both, so that tests and
// fuzzers run the real engine against a fake auth server and upstream.

import (
	"context"
	"net"
	"net/netip"
	"time"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/proxy"
)

// AuthClient is what the engine needs from an auth_http client
// (*auth.Client); Options.NewAuth can supply another one in tests.
type AuthClient interface {
	Do(ctx context.Context, r *auth.Request) (*auth.Result, error)
}

// DialFunc opens an upstream connection (proxy.DialProxy by default). With
// proxy_protocol on, the PROXY header is sent as part of the dial: nginx
// learns of a failed connect while sending it, which changes the log.
type DialFunc func(ctx context.Context, addr netip.AddrPort, proxyProtocol int) (net.Conn, error)

func (o *Options) newAuth(c *confparse.AuthHTTPConf) AuthClient {
	if o.NewAuth != nil {
		return o.NewAuth(c)
	}
	return auth.NewClient(c)
}

func (o *Options) dial() DialFunc {
	if o.DialUpstream != nil {
		return o.DialUpstream
	}
	return proxy.DialProxy
}

// sleep waits d unless ctx ends first; it reports whether d passed.
func (o *Options) sleep(ctx context.Context, d time.Duration) bool {
	if o.Sleep != nil {
		return o.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
