package imap

// The mailgate-only ID command (RFC 2971, imap_id on; docs/imap.md "ID").
// nginx 1.22.1 does not know ID: with imap_id off (the default) the verb is
// unknown and gets nginx's "BAD invalid command".
//
//	id              ::= "ID" SPACE id_params_list
//	id_params_list  ::= "(" #(string SPACE nstring) ")" / nil
//
// The list is read strictly: quoted strings or literals ({n} and {n+}),
// pairs separated by one space, at most 30 pairs, a field of at most 30
// octets, a value of at most 1024 octets or NIL, nothing after ")".
// Field names are not checked for duplicates (RFC 2971 says nothing of
// them).

import (
	"bytes"
	"errors"

	"mailgate/confparse"
	"mailgate/mail"
)

var errIDSyntax = errors.New("imap: invalid ID parameter list")

// parseIDList parses an ID parameter list: p runs from the byte after "ID "
// up to the command's LF (excluded; a CR before it is dropped). ID NIL
// and "()" give no fields.
func parseIDList(p []byte) ([]mail.IDField, error) {
	p = bytes.TrimSuffix(p, []byte("\r"))
	if len(p) == 3 && bytes.EqualFold(p, []byte("NIL")) {
		return nil, nil
	}
	if len(p) < 2 || p[0] != '(' {
		return nil, errIDSyntax
	}
	r := idReader{b: p, i: 1}
	var fields []mail.IDField
	if r.peek() == ')' {
		r.i++
		if r.i != len(p) {
			return nil, errIDSyntax
		}
		return nil, nil
	}
	for {
		name, isNil, ok := r.nstring(confparse.IMAPIDMaxField)
		if !ok || isNil || len(name) == 0 {
			return nil, errIDSyntax
		}
		if r.peek() != ' ' {
			return nil, errIDSyntax
		}
		r.i++
		value, isNil, ok := r.nstring(confparse.IMAPIDMaxValue)
		if !ok {
			return nil, errIDSyntax
		}
		if len(fields) == confparse.IMAPIDMaxPairs {
			return nil, errIDSyntax
		}
		fields = append(fields, mail.IDField{Name: string(name), Value: string(value), Nil: isNil})
		switch r.peek() {
		case ' ':
			r.i++
		case ')':
			r.i++
			if r.i != len(p) {
				return nil, errIDSyntax
			}
			return fields, nil
		default:
			return nil, errIDSyntax
		}
	}
}

type idReader struct {
	b []byte
	i int
}

func (r *idReader) peek() byte {
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// nstring reads a quoted string, a literal or NIL of at most max octets.
func (r *idReader) nstring(max int) (s []byte, isNil, ok bool) {
	switch c := r.peek(); {
	case c == '"':
		r.i++
		for r.i < len(r.b) {
			c := r.b[r.i]
			r.i++
			switch c {
			case '"':
				return s, false, len(s) <= max
			case '\\':
				if r.i >= len(r.b) || (r.b[r.i] != '"' && r.b[r.i] != '\\') {
					return nil, false, false
				}
				s = append(s, r.b[r.i])
				r.i++
			case '\r', '\n', 0:
				return nil, false, false
			default:
				if c >= 0x80 {
					return nil, false, false // TEXT-CHAR is 7-bit: 8-bit data needs a literal
				}
				s = append(s, c)
			}
			if len(s) > max {
				return nil, false, false
			}
		}
		return nil, false, false
	case c == '{':
		n, end, ok := literalHead(r.b[r.i:])
		if !ok || n > max {
			return nil, false, false
		}
		start := r.i + end
		if start+n > len(r.b) {
			return nil, false, false
		}
		s = bytes.Clone(r.b[start : start+n])
		if bytes.IndexByte(s, 0) >= 0 {
			return nil, false, false // literal8 only
		}
		r.i = start + n
		return s, false, true
	case c == 'N' || c == 'n':
		if r.i+3 <= len(r.b) && bytes.EqualFold(r.b[r.i:r.i+3], []byte("NIL")) {
			r.i += 3
			return nil, true, true
		}
	}
	return nil, false, false
}

// literalHead reads "{n}\r\n" or "{n+}\r\n" (the CR may be missing, as
// nginx allows a bare LF) at the start of b: the length and where the
// literal's data starts.
func literalHead(b []byte) (n, dataAt int, ok bool) {
	if len(b) < 4 || b[0] != '{' {
		return 0, 0, false
	}
	i := 1
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		if n > confparse.IMAPIDMaxValue {
			return 0, 0, false
		}
		i++
	}
	if i == 1 {
		return 0, 0, false
	}
	if i < len(b) && b[i] == '+' {
		i++
	}
	if i >= len(b) || b[i] != '}' {
		return 0, 0, false
	}
	i++
	if i < len(b) && b[i] == '\r' {
		i++
	}
	if i >= len(b) || b[i] != '\n' {
		return 0, 0, false
	}
	return n, i + 1, true
}

// idLiteralBefore reports whether line (a command's bytes up to an LF,
// excluded) ends in a literal's announcement "{n}" or "{n+}" (a CR
// before the LF allowed): its length, and whether it is synchronizing.
func idLiteralBefore(line []byte) (n int, sync, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	j := bytes.LastIndexByte(line, '{')
	if j < 0 {
		return 0, false, false
	}
	head := append(bytes.Clone(line[j:]), '\n')
	n, _, ok = literalHead(head)
	return n, !bytes.HasSuffix(line, []byte("+}")), ok
}

// id answers ID: "* ID (<imap_id_fields>)" or "* ID NIL", then the tagged
// OK; the client's fields stay on the session for auth_http and the
// upstream.
func (h *handler) id(c *command) (mail.Next, error) {
	h.s.IDFields = c.idFields
	h.s.IDSent = true
	h.s.Write(h.caps.idReply)
	h.s.Write(h.tagged(nil, "OK ID completed\r\n"))
	return mail.Continue, nil
}

// idOn: imap_id on for this server.
func (h *handler) idOn() bool { return h.s.Conf != nil && h.s.Conf.IMAP.ID }

// buildIDReply renders the untagged "* ID ..." line of imap_id_fields.
func buildIDReply(fields [][2]string) []byte {
	if len(fields) == 0 {
		return []byte("* ID NIL\r\n")
	}
	b := []byte("* ID (")
	for i, f := range fields {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendQuoted(b, f[0])
		b = append(b, ' ')
		b = appendQuoted(b, f[1])
	}
	return append(b, ")\r\n"...)
}

// appendQuoted appends s as an IMAP quoted string (confparse has refused
// CR, LF and NUL in imap_id_fields).
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
