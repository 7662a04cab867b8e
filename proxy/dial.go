package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"mailgate/mail/errlog"
)

// Dial connects to the upstream the way nginx does (TCP, no keep-alive
// tweaks) and turns failures into nginx's log lines as a *LoginError:
//
//   - refused, host unreachable, reset, kernel connect timeout: nginx's
//     non-blocking connect learns these from the first recv() of the
//     greeting, so the log is "recv() failed (111: Connection refused)"
//     at error, while "reading response from upstream";
//   - the context deadline (the `timeout` timer): "upstream timed out
//     (110: Connection timed out)" at info, while "connecting to upstream";
//   - what connect() itself rejects: "connect() to ADDR failed (101:
//     Network is unreachable)" at error for network errors, at crit for
//     anything else (EADDRNOTAVAIL, EACCES...).
func Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	return DialProxy(ctx, addr, 0)
}

// DialProxy is Dial for a server with proxy_protocol on (version 1 or 2):
// nginx then learns of an asynchronous connect failure when it sends the
// PROXY header, so the log says "send() failed (111: Connection refused)
// while sending PROXY protocol header to upstream".
func DialProxy(ctx context.Context, addr netip.AddrPort, proxyProtocol int) (net.Conn, error) {
	// KeepAlive -1: nginx sets no keepalive on its upstream sockets, and
	// Go's default would cost four setsockopt() calls per connection.
	d := net.Dialer{KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err == nil {
		return c, nil
	}
	return nil, dialError(ctx, addr, proxyProtocol, err)
}

func dialError(ctx context.Context, addr netip.AddrPort, pp int, err error) *LoginError {
	if errors.Is(err, context.DeadlineExceeded) || errlog.IsTimeout(err) || ctx.Err() != nil {
		return &LoginError{
			Log:    "upstream timed out (110: Connection timed out)",
			Level:  LevelInfo,
			Action: ActionConnecting,
			Err:    err,
		}
	}
	errno := errlog.Errno(err)
	ok := errno != 0
	if !ok {
		return &LoginError{Log: "connect() to " + peerName(addr) + " failed: " + err.Error(), Level: LevelCrit, Action: ActionConnecting, Err: err}
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ETIMEDOUT, syscall.ECONNRESET:
		// Reported after connect() returned EINPROGRESS: nginx sees them
		// on its first I/O on the connection.
		if pp != 0 {
			return &LoginError{Log: "send() failed " + errlog.ErrnoText(errno), Level: LevelError, Action: ActionSendProxyProt, Err: err}
		}
		return &LoginError{Log: "recv() failed " + errlog.ErrnoText(errno), Level: LevelError, Action: ActionReading, Err: err}
	case syscall.ENETUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN, syscall.EAGAIN:
		// Returned by connect() itself.
		return &LoginError{Log: "connect() to " + peerName(addr) + " failed " + errlog.ErrnoText(errno), Level: LevelError, Action: ActionConnecting, Err: err}
	}
	return &LoginError{Log: "connect() to " + peerName(addr) + " failed " + errlog.ErrnoText(errno), Level: LevelCrit, Action: ActionConnecting, Err: err}
}

// peerName is the upstream as nginx names it: "127.0.0.1:110", "::1:110".
func peerName(a netip.AddrPort) string {
	return FormatAddr(a.Addr()) + ":" + strconv.Itoa(int(a.Port()))
}
