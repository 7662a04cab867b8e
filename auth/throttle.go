package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"

	"mailgate/confparse"
)

// throttle is auth_http_throttle: failed logins are counted per client
// address and per login in one-minute windows, in the login cache's store
// (or an in-process one). Once a count reaches its limit, further logins
// from that address or for that login are refused without asking the auth
// server: the client gets a failure reply after the wait= delay, as with
// an auth server's "Auth-Wait" answer, and the session goes on.
type throttle struct {
	st        store
	secret    []byte
	ip, login int64
	wait      int
	failing   atomic.Bool
}

// ThrottleMessage is the failure text of a throttled login (the client
// sees it as nginx shows an Auth-Status text); SMTP gets ThrottleCode.
const (
	ThrottleMessage = "Too many invalid authentication attempts, try again later"
	ThrottleCode    = "454 4.7.0"
)

const throttleWindow = time.Minute

func newThrottle(c *confparse.AuthHTTPExt) *throttle {
	if c.ThrottleIP <= 0 && c.ThrottleLogin <= 0 {
		return nil
	}
	t := &throttle{secret: processSecret, ip: int64(c.ThrottleIP), login: int64(c.ThrottleLogin), wait: int(c.ThrottleWait / time.Second)}
	if c.Cache != "" {
		t.st = sharedStore(c.Cache, c.CacheAddr, c.CacheDB, c.CacheSize)
	} else {
		t.st = sharedStore("memory", "", 0, 4<<20)
	}
	if c.CacheSecret != "" {
		t.secret = []byte(c.CacheSecret)
	}
	return t
}

// keys are the counters' names in the current window (HMACs: no address
// or login is stored).
func (t *throttle) keys(c *Client, req *Request) (ip, login string) {
	win := strconv.FormatInt(time.Now().Unix()/int64(throttleWindow/time.Second), 10)
	h := func(kind string, v []byte) string {
		m := hmac.New(sha256.New, t.secret)
		m.Write([]byte(c.scope()))
		m.Write([]byte{0})
		m.Write([]byte(kind))
		m.Write([]byte{0})
		m.Write(v)
		return "mailgate:throttle:v1:" + hex.EncodeToString(m.Sum(nil)[:16]) + ":" + win
	}
	if t.ip > 0 {
		ip = h("ip", []byte(req.ClientIP))
	}
	if t.login > 0 && len(req.User) > 0 {
		login = h("login:"+req.Protocol, req.User)
	}
	return ip, login
}

// check returns the throttled answer, or nil to go on.
func (t *throttle) check(ctx context.Context, c *Client, req *Request) *Result {
	ipKey, loginKey := t.keys(c, req)
	over := false
	for _, k := range []struct {
		key   string
		limit int64
	}{{ipKey, t.ip}, {loginKey, t.login}} {
		if k.key == "" {
			continue
		}
		n, err := t.st.count(ctx, k.key)
		if checkStore(ctx, t.st, &t.failing, err, "auth_http_throttle") {
			return nil // never refuse a login because the store failed
		}
		if n >= k.limit {
			over = true
		}
	}
	if !over {
		return nil
	}
	res := &Result{Kind: Fail, Message: ThrottleMessage, HasWait: true, WaitSeconds: t.wait}
	if req.Protocol == "smtp" {
		res.ErrorCode = ThrottleCode
	}
	return res
}

// fail counts one failed login.
func (t *throttle) fail(ctx context.Context, c *Client, req *Request) {
	ipKey, loginKey := t.keys(c, req)
	for _, k := range []string{ipKey, loginKey} {
		if k == "" {
			continue
		}
		_, err := t.st.incr(ctx, k, 2*throttleWindow)
		checkStore(ctx, t.st, &t.failing, err, "auth_http_throttle")
	}
}
