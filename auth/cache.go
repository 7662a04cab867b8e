package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

// cache is the login cache (auth_http_cache): a successful or failed
// auth_http answer to a plain login, kept for auth_http_cache_valid and
// given again for the same protocol, method, login and password without
// asking the auth server.
//
// The key is HMAC-SHA256(secret, scope, protocol, method, login, TLS client
// certificate fingerprint, password): neither the login nor the password
// is stored, in memory or in Redis. apop and cram-md5 logins are never
// cached (the digest depends on a per-session salt, so it never repeats),
// nor external (the certificate check is the auth server's), nor SMTP
// "none". Answers that are never cached: WAIT, failures with Auth-Wait
// (temporary) or a 4xx Auth-Error-Code, answers carrying an Auth-Pass
// override (a password), and every answer to a repeated request
// (nginx's auth_wait state).
type cache struct {
	st          store
	secret      []byte
	scope       string
	valid, fail time.Duration
	failing     atomic.Bool // the store failed; logged once until it works
}

func newCache(c *confparse.AuthHTTPExt, scope string) *cache {
	if c.Cache == "" || c.CacheValid <= 0 {
		return nil
	}
	ca := &cache{
		st:     sharedStore(c.Cache, c.CacheAddr, c.CacheDB, c.CacheSize),
		secret: processSecret,
		scope:  scope,
		valid:  c.CacheValid,
		fail:   c.CacheValidFail,
	}
	if c.CacheSecret != "" {
		ca.secret = []byte(c.CacheSecret)
	}
	return ca
}

// scope ties cache keys to what the auth server is asked: its URI and
// Host and the auth_http_header lines. Instances with the same settings
// (and auth_http_cache_secret) share Redis entries.
func (c *Client) scope() string {
	var b strings.Builder
	b.WriteString(c.host)
	b.WriteByte(0)
	b.WriteString(c.uri)
	for _, h := range c.headers {
		b.WriteByte(0)
		b.WriteString(h[0])
		b.WriteByte(0)
		b.WriteString(h[1])
	}
	return b.String()
}

// key is the cache key for req, or "" when req is not cacheable.
func (ca *cache) key(req *Request) string {
	if req.Method != MethodPlain || req.AuthWait {
		return ""
	}
	m := hmac.New(sha256.New, ca.secret)
	field := func(b []byte) {
		m.Write([]byte(strconv.Itoa(len(b))))
		m.Write([]byte{':'})
		m.Write(b)
	}
	field([]byte(ca.scope))
	field([]byte(req.Protocol))
	field([]byte(req.Method))
	field(req.User)
	fp := ""
	if req.TLS != nil {
		fp = "tls:" + req.TLS.Fingerprint
	}
	field([]byte(fp))
	field(req.Pass)
	return "mailgate:auth:v1:" + hex.EncodeToString(m.Sum(nil))
}

// cached is an answer as stored (JSON).
type cached struct {
	Kind    Kind   `json:"k"`
	Message string `json:"m,omitempty"`
	Code    string `json:"c,omitempty"`
	Server  string `json:"s,omitempty"` // OK: Auth-Server:Auth-Port as sent
	Addr    string `json:"a,omitempty"` // OK: the parsed address (with Name: the port)
	Name    string `json:"n,omitempty"` // OK: an Auth-Server host name (auth_http_resolve)
	User    []byte `json:"u,omitempty"` // Auth-User override
	HasUser bool   `json:"hu,omitempty"`
	SSL     string `json:"t,omitempty"` // OK: Auth-SSL (mailgate-only upstream TLS)
}

func (ca *cache) get(ctx context.Context, key string) *Result {
	b, err := ca.st.get(ctx, key)
	if ca.check(ctx, err) || b == nil {
		return nil
	}
	var e cached
	if json.Unmarshal(b, &e) != nil {
		return nil
	}
	res := &Result{Kind: e.Kind, Message: e.Message, ErrorCode: e.Code, ServerText: e.Server, UpstreamSSL: e.SSL}
	if e.HasUser {
		res.User = append([]byte{}, e.User...)
	}
	switch e.Kind {
	case OK:
		if e.Name != "" {
			port, err := strconv.ParseUint(e.Addr, 10, 16)
			if err != nil || port == 0 {
				return nil
			}
			res.Server, res.ServerName = netip.AddrPortFrom(netip.Addr{}, uint16(port)), e.Name
			break
		}
		ap, err := netip.ParseAddrPort(e.Addr)
		if err != nil {
			return nil
		}
		res.Server = ap
	case Fail:
	default:
		return nil
	}
	return res
}

func (ca *cache) put(ctx context.Context, key string, req *Request, res *Result) {
	ttl := ca.valid
	switch {
	case res.Pass != nil || res.Requery:
		return
	case res.Kind == OK:
	case res.Kind == Fail:
		if res.HasWait || strings.HasPrefix(res.ErrorCode, "4") || ca.fail <= 0 {
			return
		}
		ttl = ca.fail
	default:
		return
	}
	e := cached{Kind: res.Kind, Message: res.Message, Code: res.ErrorCode, Server: res.ServerText,
		User: res.User, HasUser: res.User != nil, SSL: res.UpstreamSSL}
	if res.Kind == OK {
		e.Addr = res.Server.String()
		if res.ServerName != "" {
			e.Name, e.Addr = res.ServerName, strconv.Itoa(int(res.Server.Port()))
		}
	}
	b, _ := json.Marshal(&e)
	ca.check(ctx, ca.st.set(ctx, key, b, ttl))
}

// check logs a store failure once (and its recovery) and reports whether
// err is a failure. The login then goes to the auth server as without the
// cache.
func (ca *cache) check(ctx context.Context, err error) bool {
	return checkStore(ctx, ca.st, &ca.failing, err, "auth_http_cache")
}

func checkStore(ctx context.Context, st store, failing *atomic.Bool, err error, what string) bool {
	if err == nil {
		if failing.Swap(false) {
			logf(ctx, errlog.Notice, "%s %s works again", what, st.name())
		}
		return false
	}
	if errors.Is(err, errStoreDown) || errors.Is(err, context.Canceled) {
		return true
	}
	if !failing.Swap(true) {
		logf(ctx, errlog.Error, "%s %s failed (%v), asking the auth http server", what, st.name(), err)
	}
	return true
}
