package auth

import (
	"context"

	"mailgate/mail/errlog"
)

// LogFunc logs one line at an nginx level. The engine passes its session's
// Logf, which adds nginx's " while ..., client: ..." context.
type LogFunc func(l errlog.Level, format string, args ...any)

type logKey struct{}

// WithLog returns ctx carrying f: Do logs with it what nginx has no
// counterpart for and the caller cannot see in the result (a failover to
// an auth_http_backup server, a login cache that stopped answering).
func WithLog(ctx context.Context, f LogFunc) context.Context {
	return context.WithValue(ctx, logKey{}, f)
}

// DefaultLog is used when the context carries no LogFunc (nil: discard).
var DefaultLog LogFunc

func logf(ctx context.Context, l errlog.Level, format string, args ...any) {
	if f, ok := ctx.Value(logKey{}).(LogFunc); ok && f != nil {
		f(l, format, args...)
		return
	}
	if DefaultLog != nil {
		DefaultLog(l, format, args...)
	}
}
