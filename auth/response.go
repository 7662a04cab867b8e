package auth

import (
	"bytes"
	"errors"
	"net/netip"

	"mailgate/mail/ngx"
)

// MaxResponse is nginx's buffer for the auth_http status line and headers.
// A header block that ends exactly at byte 1024 is accepted.
const MaxResponse = 1024

// Parse errors returned by ParseResponse.
var (
	// ErrIncomplete: the header block has not ended yet; read more.
	ErrIncomplete = errors.New("auth: response incomplete")
	// ErrTooLarge: no end of the header block within MaxResponse bytes.
	ErrTooLarge = errors.New("auth: response header block over 1024 bytes")
	// ErrInvalidResponse: a CR not followed by LF in the status line
	// (nginx: "sent invalid response").
	ErrInvalidResponse = errors.New("auth: invalid response")
	// ErrInvalidHeader: a malformed header line (nginx: "sent invalid
	// header in response").
	ErrInvalidHeader = errors.New("auth: invalid header in response")
)

// Response is a parsed auth_http header block, before the outcome rules of
// Decide. Values are the bytes as sent, trimmed of spaces as nginx does.
type Response struct {
	// Failed: an Auth-Status other than OK and WAIT was seen. Message is
	// the last such value (it may be empty). A later OK or WAIT does not
	// undo a failure.
	Failed  bool
	Message []byte
	// Wait: Auth-Status: WAIT was seen.
	Wait bool

	Server, Port []byte // last Auth-Server / Auth-Port, nil if absent
	User, Pass   []byte // last Auth-User / Auth-Pass, nil if absent
	ErrorCode    []byte // last Auth-Error-Code, nil if absent
	// UpstreamSSL is the last Auth-SSL (mailgate-only: TLS to the
	// upstream, on|off|starttls), nil if absent.
	UpstreamSSL []byte

	// HasWait: an Auth-Wait with a decimal value was seen; WaitSeconds is
	// the last such value. Non-numeric Auth-Wait values are ignored.
	HasWait     bool
	WaitSeconds int64
}

// ParseResponse parses an auth_http answer with nginx's rules (docs/auth_http.md, "Answer parsing").
// data is everything received so far. It returns the response and the
// number of bytes up to and including the empty line, or ErrIncomplete
// (need more bytes), ErrTooLarge (only the first MaxResponse bytes count),
// ErrInvalidResponse or ErrInvalidHeader.
func ParseResponse(data []byte) (*Response, int, error) {
	full := len(data) >= MaxResponse
	if full {
		data = data[:MaxResponse]
	}
	more := ErrIncomplete
	if full {
		more = ErrTooLarge
	}

	pos, err := skipStatusLine(data)
	if err != nil {
		if err == ErrIncomplete {
			return nil, 0, more
		}
		return nil, 0, err
	}

	r := &Response{}
	for {
		name, value, next, done, err := parseHeaderLine(data, pos)
		if err != nil {
			if err == ErrIncomplete {
				return nil, 0, more
			}
			return nil, 0, err
		}
		pos = next
		if done {
			return r, pos, nil
		}
		r.add(name, value)
	}
}

// skipStatusLine returns where the headers start: after the first line if
// data starts with "HTTP/", else 0.
func skipStatusLine(data []byte) (int, error) {
	const prefix = "HTTP/"
	n := min(len(data), len(prefix))
	if string(data[:n]) != prefix[:n] {
		return 0, nil
	}
	if n < len(prefix) {
		return 0, ErrIncomplete
	}
	for i := len(prefix); i < len(data); i++ {
		switch data[i] {
		case '\n':
			return i + 1, nil
		case '\r':
			if i+1 == len(data) {
				return 0, ErrIncomplete
			}
			if data[i+1] != '\n' {
				return 0, ErrInvalidResponse
			}
			return i + 2, nil
		}
	}
	return 0, ErrIncomplete
}

func isAlnum(c byte) bool {
	l := c | 0x20
	return l >= 'a' && l <= 'z' || c >= '0' && c <= '9'
}

// parseHeaderLine parses one line at pos. done is true for the empty line
// that ends the block. A name without a colon yields an empty value.
func parseHeaderLine(data []byte, pos int) (name, value []byte, next int, done bool, err error) {
	// eol checks a line end at i: LF, or CR followed by LF.
	eol := func(i int) (int, error) {
		if data[i] == '\n' {
			return i + 1, nil
		}
		if i+1 == len(data) {
			return 0, ErrIncomplete
		}
		if data[i+1] != '\n' {
			return 0, ErrInvalidHeader
		}
		return i + 2, nil
	}

	if pos >= len(data) {
		return nil, nil, 0, false, ErrIncomplete
	}
	if c := data[pos]; c == '\r' || c == '\n' {
		next, err := eol(pos)
		return nil, nil, next, err == nil, err
	}
	if !isAlnum(data[pos]) {
		return nil, nil, 0, false, ErrInvalidHeader
	}
	i := pos + 1
	for ; i < len(data); i++ {
		c := data[i]
		if isAlnum(c) || c == '-' {
			continue
		}
		switch c {
		case ':':
		case '\r', '\n':
			next, err := eol(i)
			return data[pos:i], data[i:i], next, false, err
		default:
			return nil, nil, 0, false, ErrInvalidHeader
		}
		break
	}
	if i == len(data) {
		return nil, nil, 0, false, ErrIncomplete
	}
	name = data[pos:i]
	i++ // the colon
	for i < len(data) && data[i] == ' ' {
		i++
	}
	start := i
	end := -1 // end of the value: first byte of trailing spaces or the line end
	for ; i < len(data); i++ {
		switch data[i] {
		case ' ':
			if end < 0 {
				end = i
			}
		case '\r', '\n':
			if end < 0 {
				end = i
			}
			next, err := eol(i)
			return name, data[start:end], next, false, err
		default:
			end = -1
		}
	}
	return nil, nil, 0, false, ErrIncomplete
}

func (r *Response) add(name, value []byte) {
	switch {
	case bytes.EqualFold(name, []byte("Auth-Status")):
		switch string(value) {
		case "OK":
		case "WAIT":
			r.Wait = true
		default:
			r.Failed = true
			r.Message = value
		}
	case bytes.EqualFold(name, []byte("Auth-Server")):
		r.Server = value
	case bytes.EqualFold(name, []byte("Auth-Port")):
		r.Port = value
	case bytes.EqualFold(name, []byte("Auth-User")):
		r.User = value
	case bytes.EqualFold(name, []byte("Auth-Pass")):
		r.Pass = value
	case bytes.EqualFold(name, []byte("Auth-Wait")):
		if n, ok := ngx.Atoi(value); ok {
			r.HasWait, r.WaitSeconds = true, n
		}
	case bytes.EqualFold(name, []byte("Auth-Error-Code")):
		r.ErrorCode = value
	case bytes.EqualFold(name, []byte("Auth-SSL")):
		r.UpstreamSSL = value
	}
}

// Decide applies the outcome rules of docs/auth_http.md ("Outcome") to a parsed answer to req.
// It uses req.Protocol and req.Method (POP3 and IMAP need a password from
// the auth server for apop, cram-md5 and external) and req.AuthWait. On a
// problem it returns the log text after "auth http server PEER ", for
// example "did not send server or port".
func Decide(r *Response, req *Request) (*Result, string) {
	protocol, method := req.Protocol, req.Method
	res := &Result{User: clone(r.User), Pass: clone(r.Pass)}

	failed := r.Failed
	if protocol == "smtp" {
		// nginx keeps the SMTP failure text itself as the error reply, so
		// an empty failure text is no failure there.
		failed = len(r.Message) > 0
	}
	if failed {
		res.Kind = Fail
		res.Message = string(r.Message)
		res.ErrorCode = string(r.ErrorCode)
		res.setWait(r)
		res.Requery = req.AuthWait && res.WaitSeconds > 0
		return res, ""
	}
	if r.Wait || req.AuthWait {
		// nginx's auth_wait flag outlives the answer that set it: it is
		// cleared only when a wait timer fires.
		res.Kind = Again
		res.setWait(r)
		return res, ""
	}
	if len(r.Server) == 0 || len(r.Port) == 0 {
		return nil, "did not send server or port"
	}
	if protocol != "smtp" && r.Pass == nil &&
		(method == MethodAPOP || method == MethodCRAMMD5 || method == MethodExternal) {
		return nil, "did not send password"
	}
	addr, ok := parseAddr(r.Server)
	name := ""
	if !ok && req.AllowHostName && IsHostName(r.Server) {
		name, ok = string(r.Server), true
	}
	if !ok {
		return nil, `sent invalid server address:"` + string(r.Server) + `"`
	}
	port, ok := ngx.Atoi(r.Port)
	if !ok || port < 1 || port > 65535 {
		return nil, `sent invalid server port:"` + string(r.Port) + `"`
	}
	res.Kind = OK
	res.Server = netip.AddrPortFrom(addr, uint16(port))
	res.ServerName = name
	res.ServerText = string(r.Server) + ":" + string(r.Port)
	res.UpstreamSSL = string(r.UpstreamSSL)
	return res, ""
}

func (res *Result) setWait(r *Response) {
	if r.HasWait {
		res.HasWait = true
		res.WaitSeconds = int(min(r.WaitSeconds, 1<<31-1))
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// parseAddr accepts what nginx's ngx_parse_addr accepts: an IPv4 address
// in nginx's lenient dotted form, else an IPv6 literal as nginx's own
// parser reads it (no brackets, no zone).
func parseAddr(s []byte) (netip.Addr, bool) {
	if a, ok := parseIPv4(s); ok {
		return netip.AddrFrom4(a), true
	}
	if a, ok := parseIPv6(s); ok {
		return netip.AddrFrom16(a), true
	}
	return netip.Addr{}, false
}

// parseIPv6 follows nginx's IPv6 parser, quirks included: one leading
// colon is skipped (":1:2:3:4:5:6:7:8" is accepted), a group has at most
// four hex digits, one "::" stands for the missing groups, a trailing
// colon after "::" adds a zero group, and a dotted IPv4 tail (nginx's
// lenient form) may end the address when two groups are left for it.
func parseIPv6(s []byte) ([16]byte, bool) {
	var out [16]byte
	if len(s) == 0 {
		return out, false
	}
	var words []uint16
	zeroAt := -1     // index in words where "::" stands
	groupStart := -1 // start of the current group, after a colon
	nibbles, word := 0, uint16(0)
	i := 0
	if s[0] == ':' {
		i = 1
	}
	v4tail := false
	for ; i < len(s); i++ {
		c := s[i]
		if c == ':' {
			if nibbles > 0 {
				words = append(words, word)
				if len(words) == 8 {
					return out, false
				}
				groupStart, nibbles, word = i+1, 0, 0
				continue
			}
			if zeroAt >= 0 {
				return out, false
			}
			groupStart, zeroAt = i+1, len(words)
			continue
		}
		if c == '.' && nibbles > 0 {
			if len(words) > 6 || groupStart < 0 {
				return out, false
			}
			v4, ok := parseIPv4(s[groupStart:])
			if !ok {
				return out, false
			}
			words = append(words, uint16(v4[0])<<8|uint16(v4[1]))
			word = uint16(v4[2])<<8 | uint16(v4[3])
			v4tail = true
			break
		}
		nibbles++
		if nibbles > 4 {
			return out, false
		}
		switch {
		case c >= '0' && c <= '9':
			word = word<<4 | uint16(c-'0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			word = word<<4 | uint16(c|0x20-'a'+10)
		default:
			return out, false
		}
	}
	if !v4tail && nibbles == 0 && zeroAt < 0 {
		return out, false
	}
	words = append(words, word)
	switch {
	case len(words) < 8 && zeroAt >= 0:
		fill := make([]uint16, 8-len(words))
		words = append(words[:zeroAt], append(fill, words[zeroAt:]...)...)
	case len(words) == 8 && zeroAt < 0:
	default:
		return out, false
	}
	for k, w := range words {
		out[2*k], out[2*k+1] = byte(w>>8), byte(w)
	}
	return out, true
}

// parseIPv4 is ngx_inet_addr as the auth_http answer reads it:
// 255.255.255.255 is refused because nginx cannot tell it from its error
// value.
func parseIPv4(s []byte) ([4]byte, bool) {
	a, ok := ngx.InetAddr(s)
	if !ok || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return [4]byte{}, false
	}
	return a.As4(), true
}

// IsHostName reports whether s is a DNS host name mailgate resolves for
// auth_http_resolve: at most 253 bytes of labels of 1-63 letters, digits
// and '-' (not at a label's start or end), separated by dots, with an
// optional final dot, and a last label that is not all digits (so that a
// malformed IPv4 address such as 1.2.3.256 stays nginx's invalid
// address).
func IsHostName(s []byte) bool {
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	allDigits := true
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
				allDigits = false
			case c == '-':
				allDigits = false
			default:
				return false
			}
			continue
		}
		label := s[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if i < len(s) {
			allDigits = true
		}
		start = i + 1
	}
	return !allDigits
}
