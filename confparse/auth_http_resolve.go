package confparse

// mailgate-only auth_http_resolve (issue 14, docs/auth_http.md
// "auth_http_resolve"): an Auth-Server that is a host name, which nginx
// refuses ("sent invalid server address"), is resolved through the
// `resolver` directive. Off unless written; `mailgate check` lists every
// use and warns when no resolver is configured for a server that has it on.

func authHTTPResolveDirectives() []*directive {
	return []*directive{
		{name: "auth_http_resolve", module: "mail_auth_http", ctx: ctxMail | ctxServer, args: take1, set: setFlag, def: "off", merge: mergeScalar, mailgateOnly: true},
	}
}

func (l *loader) mergeAuthHTTPResolve(s *Server, sv *level) {
	s.AuthHTTP.Resolve = l.effOrDefault(s, sv, "auth_http_resolve").(bool)
}

// lintAuthHTTPResolve: auth_http_resolve on needs a resolver, or every
// host name fails with "no resolver defined to resolve".
func (l *loader) lintAuthHTTPResolve(adv advise) {
	for _, s := range l.cfg.Mail.Servers {
		if s.AuthHTTP.Resolve && s.Core.Resolver == nil {
			adv(s.Sources["auth_http_resolve"], `"auth_http_resolve on" without "resolver"`,
				"an Auth-Server host name is then refused with \"no resolver defined to resolve\"; add \"resolver ADDRESS;\"")
		}
	}
}
