package mail

// mailgate-only IMAP ID (RFC 2971, docs/imap.md "ID"): what the engine does
// with the fields the imap module left on the session. The auth_http
// request gets them in Auth-IMAP-ID (imap_id on), and with imap_forward_id
// on the upstream login starts with an ID of the client's fields plus its
// addresses, as Dovecot's proxy sends them.

import (
	"strconv"
	"strings"

	"mailgate/confparse"
)

// IDField is one field/value pair of an IMAP ID command. Nil says the
// value was NIL (Value is then empty).
type IDField struct {
	Name  string
	Value string
	Nil   bool
}

// Auth-IMAP-ID bounds: each value is cut at idHeaderValueMax octets and
// pairs that would take the header past idHeaderMax bytes are left off,
// so that a client cannot make the auth server's request too large.
const (
	idHeaderValueMax = 256
	idHeaderMax      = 2048
)

// IDHeaderName is the auth_http request header with the client's ID fields.
const IDHeaderName = "Auth-IMAP-ID"

// appendIDString appends s as an IMAP quoted string: control bytes
// (0x00-0x1F, 0x7F) become a space, '"' and '\' are escaped.
func appendIDString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			c = ' '
		case c == '"' || c == '\\':
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}

func appendIDValue(b []byte, f IDField, max int) []byte {
	if f.Nil {
		return append(b, "NIL"...)
	}
	v := f.Value
	if max > 0 && len(v) > max {
		v = v[:max]
	}
	return appendIDString(b, v)
}

// idHeader is the Auth-IMAP-ID value for the session's ID fields
// ("NIL" for ID NIL or "()"); ok false when the client sent no ID.
func idHeader(s *Session) (string, bool) {
	if !s.IDSent {
		return "", false
	}
	if len(s.IDFields) == 0 {
		return "NIL", true
	}
	var b []byte
	for _, f := range s.IDFields {
		p := appendIDString(nil, f.Name)
		p = append(p, ' ')
		p = appendIDValue(p, f, idHeaderValueMax)
		if len(b)+1+len(p) > idHeaderMax {
			break
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, p...)
	}
	return string(b), true
}

// addIDHeader adds Auth-IMAP-ID to the auth_http request when imap_id is
// on and the client sent an ID.
func addIDHeader(conf *confparse.Server, s *Session, extra [][2]string) [][2]string {
	if conf == nil || !conf.IMAP.ID {
		return extra
	}
	if v, ok := idHeader(s); ok {
		extra = append(extra, [2]string{IDHeaderName, v})
	}
	return extra
}

// trustedIDField reports the field names a Dovecot backend trusts from a
// proxy (login_trusted_networks): a client's own are never forwarded.
func trustedIDField(name string) bool {
	n := strings.ToLower(name)
	for _, p := range []string{"x-originating-", "x-connected-", "x-proxy-", "x-session-", "x-forward-"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// forwardID is the parameter list of the ID mailgate sends the upstream
// before its login (imap_forward_id on): the client's fields, less those
// only a proxy may set, then x-originating-ip/-port (the client, after
// realip and the PROXY header) and x-connected-ip/-port (our address the
// client reached). nil when imap_forward_id is off or not IMAP.
func forwardID(conf *confparse.Server, s *Session) []byte {
	if conf == nil || conf.Protocol != confparse.ProtoIMAP || !conf.IMAP.ForwardID {
		return nil
	}
	b := []byte{'('}
	pair := func(name string, f IDField) {
		if len(b) > 1 {
			b = append(b, ' ')
		}
		b = appendIDString(b, name)
		b = append(b, ' ')
		b = appendIDValue(b, f, 0)
	}
	n := 0
	for _, f := range s.IDFields {
		// Room for the four of ours within RFC 2971's 30 pairs.
		if trustedIDField(f.Name) || n >= confparse.IMAPIDMaxPairs-4 {
			continue
		}
		pair(f.Name, f)
		n++
	}
	if s.Client.IsValid() {
		pair("x-originating-ip", IDField{Value: s.Client.Addr().Unmap().String()})
		pair("x-originating-port", IDField{Value: strconv.Itoa(int(s.Client.Port()))})
	}
	if s.Local.IsValid() {
		pair("x-connected-ip", IDField{Value: s.Local.Addr().Unmap().String()})
		pair("x-connected-port", IDField{Value: strconv.Itoa(int(s.Local.Port()))})
	}
	if len(b) == 1 {
		return []byte("NIL")
	}
	return append(b, ')')
}
