package confparse

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// ngx_mail_auth_http_module.

func authHTTPDirectives() []*directive {
	ms := ctxMail | ctxServer
	return []*directive{
		{name: "auth_http", module: "mail_auth_http", ctx: ms, args: take1, set: setAuthHTTP, merge: mergeSpecial},
		{name: "auth_http_timeout", module: "mail_auth_http", ctx: ms, args: take1, set: setMsec, def: "60s", merge: mergeScalar},
		{name: "auth_http_header", module: "mail_auth_http", ctx: ms, args: take2, set: setKeyval, merge: mergeArray},
		{name: "auth_http_pass_client_cert", module: "mail_auth_http", ctx: ms, args: take1, set: setFlag, def: "off", merge: mergeScalar},
	}
}

// authURL is a parsed auth_http value.
type authURL struct {
	url, network, addr, peer, host, uri string
	tls                                 bool // https:// (mailgate-only)
	pos                                 Pos
}

// parseAuthHTTP parses an auth_http URL as nginx does: an optional
// "http://" is stripped, then host[:port][/uri] or unix:PATH[:/uri]. The
// host is resolved now and only the first address is used. The error is
// nginx's message.
func parseAuthHTTP(raw string) (*authURL, string) {
	s := raw
	if strings.HasPrefix(s, "http://") {
		s = s[7:]
	}
	u, e := parseURL(s, urlOpts{uriPart: true, defaultPort: 80})
	if e != "" {
		return nil, fmt.Sprintf(`%s in auth_http "%s"`, e, s)
	}
	a := &authURL{url: raw, uri: u.uri}
	if a.uri == "" {
		a.uri = "/"
	}
	if u.unix {
		a.network, a.addr, a.peer, a.host = "unix", u.path, "unix:"+u.path, "localhost"
	} else {
		a.network = "tcp"
		a.addr = u.addrs[0].String()
		a.peer = addrText(u.addrs[0])
		a.host = u.host
	}
	return a, ""
}

// setAuthHTTP: no duplicate check, the last one wins.
func setAuthHTTP(l *loader, lv *level, n *node) error {
	a, e := parseAuthHTTPExt(n.args()[0], "auth_http")
	if e != "" {
		return l.fail(errAt(n, "%s", e))
	}
	a.pos = n.pos
	if a.tls {
		l.httpsAuth = append(l.httpsAuth, httpsAuth{a, lv, n.name()})
	}
	lv.vals[n.name()] = &setting{v: a, pos: n.pos}
	return nil
}

func (l *loader) mergeAuthHTTP(s *Server, sv *level) error {
	c := &s.AuthHTTP
	c.Timeout = 60 * time.Second
	if v := l.eff(s, sv, "auth_http_timeout"); v != nil {
		c.Timeout = v.(time.Duration)
	}
	if v := l.eff(s, sv, "auth_http_header"); v != nil {
		c.Headers = v.([][2]string)
	}
	if v := l.eff(s, sv, "auth_http_pass_client_cert"); v != nil {
		c.PassClientCert = v.(bool)
	}
	v := l.eff(s, sv, "auth_http")
	if v == nil {
		return l.fail(&Diag{Msg: fmt.Sprintf(`no "auth_http" is defined for server in %s`, sv.pos)})
	}
	a := v.(*authURL)
	c.URL, c.Network, c.Addr, c.Peer, c.Host, c.URI = a.url, a.network, a.addr, a.peer, a.host, a.uri
	c.Pos = s.Sources["auth_http"]
	c.TLS = a.tls
	l.mergeAuthHTTPResolve(s, sv) // mailgate-only (auth_http_resolve.go)
	return l.mergeAuthHTTPExt(s, sv)
}

// lintAuthHeaders warns about nginx variables in auth_http_header, which
// nginx sends as written.
func (l *loader) lintAuthHeaders(adv advise) {
	for _, n := range l.authHeaders {
		if v := n.args()[1]; varRef.MatchString(v) {
			adv(n.pos, fmt.Sprintf(`"auth_http_header %s" value "%s" is sent literally`, n.args()[0], v),
				"nginx does not expand variables in auth_http_header: the auth server receives the text as written, $ included")
		}
	}
}

// varRef matches an nginx variable reference: $name or ${name}.
var varRef = regexp.MustCompile(`\$(\{)?[A-Za-z0-9_]`)

// lintAuthServedByHTTP warns when an auth_http URL is served by a listen
// of this file's http{}: mailgate would then depend on the nginx it
// replaces, and every login fails once that nginx stops (the Mailu and
// BlueMind layout).
func (l *loader) lintAuthServedByHTTP(adv advise) {
	if len(l.httpListens) == 0 {
		return
	}
	type listenAt struct {
		u    *parsedURL
		text string
		pos  Pos
	}
	var listens []listenAt
	for _, n := range l.httpListens {
		// http's listen: port 80 when only an address is given
		if u, err := parseURL(n.args()[0], urlOpts{listen: true, defaultPort: 80}); err == "" {
			listens = append(listens, listenAt{u, n.args()[0], n.pos})
		}
	}
	seen := map[Pos]bool{}
	for _, s := range l.cfg.Mail.Servers {
		a := s.AuthHTTP
		if a.URL == "" || seen[a.Pos] {
			continue
		}
		seen[a.Pos] = true
		for _, ls := range listens {
			if !listenServes(ls.u, a.Network, a.Addr) {
				continue
			}
			adv(a.Pos, fmt.Sprintf(`auth_http "%s" is served by this file's http{} (listen %s in %s)`, a.URL, ls.text, ls.pos),
				"mailgate does not serve http{}: the auth endpoint lives in the nginx that mailgate replaces, so once that nginx stops every login fails; "+
					"keep nginx running for http{} on its own pid file, or point auth_http at the auth service itself")
			break
		}
	}
}

// listenServes reports whether an http listen accepts connections made
// to the auth server's dial address: the same address, or a wildcard
// listen on the same port and the address is a loopback one.
func listenServes(u *parsedURL, network, addr string) bool {
	if u.unix || network == "unix" {
		return u.unix && network == "unix" && u.path == addr
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	for _, la := range u.addrs {
		if la.Port() != ap.Port() {
			continue
		}
		if la.Addr() == ap.Addr() {
			return true
		}
		if la.Addr().IsUnspecified() && ap.Addr().IsLoopback() && la.Addr().Is4() == ap.Addr().Is4() {
			return true
		}
	}
	return false
}
