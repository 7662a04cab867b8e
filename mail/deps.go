package mail

// The engine's links to package auth (the auth_http client) and package
// proxy (upstream dial, login and relay). They are variables so the engine
// tests can put fakes in their place; production code never changes them.

import (
	"context"

	"mailgate/auth"
	"mailgate/confparse"
	"mailgate/proxy"
)

// AuthClient is what the engine needs from an auth_http client
// (*auth.Client); Options.NewAuth can supply another one in tests.
type AuthClient interface {
	Do(ctx context.Context, r *auth.Request) (*auth.Result, error)
}

var (
	newAuthClient = func(c *confparse.AuthHTTPConf) AuthClient { return auth.NewClient(c) }
	// proxyDial is proxy.DialProxy: with proxy_protocol on, nginx learns
	// of a failed connect while sending the header, which changes the log.
	proxyDial  = proxy.DialProxy
	proxyLogin = proxy.Login
	proxyRelay = proxy.Relay
)
