package mail

// mailgate-only auth_http_resolve (docs/auth_http.md "auth_http_resolve"):
// an Auth-Server host name is resolved through the resolver directive (A
// and AAAA, answers cached for their TTL or resolver's valid=) and every
// address is tried in turn, A ones first as nginx's resolver lists them,
// until one connects. With an IP address the dial is nginx's, unchanged.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"

	"mailgate/auth"
	"mailgate/mail/errlog"
	"mailgate/mail/resolve"
)

// errNotResolved ends a login whose upstream name did not resolve; it has
// been logged.
var errNotResolved = errors.New("upstream host name not resolved")

// dialUpstream connects to the upstream auth_http named.
func (e *engine) dialUpstream(ctx context.Context, res *auth.Result) (net.Conn, error) {
	dial := e.srv.opts.dial()
	pp := int(e.sc.conf.Proxy.ProxyProtocol)
	if res.ServerName == "" {
		return dial(ctx, res.Server, pp)
	}
	addrs, ok := e.resolveUpstream(ctx, res.ServerName)
	if !ok {
		return nil, errNotResolved
	}
	s := e.s
	s.Action = "connecting to upstream"
	var err error
	for i, a := range addrs {
		ap := netip.AddrPortFrom(a, res.Server.Port())
		// A silent address must not use up the time of the ones after
		// it: each try gets an equal share of what is left.
		try := ctx
		cancel := context.CancelFunc(func() {})
		if dl, has := ctx.Deadline(); has && i < len(addrs)-1 {
			try, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/time.Duration(len(addrs)-i)))
		}
		var c net.Conn
		c, err = dial(try, ap, pp)
		cancel()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || i == len(addrs)-1 {
			break
		}
		// nginx's upstream modules log each failed peer and go on.
		text := errlog.SysErrText(err)
		if errlog.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
			text = "(110: Connection timed out)"
		}
		s.Logf(errlog.Error, "connect() to %s failed %s", ap, text)
	}
	return nil, err
}

// resolveUpstream looks name up, logging failures as nginx's resolver
// does ("NAME could not be resolved (3: Host not found)").
func (e *engine) resolveUpstream(ctx context.Context, name string) ([]netip.Addr, bool) {
	s := e.s
	rc := e.sc.conf.Core.Resolver
	saved := s.Action
	s.Action = "resolving upstream"
	defer func() { s.Action = saved }()
	if rc == nil {
		s.Logf(errlog.Error, "no resolver defined to resolve %s", name)
		return nil, false
	}
	timeout := e.sc.conf.Core.ResolverTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := &resolve.Client{Conf: rc, Log: s.Log}
	addrs, code := cl.Lookup(rctx, name)
	if code != resolve.RcodeOK {
		if s.Context().Err() == nil {
			s.Logf(errlog.Error, "%s could not be resolved (%s: %s)", name, strconv.Itoa(code), resolve.ErrorText(code))
		}
		return nil, false
	}
	return addrs, true
}
