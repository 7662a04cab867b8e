package mail

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"runtime"
	"sync"
	"time"
	"weak"

	"mailgate/confparse"
	"mailgate/mail/tlsconf"
)

// sessionStore is a server-side TLS session cache: ssl_session_cache
// builtin or shared, bounded by a number of sessions. The client's ticket
// is only an id into the store (crypto/tls has no session-ID resumption,
// so the id travels as a ticket in TLS 1.2 as in TLS 1.3); the session's
// secrets never leave the process.
//
// As in OpenSSL and nginx, a full cache drops its oldest session to make
// room, and an expired session is never resumed.
type sessionStore struct {
	mu      sync.Mutex
	max     int // 0: no limit (OpenSSL's builtin:0)
	byID    map[string]*list.Element
	order   *list.List // of *storedSession, oldest first
	timeNow func() time.Time
}

type storedSession struct {
	id      string
	ctx     [32]byte // the server's session ID context (sessionContext)
	state   []byte   // tls.SessionState.Bytes()
	expires time.Time
}

func newSessionStore(max int) *sessionStore {
	return &sessionStore{max: max, byID: map[string]*list.Element{}, order: list.New(), timeNow: time.Now}
}

func (s *sessionStore) put(ctx [32]byte, state []byte, timeout time.Duration) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := string(b[:])
	s.putID(id, ctx, state, timeout)
	return id, nil
}

// get returns the stored session for id if it is there, not expired and
// made by a server of the same context.
func (s *sessionStore) get(ctx [32]byte, id []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[string(id)]
	if !ok {
		return nil
	}
	ss := e.Value.(*storedSession)
	if !s.timeNow().Before(ss.expires) {
		s.order.Remove(e)
		delete(s.byID, ss.id)
		return nil
	}
	if ss.ctx != ctx {
		return nil
	}
	return ss.state
}

func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// sharedStores are the "shared:NAME:size" caches by name. Like nginx's
// shared memory zones they outlive a reload when the name and size stay
// the same (a new size makes a new, empty cache). The registry holds them
// weakly: a cache goes when no loaded configuration uses it any more.
var sharedStores = struct {
	sync.Mutex
	m map[string]sharedStore
}{m: map[string]sharedStore{}}

type sharedStore struct {
	size  int64
	store weak.Pointer[sessionStore]
}

func sharedSessionStore(name string, size int64) *sessionStore {
	sharedStores.Lock()
	defer sharedStores.Unlock()
	if s, ok := sharedStores.m[name]; ok && s.size == size {
		if st := s.store.Value(); st != nil {
			return st
		}
	}
	st := newSessionStore(tlsconf.SharedSessions(size))
	sharedStores.m[name] = sharedStore{size: size, store: weak.Make(st)}
	runtime.AddCleanup(st, func(name string) {
		sharedStores.Lock()
		defer sharedStores.Unlock()
		if s, ok := sharedStores.m[name]; ok && s.store.Value() == nil {
			delete(sharedStores.m, name)
		}
	}, name)
	return st
}

// sessionContext is nginx's session ID context for a mail server
// (ngx_ssl_session_id_context with "MAIL"): its certificates and the
// names of the CAs it asks client certificates of. A shared cache resumes
// a session only on a server with the same context.
func sessionContext(certs []tls.Certificate, clientCAs []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("MAIL"))
	for _, c := range certs {
		if len(c.Certificate) > 0 {
			h.Write(c.Certificate[0])
		}
	}
	h.Write(clientCAs)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// setSessionCache makes c resume sessions from the stores of
// ssl_session_cache (builtin: this server's own; shared: by name), for
// "ssl_session_tickets off": crypto/tls still sends a ticket, but it is
// only the id of the session in the store. Sessions are stored in each
// store and looked up in order, as OpenSSL looks in its internal cache
// first and then in nginx's shared one.
func setSessionCache(c *tls.Config, ssl *confparse.SSLConf, spec tlsconf.SessionCache, ctx [32]byte) {
	var stores []*sessionStore
	if spec.Builtin {
		stores = append(stores, newSessionStore(spec.BuiltinSize))
	}
	if spec.SharedName != "" {
		stores = append(stores, sharedSessionStore(spec.SharedName, spec.SharedSize))
	}
	timeout := ssl.SessionTimeout
	c.SessionTicketsDisabled = false
	c.WrapSession = func(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		b, err := ss.Bytes()
		if err != nil {
			return nil, err
		}
		// One id for all the stores: the first store makes it.
		var id string
		for i, st := range stores {
			if i == 0 {
				if id, err = st.put(ctx, b, timeout); err != nil {
					return nil, err
				}
				continue
			}
			st.putID(id, ctx, b, timeout)
		}
		return []byte(id), nil
	}
	c.UnwrapSession = func(identity []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
		for _, st := range stores {
			if b := st.get(ctx, identity); b != nil {
				ss, err := tls.ParseSessionState(b)
				if err != nil {
					return nil, nil //nolint:nilerr // not resumable: a full handshake
				}
				return ss, nil
			}
		}
		return nil, nil
	}
}

// putID stores a session under an id made by another store.
func (s *sessionStore) putID(id string, ctx [32]byte, state []byte, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.timeNow()
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		ss := e.Value.(*storedSession)
		if now.Before(ss.expires) && (s.max == 0 || s.order.Len() < s.max) {
			break
		}
		s.order.Remove(e)
		delete(s.byID, ss.id)
	}
	s.byID[id] = s.order.PushBack(&storedSession{id: id, ctx: ctx, state: state, expires: now.Add(timeout)})
}
