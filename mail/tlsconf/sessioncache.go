package tlsconf

import (
	"fmt"
	"strconv"
	"strings"
)

// SessionCache is ssl_session_cache parsed: nginx's "off", "none",
// "builtin[:size]" and "shared:NAME:size", the last two together if both
// are written.
type SessionCache struct {
	// Off is "off": no session ID is even sent (TLS 1.2).
	Off bool
	// Builtin is true for "builtin[:size]"; BuiltinSize is its size in
	// sessions (OpenSSL's default 20480 for "builtin"; 0 is OpenSSL's "no
	// limit").
	Builtin     bool
	BuiltinSize int
	// SharedName and SharedSize (bytes) are "shared:NAME:size".
	SharedName string
	SharedSize int64
}

// DefaultBuiltinSessions is OpenSSL's SSL_SESSION_CACHE_MAX_SIZE_DEFAULT,
// which "builtin" without a size keeps.
const DefaultBuiltinSessions = 20480

// SessionsPerMegabyte is nginx's documented capacity of a shared cache:
// "one megabyte can store about 4000 sessions".
const SessionsPerMegabyte = 4000

// SharedSessions is how many sessions a shared cache of size bytes holds.
func SharedSessions(size int64) int {
	n := size * SessionsPerMegabyte / (1 << 20)
	if n < 1 {
		n = 1
	}
	return int(n)
}

// Stores reports whether the cache keeps sessions at all.
func (c SessionCache) Stores() bool { return c.Builtin || c.SharedName != "" }

// ParseSessionCache reads ssl_session_cache's words as written (joined by
// spaces), with nginx's rules: the last of "off"/"none" and the cache
// words decides, and builtin and shared may be combined.
func ParseSessionCache(text string) (SessionCache, error) {
	var c SessionCache
	for _, a := range strings.Fields(text) {
		switch {
		case a == "off":
			c = SessionCache{Off: true}
		case a == "none":
			c = SessionCache{}
		case a == "builtin":
			c.Off, c.Builtin, c.BuiltinSize = false, true, DefaultBuiltinSessions
		case strings.HasPrefix(a, "builtin:"):
			n, err := strconv.Atoi(a[len("builtin:"):])
			if err != nil || n < 0 {
				return SessionCache{}, fmt.Errorf("invalid session cache %q", a)
			}
			c.Off, c.Builtin, c.BuiltinSize = false, true, n
		case strings.HasPrefix(a, "shared:"):
			rest := a[len("shared:"):]
			i := strings.IndexByte(rest, ':')
			if i <= 0 {
				return SessionCache{}, fmt.Errorf("invalid session cache %q", a)
			}
			size, ok := parseSize(rest[i+1:])
			if !ok {
				return SessionCache{}, fmt.Errorf("invalid session cache %q", a)
			}
			c.Off, c.SharedName, c.SharedSize = false, rest[:i], size
		default:
			return SessionCache{}, fmt.Errorf("invalid session cache %q", a)
		}
	}
	return c, nil
}

// parseSize is nginx's ngx_parse_size: digits with an optional k or m.
func parseSize(s string) (int64, bool) {
	scale := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			scale, s = 1024, s[:len(s)-1]
		case 'm', 'M':
			scale, s = 1024*1024, s[:len(s)-1]
		}
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<62)/scale {
		return 0, false
	}
	return n * scale, true
}
