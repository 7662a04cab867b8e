package confparse

import (
	"fmt"
	"strings"

	"mailgate/mail/ngx"
)

// ctxMask says where a directive may appear.
type ctxMask uint8

const (
	ctxMain ctxMask = 1 << iota
	ctxEvents
	ctxMail   // mail{} level
	ctxServer // mail server{} level
	ctxOpaque // inside http{} or stream{}: not validated
	ctxAny    = ctxMain | ctxEvents | ctxMail | ctxServer | ctxOpaque
)

// argMask is the accepted argument count (like NGX_CONF_TAKEn etc.).
type argMask uint16

const (
	take0 argMask = 1 << iota
	take1
	take2
	take3
	take4
	take5
	take6
	take7
	oneMore
	twoMore
	isBlock
	take12  = take1 | take2
	take23  = take2 | take3
	take123 = take1 | take2 | take3
)

// directive is one row of the directive table.
type directive struct {
	name   string
	module string
	ctx    ctxMask
	args   argMask
	// set runs when the directive is read, like nginx's handler. It
	// returns nil, or the error to report.
	set func(l *loader, lv *level, n *node) error
	// def is the built-in default, for documentation and `check --effective`.
	def string
	// merge names the merge rule (documentation; the merge itself is in
	// merge.go, module by module).
	merge mergeRule
	// mailgateOnly marks a directive nginx 1.22.1 does not have
	// (mailgate's own, or one of a newer nginx): `mailgate check` lists
	// where it is used, and `mailgate check --nginx` reports the line with
	// the error nginx 1.22.1 would give (Config.NginxRefuses).
	mailgateOnly bool
}

type mergeRule int

const (
	mergeNone    mergeRule = iota // main-context or special
	mergeScalar                   // inherit mail{} value, else default; duplicate is an error
	mergeBitmask                  // OR within a level; server value replaces
	mergeArray                    // append within a level; any server entry replaces
	mergeSpecial                  // see the directive's set and merge code
)

// table is every directive mailgate knows, in nginx's module order: the
// core modules (core, errlog, conf, events, openssl, regex, thread pool),
// then the mail modules core, ssl, pop3, imap, smtp, auth_http, proxy,
// realip. It is filled by the per-module files' init functions in that
// order (see tableOrder).
var table []*directive

var byName = map[string][]*directive{}

func register(ds ...*directive) {
	for _, d := range ds {
		table = append(table, d)
		byName[d.name] = append(byName[d.name], d)
	}
}

func init() {
	register(coreDirectives()...)
	register(eventsDirectives()...)
	register(mailCoreDirectives()...)
	register(mailSSLDirectives()...)
	register(sniSSLDirectives()...) // mailgate-only (sni.go)
	register(pop3Directives()...)
	register(imapDirectives()...)
	register(imapIDDirectives()...) // mailgate-only (imapid.go)
	register(smtpDirectives()...)
	register(authHTTPDirectives()...)
	register(authHTTPExtDirectives()...)
	register(authHTTPResolveDirectives()...) // mailgate-only (auth_http_resolve.go)
	register(sniAuthDirectives()...)         // mailgate-only (sni.go)
	register(proxyDirectives()...)
	register(realIPDirectives()...)
	register(adminDirectives()...)
	register(accessLogDirectives()...)
	register(upstreamTLSDirectives()...)
}

// level is one configuration block's directive values: main, events,
// mail{} or a mail server{}.
type level struct {
	ctx  ctxMask
	pos  Pos
	vals map[string]*setting

	// mail server{} specifics
	listen      bool
	listens     []*Listen
	protocol    string
	protocolPos Pos
	// ngx_mail_ssl_module's "file:line" for certificate messages, and
	// whether a listen ... ssl was seen in this server.
	sslListen bool
	sslPos    Pos
	sslPosSet bool

	// inside http{} or stream{}: "http", "stream", "http server" (a
	// server{} of http{}), or "" deeper down
	opaque string
}

// setting is one directive's value at one level.
type setting struct {
	v   any
	pos Pos
}

func newLevel(ctx ctxMask, pos Pos) *level {
	return &level{ctx: ctx, pos: pos, vals: map[string]*setting{}}
}

func (lv *level) get(name string) *setting { return lv.vals[name] }

// diag builds an error at a directive's position.
func errAt(n *node, format string, a ...any) *Diag {
	return &Diag{Sev: SevEmerg, Msg: fmt.Sprintf(format, a...), Pos: n.pos}
}

// cstr is s as C code sees it: up to the first NUL byte. nginx's tokens
// keep NUL bytes, but messages that print a token with "%s" stop there.
func cstr(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// reason builds nginx's `"name" directive <reason>` error.
func reason(n *node, why string) *Diag {
	return errAt(n, `"%s" directive %s`, n.name(), why)
}

// walk interprets a list of directives in the context of lv.
func (l *loader) walk(nodes []*node, lv *level) error {
	for _, n := range nodes {
		if n.syntax != nil {
			return l.stop(n.syntax)
		}
		if err := l.handle(n, lv); err != nil {
			return err
		}
	}
	return nil
}

// handle interprets one directive, recording it in Config.Trace when
// asked to (include lines are not recorded: the included directives are).
func (l *loader) handle(n *node, lv *level) error {
	if l.o.Trace && n.name() != "include" {
		l.cfg.Trace = append(l.cfg.Trace, TraceEntry{
			Context: strings.Join(l.blocks, " "), Words: n.words, Block: n.block, Pos: n.pos})
	}
	if !n.block {
		return l.handleNode(n, lv)
	}
	l.blocks = append(l.blocks, n.name())
	defer func() { l.blocks = l.blocks[:len(l.blocks)-1] }()
	return l.handleNode(n, lv)
}

func (l *loader) handleNode(n *node, lv *level) error {
	name := n.name()
	if lv.ctx == ctxOpaque {
		// http{} and stream{} contents are not validated, but includes are
		// followed (they must exist, and -T lists them).
		if name == "include" && !n.block {
			if len(n.args()) != 1 {
				return l.emerg(errAt(n, `invalid number of arguments in "include" directive`))
			}
			return l.include(n, lv)
		}
		// A directive nginx allows only in the main context (mail, events,
		// pid...) is refused here whatever the rest of the block holds.
		if mainOnly(name) {
			return l.emerg(errAt(n, `"%s" directive is not allowed here`, name))
		}
		if n.block {
			inner := newLevel(ctxOpaque, n.pos)
			if lv.opaque == "http" && name == "server" {
				inner.opaque = "http server"
			}
			return l.walk(n.children, inner)
		}
		if lv.opaque == "http server" && name == "listen" && len(n.args()) > 0 {
			l.httpListens = append(l.httpListens, n)
		}
		return nil
	}
	var d *directive
	for _, c := range byName[name] {
		if c.ctx&lv.ctx != 0 {
			d = c
			break
		}
	}
	if d == nil {
		if byName[name] != nil || knownNames[name] {
			return l.emerg(errAt(n, `"%s" directive is not allowed here`, name))
		}
		// nginx prints the name as a C string: it ends at a NUL byte.
		return l.emerg(errAt(n, `unknown directive "%s"`, cstr(name)))
	}
	if d.args&isBlock == 0 && n.block {
		return l.emerg(errAt(n, `directive "%s" is not terminated by ";"`, name))
	}
	if d.args&isBlock != 0 && !n.block {
		return l.emerg(errAt(n, `directive "%s" has no opening "{"`, name))
	}
	nargs := len(n.args())
	ok := false
	switch {
	case d.args&oneMore != 0:
		ok = nargs >= 1
	case d.args&twoMore != 0:
		ok = nargs >= 2
	case nargs > 7:
		ok = false
	default:
		ok = d.args&(take0<<uint(nargs)) != 0
	}
	if !ok {
		return l.emerg(errAt(n, `invalid number of arguments in "%s" directive`, name))
	}
	if d.mailgateOnly {
		msg := fmt.Sprintf(`unknown directive "%s"`, name)
		if knownNames[name] {
			msg = fmt.Sprintf(`"%s" directive is not allowed here`, name)
		}
		l.unportable(n.pos, fmt.Sprintf(`"%s"`, name), msg)
	}
	return d.set(l, lv, n)
}

// fail turns a handler's *Diag into the loader's error flow.
func (l *loader) fail(d *Diag) error {
	if d == nil {
		return nil
	}
	return l.emerg(d)
}

// ---- generic slot handlers (ngx_conf_set_*_slot equivalents) ----

func setFlag(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v, d := flagValue(n.name(), n.args()[0])
	if d != nil {
		d.Pos = n.pos
		return l.fail(d)
	}
	lv.vals[n.name()] = &setting{v: v, pos: n.pos}
	return nil
}

func setMsec(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v, ok := parseTime(n.args()[0], false)
	if !ok {
		return l.fail(reason(n, "invalid value"))
	}
	lv.vals[n.name()] = &setting{v: msDuration(v), pos: n.pos}
	return nil
}

func setSec(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v, ok := parseTime(n.args()[0], true)
	if !ok {
		return l.fail(reason(n, "invalid value"))
	}
	lv.vals[n.name()] = &setting{v: secDuration(v), pos: n.pos}
	return nil
}

func setSize(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v, ok := parseSize(n.args()[0])
	if !ok {
		return l.fail(reason(n, "invalid value"))
	}
	lv.vals[n.name()] = &setting{v: int(v), pos: n.pos}
	return nil
}

func setOffset(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v, ok := parseOffset(n.args()[0])
	if !ok {
		return l.fail(reason(n, "invalid value"))
	}
	lv.vals[n.name()] = &setting{v: v, pos: n.pos}
	return nil
}

func setNum(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	v, ok := ngx.Atoi(n.args()[0])
	if !ok {
		return l.fail(reason(n, "invalid number"))
	}
	lv.vals[n.name()] = &setting{v: int(v), pos: n.pos}
	return nil
}

func setStr(l *loader, lv *level, n *node) error {
	if lv.get(n.name()) != nil {
		return l.fail(reason(n, "is duplicate"))
	}
	lv.vals[n.name()] = &setting{v: n.args()[0], pos: n.pos}
	return nil
}

// setEnum returns an enum slot handler; values match case-insensitively.
func setEnum(values ...string) func(*loader, *level, *node) error {
	return func(l *loader, lv *level, n *node) error {
		if lv.get(n.name()) != nil {
			return l.fail(reason(n, "is duplicate"))
		}
		a := n.args()[0]
		for _, v := range values {
			if strings.EqualFold(a, v) {
				lv.vals[n.name()] = &setting{v: v, pos: n.pos}
				return nil
			}
		}
		return l.fail(errAt(n, `invalid value "%s"`, cstr(a)))
	}
}

// bitmaskVal is a bitmask directive's value at one level.
type bitmaskVal struct {
	mask  uint
	words []string // canonical names, in the order they were set
}

// setBitmask returns a bitmask slot handler: words OR together within a
// level, a repeated word is a warning.
// mailgateOnlyValues are values of bitmask directives that nginx refuses
// ("invalid value") and mailgate accepts: check lists each use and check
// --nginx gives nginx's error for it.
var mailgateOnlyValues = map[string]bool{"oauthbearer": true, "xoauth2": true}

func setBitmask(values ...string) func(*loader, *level, *node) error {
	return func(l *loader, lv *level, n *node) error {
		s := lv.get(n.name())
		if s == nil {
			s = &setting{v: &bitmaskVal{}}
		}
		bv := s.v.(*bitmaskVal)
		for _, a := range n.args() {
			found := false
			for i, v := range values {
				if !strings.EqualFold(a, v) {
					continue
				}
				found = true
				if mailgateOnlyValues[v] {
					l.unportable(n.pos, fmt.Sprintf(`"%s" value "%s"`, n.name(), v), fmt.Sprintf(`invalid value "%s"`, cstr(a)))
				}
				if bv.mask&(1<<uint(i)) != 0 {
					l.warn(n.pos, `duplicate value "%s"`, cstr(a))
				} else {
					bv.mask |= 1 << uint(i)
					bv.words = append(bv.words, v)
				}
				break
			}
			if !found {
				return l.fail(errAt(n, `invalid value "%s"`, cstr(a)))
			}
		}
		s.pos = n.pos
		lv.vals[n.name()] = s
		return nil
	}
}

// setArray appends every argument (capabilities, str arrays).
func setArray(l *loader, lv *level, n *node) error {
	s := lv.get(n.name())
	if s == nil {
		s = &setting{v: []string(nil)}
	}
	s.v = append(s.v.([]string), n.args()...)
	s.pos = n.pos
	lv.vals[n.name()] = s
	return nil
}

// setKeyval appends one name/value pair.
func setKeyval(l *loader, lv *level, n *node) error {
	s := lv.get(n.name())
	if s == nil {
		s = &setting{v: [][2]string(nil)}
	}
	s.v = append(s.v.([][2]string), [2]string{n.args()[0], n.args()[1]})
	s.pos = n.pos
	if n.name() == "auth_http_header" {
		l.authHeaders = append(l.authHeaders, n)
	}
	lv.vals[n.name()] = s
	return nil
}

// mainOnly reports whether every table entry for name is main-context only.
func mainOnly(name string) bool {
	ds := byName[name]
	for _, d := range ds {
		if d.ctx != ctxMain {
			return false
		}
	}
	return len(ds) > 0
}
