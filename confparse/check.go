package confparse

// lint adds Check's mailgate-only advice about a configuration that loaded
// without errors. Each check lives in the file of the module whose
// directives it looks at; lint runs them in a fixed order, so check's
// output is stable.
func (l *loader) lint() {
	adv := func(pos Pos, msg, extra string) {
		l.diags = append(l.diags, Diag{Sev: SevWarn, Msg: msg, Pos: pos, Extra: extra, MailgateOnly: true})
	}
	l.lintCore(adv)
	l.lintAdmin(adv)
	l.lintErrorLogs(adv)
	for _, lv := range append([]*level{l.mail}, l.servers...) {
		if lv != nil {
			lintSSLLevel(lv, adv)
			lintProxyLevel(lv, adv)
			lintSessionCacheLevel(lv, adv)
		}
	}
	if l.cfg.Mail == nil {
		return
	}
	l.lintSMTPOnlyDirectives(adv)
	l.lintAuthOfOtherProtocol(adv)
	l.lintAuthHeaders(adv)
	l.lintAuthServedByHTTP(adv)
	l.lintAuthHTTPResolve(adv)
	l.lintServerNameCertificates(adv)
	l.lintOldProtocols(adv)
	l.lintConfCommands(adv)      // sslconfcmd.go
	l.lintTLSOrder(adv)          // sslconfcmd.go
	l.lintSessionResumption(adv) // sslconfcmd.go
	l.lintPlainPasswords(adv)
	l.lintUpstreamTLS(adv) // mailgate-only (upstream_tls.go)
}

// advise records one piece of check's advice: where, what, and why.
type advise func(pos Pos, msg, extra string)
