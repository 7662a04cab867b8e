// Package accesslog writes mailgate's access log (mailgate-only, issue 13,
// docs/access-log.md): one line per ended session, in a log_format of
// ngx_stream_log_module's grammar, to files (buffered as nginx's
// buffer=/flush=/gzip) or syslog. It is the engine's
// mail.Options.AccessLog. A log that cannot be written never fails a
// session: the error goes to the error log, at most once a minute per
// file.
package accesslog

import (
	"os"
	"strconv"
	"strings"
	"time"

	"mailgate/confparse"
	"mailgate/mail"
)

// env is what a line needs besides the session.
type env struct {
	hostname string
	pid      string
}

// value is variable name's value for r, and whether it has one (a missing
// value is "-" with the default escaping, empty otherwise).
func (v *env) value(name string, r *mail.SessionRecord) (string, bool) {
	switch name {
	case "remote_addr":
		return r.ClientIP, true
	case "remote_port":
		if r.Client.IsValid() {
			return strconv.Itoa(int(r.Client.Port())), true
		}
		return "", true
	case "server_addr":
		if r.Local.IsValid() {
			return r.Local.Addr().Unmap().String(), true
		}
		if strings.HasPrefix(r.Listen, "unix:") {
			return "unix:", true
		}
		return "", false
	case "server_port":
		if r.Local.IsValid() {
			return strconv.Itoa(int(r.Local.Port())), true
		}
		return "", true
	case "protocol":
		return r.Protocol, true
	case "login":
		return r.Login, r.Login != ""
	case "auth_status":
		return r.AuthStatus, r.AuthStatus != ""
	case "upstream_addr":
		return r.Upstream, r.Upstream != ""
	case "bytes_sent":
		return strconv.FormatInt(r.BytesSent, 10), true
	case "bytes_received":
		return strconv.FormatInt(r.BytesReceived, 10), true
	case "upstream_bytes_sent":
		return strconv.FormatInt(r.UpstreamBytesSent, 10), r.UpstreamTried
	case "upstream_bytes_received":
		return strconv.FormatInt(r.UpstreamBytesReceived, 10), r.UpstreamTried
	case "session_time":
		return msecText(r.End.Sub(r.Start)), true
	case "status":
		return strconv.Itoa(r.Status), true
	case "end_reason":
		return string(r.EndReason), r.EndReason != ""
	case "ssl_protocol":
		return r.TLSProtocol, r.TLSProtocol != ""
	case "ssl_cipher":
		return r.TLSCipher, r.TLSCipher != ""
	case "time_local":
		return r.End.Format("02/Jan/2006:15:04:05 -0700"), true
	case "time_iso8601":
		return r.End.Format("2006-01-02T15:04:05-07:00"), true
	case "msec":
		return msecText(time.Duration(r.End.UnixNano())), true
	case "connection":
		return strconv.FormatUint(r.ID, 10), true
	case "hostname":
		return v.hostname, true
	case "pid":
		return v.pid, true
	}
	return "", false
}

// msecText is seconds with millisecond resolution, "12.345".
func msecText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ms := d.Milliseconds()
	return strconv.FormatInt(ms/1000, 10) + "." + pad3(ms%1000)
}

func pad3(n int64) string {
	s := strconv.FormatInt(n, 10)
	return strings.Repeat("0", 3-len(s)) + s
}

// appendLine appends the line of format f for r (without the newline).
func (v *env) appendLine(dst []byte, f *confparse.LogFormat, r *mail.SessionRecord) []byte {
	for _, op := range f.Ops {
		if op.Var == "" {
			dst = append(dst, op.Lit...)
			continue
		}
		val, ok := v.value(op.Var, r)
		switch {
		case !ok && f.Escape == confparse.EscapeDefault:
			dst = append(dst, '-')
		case !ok:
		case f.Escape == confparse.EscapeJSON:
			dst = AppendJSON(dst, val)
		case f.Escape == confparse.EscapeNone:
			dst = append(dst, val...)
		default:
			dst = AppendEscaped(dst, val)
		}
	}
	return dst
}

// condition evaluates an if= parameter: false when it is "" or "0".
func (v *env) condition(ops []confparse.LogOp, r *mail.SessionRecord) bool {
	if ops == nil {
		return true
	}
	var b []byte
	for _, op := range ops {
		if op.Var == "" {
			b = append(b, op.Lit...)
		} else if val, ok := v.value(op.Var, r); ok {
			b = append(b, val...)
		}
	}
	return len(b) != 0 && string(b) != "0"
}

const upperHex = "0123456789ABCDEF"

// AppendEscaped is nginx's default escaping of a variable in a log line:
// `"`, `\`, control bytes, DEL and bytes above 0x7E as \xHH.
func AppendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7E || c == '"' || c == '\\' {
			dst = append(dst, '\\', 'x', upperHex[c>>4], upperHex[c&0xF])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// AppendJSON is nginx's escape=json (ngx_escape_json): `"` and `\`
// backslashed, control bytes as \n, \r, \t, \b, \f or \u00hh; other
// bytes (UTF-8 included) as they are.
func AppendJSON(dst []byte, s string) []byte {
	const lowerHex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20:
			dst = append(dst, c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xF])
		}
	}
	return dst
}

func newEnv() *env {
	h, _ := os.Hostname()
	return &env{hostname: strings.ToLower(h), pid: strconv.Itoa(os.Getpid())}
}
