package confparse

// mailgate-only IMAP ID directives (RFC 2971, issue 14, docs/imap.md "ID"):
// imap_id answers ID before login, imap_id_fields is what it answers, and
// imap_forward_id sends the upstream an ID with the client's address before
// the upstream login. Off unless written; `mailgate check` lists every use.

import "strings"

// IMAP ID limits of RFC 2971: at most 30 pairs, a field name of at most 30
// octets and a value of at most 1024.
const (
	IMAPIDMaxPairs = 30
	IMAPIDMaxField = 30
	IMAPIDMaxValue = 1024
)

func imapIDDirectives() []*directive {
	ms := ctxMail | ctxServer
	m := "mail_imap"
	return []*directive{
		{name: "imap_id", module: m, ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "imap_id_fields", module: m, ctx: ms, args: twoMore, set: setIMAPIDFields, merge: mergeArray, mailgateOnly: true},
		{name: "imap_forward_id", module: m, ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
	}
}

// imap_id_fields NAME VALUE [NAME VALUE ...]; repeatable, the pairs add
// up within a level and a server's list replaces the mail{} one.
func setIMAPIDFields(l *loader, lv *level, n *node) error {
	a := n.args()
	if len(a)%2 != 0 {
		return l.fail(errAt(n, `invalid number of arguments in "%s" directive: name without value`, n.name()))
	}
	s := lv.get(n.name())
	if s == nil {
		s = &setting{v: []string(nil)}
	}
	have := len(s.v.([]string)) / 2
	if have+len(a)/2 > IMAPIDMaxPairs {
		return l.fail(errAt(n, `too many fields in "%s" directive: at most %d`, n.name(), IMAPIDMaxPairs))
	}
	for i, v := range a {
		max := IMAPIDMaxValue
		if i%2 == 0 {
			max = IMAPIDMaxField
			if v == "" {
				return l.fail(errAt(n, `empty field name in "%s" directive`, n.name()))
			}
		}
		if len(v) > max {
			return l.fail(errAt(n, `argument %d is longer than %d octets in "%s" directive`, i+1, max, n.name()))
		}
		if strings.ContainsAny(v, "\x00\r\n") {
			return l.fail(errAt(n, `invalid value "%s" in "%s" directive`, cstr(v), n.name()))
		}
	}
	s.v = append(s.v.([]string), a...)
	s.pos = n.pos
	lv.vals[n.name()] = s
	return nil
}

// mergeIMAPID fills the ID part of IMAPConf.
func (l *loader) mergeIMAPID(s *Server, sv *level) {
	c := &s.IMAP
	c.ID = l.effOrDefault(s, sv, "imap_id").(bool)
	c.ForwardID = l.effOrDefault(s, sv, "imap_forward_id").(bool)
	c.IDFields = nil
	if v, ok := l.eff(s, sv, "imap_id_fields").([]string); ok {
		for i := 0; i+1 < len(v); i += 2 {
			c.IDFields = append(c.IDFields, [2]string{v[i], v[i+1]})
		}
	}
}
