package confparse

import "time"

// ngx_mail_smtp_module.

var smtpAuthNames = []string{"plain", "login", "cram-md5", "external", "none", "oauthbearer", "xoauth2"}

func smtpDirectives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		{name: "smtp_client_buffer", module: "mail_smtp", ctx: ms, args: take1, set: setSize, def: "4k", merge: mergeScalar},
		{name: "smtp_greeting_delay", module: "mail_smtp", ctx: ms, args: take1, set: setMsec, def: "0", merge: mergeScalar},
		{name: "smtp_capabilities", module: "mail_smtp", ctx: ms, args: oneMore, set: setArray, merge: mergeArray},
		{name: "smtp_auth", module: "mail_smtp", ctx: ms, args: oneMore, set: setBitmask(smtpAuthNames...), def: "plain login", merge: mergeBitmask},
	}
}

func (l *loader) mergeSMTP(s *Server, sv *level) error {
	c := &s.SMTP
	c.Auth = AuthPlain | AuthLogin
	c.ClientBuffer = 4096
	if v := l.eff(s, sv, "smtp_client_buffer"); v != nil {
		c.ClientBuffer = v.(int)
	}
	if v := l.eff(s, sv, "smtp_greeting_delay"); v != nil {
		c.GreetingDelay = v.(time.Duration)
	}
	if v := l.eff(s, sv, "smtp_auth"); v != nil {
		c.Auth = authMask(v.(*bitmaskVal))
	}
	if v := l.eff(s, sv, "smtp_capabilities"); v != nil {
		c.Capabilities = v.([]string)
	}
	return nil
}
