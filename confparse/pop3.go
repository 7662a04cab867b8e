package confparse

// ngx_mail_pop3_module.

var pop3AuthNames = []string{"plain", "apop", "cram-md5", "external", "oauthbearer", "xoauth2"}

func pop3Directives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		{name: "pop3_capabilities", module: "mail_pop3", ctx: ms, args: oneMore, set: setArray, def: "TOP USER UIDL", merge: mergeArray},
		{name: "pop3_auth", module: "mail_pop3", ctx: ms, args: oneMore, set: setBitmask(pop3AuthNames...), def: "plain", merge: mergeBitmask},
	}
}

// authMask converts a bitmask value's words to AuthMethods.
func authMask(bv *bitmaskVal) AuthMethods {
	var m AuthMethods
	for _, w := range bv.words {
		switch w {
		case "plain":
			m |= AuthPlain
		case "login":
			m |= AuthLogin
		case "apop":
			m |= AuthAPOP
		case "cram-md5":
			m |= AuthCRAMMD5
		case "external":
			m |= AuthExternal
		case "none":
			m |= AuthNone
		case "oauthbearer":
			m |= AuthOAuthBearer
		case "xoauth2":
			m |= AuthXOAuth2
		}
	}
	return m
}

func (l *loader) mergePOP3(s *Server, sv *level) error {
	c := &s.POP3
	c.Auth = AuthPlain
	c.Capabilities = []string{"TOP", "USER", "UIDL"}
	if v := l.eff(s, sv, "pop3_auth"); v != nil {
		c.Auth = authMask(v.(*bitmaskVal))
	}
	if v := l.eff(s, sv, "pop3_capabilities"); v != nil {
		c.Capabilities = v.([]string)
	}
	return nil
}
