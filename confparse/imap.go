package confparse

// ngx_mail_imap_module.

var imapAuthNames = []string{"plain", "login", "cram-md5", "external", "oauthbearer", "xoauth2"}

func imapDirectives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		{name: "imap_client_buffer", module: "mail_imap", ctx: ms, args: take1, set: setSize, def: "4k", merge: mergeScalar},
		{name: "imap_capabilities", module: "mail_imap", ctx: ms, args: oneMore, set: setArray, def: "IMAP4 IMAP4rev1 UIDPLUS", merge: mergeArray},
		{name: "imap_auth", module: "mail_imap", ctx: ms, args: oneMore, set: setBitmask(imapAuthNames...), def: "plain", merge: mergeBitmask},
	}
}

func (l *loader) mergeIMAP(s *Server, sv *level) error {
	c := &s.IMAP
	// Every IMAP directive has a default (the table's def).
	c.ClientBuffer = l.effOrDefault(s, sv, "imap_client_buffer").(int)
	c.Auth = authMask(l.effOrDefault(s, sv, "imap_auth").(*bitmaskVal))
	c.Capabilities = l.effOrDefault(s, sv, "imap_capabilities").([]string)
	l.mergeIMAPID(s, sv) // mailgate-only (imapid.go)
	return nil
}
