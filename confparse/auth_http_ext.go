package confparse

import (
	"strings"
	"time"

	"mailgate/mail/ngx"
)

// mailgate-only auth_http directives (docs/auth_http.md, "Extensions").
// nginx does not know any of them; each is off unless written, and
// `mailgate check` lists every use (directive.mailgateOnly).

func authHTTPExtDirectives() []*directive {
	ms := ctxMail | ctxServer
	m := "mail_auth_http"
	return []*directive{
		{name: "auth_http_keepalive", module: m, ctx: ms, args: take12, set: setAuthKeepalive, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_backup", module: m, ctx: ms, args: take1, set: setAuthBackup, merge: mergeArray, mailgateOnly: true},
		{name: "auth_http_fail_timeout", module: m, ctx: ms, args: take1, set: setMsec, def: "10s", merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_cache", module: m, ctx: ms, args: take1, set: setAuthCache, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_cache_valid", module: m, ctx: ms, args: take12, set: setAuthCacheValid, def: "5m 0", merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_cache_secret", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_throttle", module: m, ctx: ms, args: take123, set: setAuthThrottle, def: "off", merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_ssl_verify", module: m, ctx: ms, args: take1, set: setFlag, def: "on", merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_ssl_trusted_certificate", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_ssl_name", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_ssl_certificate", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
		{name: "auth_http_ssl_certificate_key", module: m, ctx: ms, args: take1, set: setStr, merge: mergeScalar, mailgateOnly: true},
	}
}

// authSSLDirectives are the directives that allow https:// in auth_http.
var authSSLDirectives = []string{"auth_http_ssl_verify", "auth_http_ssl_trusted_certificate", "auth_http_ssl_name",
	"auth_http_ssl_certificate", "auth_http_ssl_certificate_key"}

type keepaliveVal struct {
	n       int
	timeout time.Duration
}

// auth_http_keepalive off | N [TIMEOUT];
func setAuthKeepalive(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	a := n.args()
	v := &keepaliveVal{timeout: 60 * time.Second}
	if strings.EqualFold(a[0], "off") && len(a) == 1 {
		lv.vals[n.name()] = &setting{v: v, pos: n.pos}
		return nil
	}
	k, ok := ngx.Atoi(a[0])
	if !ok || k < 1 {
		return l.fail(errAt(n, `invalid value "%s" in "%s" directive`, cstr(a[0]), n.name()))
	}
	v.n = int(k)
	if len(a) == 2 {
		ms, ok := parseTime(a[1], false)
		if !ok || ms <= 0 {
			return l.fail(errAt(n, `invalid timeout "%s" in "%s" directive`, cstr(a[1]), n.name()))
		}
		v.timeout = msDuration(ms)
	}
	lv.vals[n.name()] = &setting{v: v, pos: n.pos}
	return nil
}

// auth_http_backup URL; (repeatable, tried in order)
func setAuthBackup(l *loader, lv *level, n *node) error {
	a, e := parseAuthHTTPExt(n.args()[0], n.name())
	if e != "" {
		return l.fail(errAt(n, "%s", e))
	}
	a.pos = n.pos
	if a.tls {
		l.httpsAuth = append(l.httpsAuth, httpsAuth{a, lv, n.name()})
	}
	s := lv.get(n.name())
	if s == nil {
		s = &setting{v: []*authURL(nil)}
	}
	s.v = append(s.v.([]*authURL), a)
	s.pos = n.pos
	lv.vals[n.name()] = s
	return nil
}

type cacheVal struct {
	kind string // "off", "memory", "redis"
	size int
	addr string
	db   int
}

// auth_http_cache off | memory[:SIZE] | redis://HOST:PORT[/DB];
func setAuthCache(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	a := n.args()[0]
	bad := func() error {
		return l.fail(errAt(n, `invalid value "%s" in "%s" directive`, cstr(a), n.name()))
	}
	v := &cacheVal{kind: "off"}
	switch {
	case a == "off":
	case a == "memory" || strings.HasPrefix(a, "memory:"):
		v.kind, v.size = "memory", 1<<20
		if rest, ok := strings.CutPrefix(a, "memory:"); ok {
			sz, ok := parseSize(rest)
			if !ok || sz < 4096 {
				return bad()
			}
			v.size = int(sz)
		}
	case strings.HasPrefix(a, "redis://"):
		v.kind = "redis"
		hp, db, hasDB := strings.Cut(a[len("redis://"):], "/")
		if hasDB {
			d, ok := ngx.Atoi(db)
			if !ok {
				return bad()
			}
			v.db = int(d)
		}
		// nginx's address parser; the host is resolved now, as auth_http's
		u, e := parseURL(hp, urlOpts{})
		if e != "" || u.unix || u.noPort || len(u.addrs) == 0 {
			return bad()
		}
		v.addr = u.addrs[0].String()
	default:
		return bad()
	}
	lv.vals[n.name()] = &setting{v: v, pos: n.pos}
	return nil
}

type cacheValidVal struct{ ok, fail time.Duration }

// auth_http_cache_valid TIME [TIME_FOR_FAILURES];
func setAuthCacheValid(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	var d [2]time.Duration
	for i, a := range n.args() {
		ms, ok := parseTime(a, false)
		if !ok {
			return l.fail(reason(n, "invalid value"))
		}
		d[i] = msDuration(ms)
	}
	lv.vals[n.name()] = &setting{v: &cacheValidVal{ok: d[0], fail: d[1]}, pos: n.pos}
	return nil
}

type throttleVal struct {
	ip, login int
	wait      time.Duration
}

// auth_http_throttle off | [ip=N/m] [login=N/m] [wait=TIME];
func setAuthThrottle(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v := &throttleVal{wait: 3 * time.Second}
	if len(n.args()) == 1 && n.args()[0] == "off" {
		lv.vals[n.name()] = &setting{v: v, pos: n.pos}
		return nil
	}
	for _, a := range n.args() {
		bad := func() error { return l.fail(errAt(n, `invalid parameter "%s"`, cstr(a))) }
		key, val, ok := strings.Cut(a, "=")
		if !ok {
			return bad()
		}
		switch key {
		case "ip", "login":
			num, per, ok := strings.Cut(val, "/")
			k, ok2 := ngx.Atoi(num)
			if !ok || !ok2 || k < 1 || (per != "m" && per != "min") {
				return bad()
			}
			if key == "ip" {
				v.ip = int(k)
			} else {
				v.login = int(k)
			}
		case "wait":
			s, ok := parseTime(val, true)
			if !ok {
				return bad()
			}
			v.wait = secDuration(s)
		default:
			return bad()
		}
	}
	if v.ip == 0 && v.login == 0 {
		return l.fail(errAt(n, `"%s" needs "ip=" or "login="`, n.name()))
	}
	lv.vals[n.name()] = &setting{v: v, pos: n.pos}
	return nil
}

// parseAuthHTTPExt parses a URL for auth_http or auth_http_backup. https://
// is accepted here and checked at merge time: it needs an auth_http_ssl_*
// directive, else nginx's own error is reported (see mergeAuthHTTPExt).
func parseAuthHTTPExt(raw, name string) (*authURL, string) {
	if rest, ok := strings.CutPrefix(raw, "https://"); ok {
		u, e := parseURL(rest, urlOpts{uriPart: true, defaultPort: 443})
		if e != "" || u.unix {
			// nginx's own message for this URL
			_, e := parseAuthHTTP(raw)
			return nil, strings.Replace(e, " in auth_http ", " in "+name+" ", 1)
		}
		a := &authURL{url: raw, uri: u.uri, network: "tcp", tls: true}
		if a.uri == "" {
			a.uri = "/"
		}
		a.addr = u.addrs[0].String()
		a.peer = addrText(u.addrs[0])
		a.host = u.host
		return a, ""
	}
	a, e := parseAuthHTTP(raw)
	if e != "" && name != "auth_http" {
		e = strings.Replace(e, " in auth_http ", " in "+name+" ", 1)
	}
	return a, e
}

func (a *authURL) target() AuthHTTPTarget {
	return AuthHTTPTarget{URL: a.url, Network: a.network, Addr: a.addr, Peer: a.peer, Host: a.host, URI: a.uri, TLS: a.tls}
}

// mergeAuthHTTPExt fills c.AuthHTTPExt. primary is the merged auth_http.
func (l *loader) mergeAuthHTTPExt(s *Server, sv *level) error {
	c := &s.AuthHTTP.AuthHTTPExt
	c.KeepaliveTimeout = 60 * time.Second
	if v := l.eff(s, sv, "auth_http_keepalive"); v != nil {
		k := v.(*keepaliveVal)
		c.Keepalive, c.KeepaliveTimeout = k.n, k.timeout
	}
	c.FailTimeout = 10 * time.Second
	if v := l.eff(s, sv, "auth_http_fail_timeout"); v != nil {
		c.FailTimeout = v.(time.Duration)
	}
	if v := l.eff(s, sv, "auth_http_backup"); v != nil {
		for _, a := range v.([]*authURL) {
			c.Backups = append(c.Backups, a.target())
		}
	}
	if v := l.eff(s, sv, "auth_http_cache"); v != nil {
		cv := v.(*cacheVal)
		if cv.kind != "off" {
			c.Cache, c.CacheSize, c.CacheAddr, c.CacheDB = cv.kind, cv.size, cv.addr, cv.db
		}
	}
	c.CacheValid = 5 * time.Minute
	if v := l.eff(s, sv, "auth_http_cache_valid"); v != nil {
		cv := v.(*cacheValidVal)
		c.CacheValid, c.CacheValidFail = cv.ok, cv.fail
	}
	if v := l.eff(s, sv, "auth_http_cache_secret"); v != nil {
		c.CacheSecret = v.(string)
	}
	if v := l.eff(s, sv, "auth_http_throttle"); v != nil {
		t := v.(*throttleVal)
		c.ThrottleIP, c.ThrottleLogin, c.ThrottleWait = t.ip, t.login, t.wait
	}

	c.SSL.Verify = true
	for _, name := range authSSLDirectives {
		v := l.eff(s, sv, name)
		if v == nil {
			continue
		}
		c.SSL.Enabled = true
		switch name {
		case "auth_http_ssl_verify":
			c.SSL.Verify = v.(bool)
		case "auth_http_ssl_trusted_certificate":
			c.SSL.TrustedCertificate = l.confPath(v.(string))
		case "auth_http_ssl_name":
			c.SSL.Name = v.(string)
		case "auth_http_ssl_certificate":
			c.SSL.Certificate = l.confPath(v.(string))
		case "auth_http_ssl_certificate_key":
			c.SSL.Key = l.confPath(v.(string))
		}
	}
	if (c.SSL.Certificate == "") != (c.SSL.Key == "") {
		return l.fail(&Diag{Sev: SevEmerg, Msg: `"auth_http_ssl_certificate" and "auth_http_ssl_certificate_key" must be set together`, Pos: s.Pos})
	}
	return nil
}

type httpsAuth struct {
	a    *authURL
	lv   *level
	name string
}

func hasAuthSSL(lv *level) bool {
	for _, name := range authSSLDirectives {
		if lv != nil && lv.get(name) != nil {
			return true
		}
	}
	return false
}

// checkHTTPSAuth: nginx 1.22.1 knows no https:// in auth_http. Without an
// auth_http_ssl_* directive in the same block or in mail{}, such a URL
// fails with nginx's own message ("invalid port in auth_http ..."). The
// check runs at the end of mail{} because the directive may follow the
// URL; so when a file has a second error later in mail{}, that one is
// reported instead of nginx's first.
func (l *loader) checkHTTPSAuth() error {
	for _, h := range l.httpsAuth {
		if hasAuthSSL(h.lv) || hasAuthSSL(l.mail) {
			continue
		}
		_, e := parseAuthHTTP(h.a.url)
		e = strings.Replace(e, " in auth_http ", " in "+h.name+" ", 1)
		if err := l.fail(&Diag{Sev: SevEmerg, Msg: e, Pos: h.a.pos,
			Extra: `mailgate can reach an https:// auth server: add "auth_http_ssl_verify on;" (and "auth_http_ssl_trusted_certificate FILE;" for a private CA)`}); err != nil {
			return err
		}
	}
	return nil
}
