package auth

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// store holds login-cache entries and throttle counters: an in-process
// LRU (auth_http_cache memory) or Redis (auth_http_cache redis://...).
// Keys are hex HMACs; no login or password is ever stored.
type store interface {
	// get returns the value, or nil when absent or expired.
	get(ctx context.Context, key string) ([]byte, error)
	set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// incr adds one to a counter that expires ttl after it was created,
	// and returns the new count.
	incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// count reads a counter (0 when absent).
	count(ctx context.Context, key string) (int64, error)
	name() string
}

// Stores are shared by every client of the process with the same setting,
// so a reload keeps the cache and the Redis connections.
var (
	storesMu sync.Mutex
	stores   = map[string]store{}
)

func sharedStore(kind, addr string, db, size int) store {
	id := kind + "|" + addr + "|" + strconv.Itoa(db) + "|" + strconv.Itoa(size)
	storesMu.Lock()
	defer storesMu.Unlock()
	if s, ok := stores[id]; ok {
		return s
	}
	var s store
	if kind == "redis" {
		s = newRedisStore(addr, db)
	} else {
		s = newMemStore(size)
	}
	stores[id] = s
	return s
}

// processSecret keys the credential HMAC when auth_http_cache_secret is
// not set. It never leaves the process.
var processSecret = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}()

// ---- memory ----

// entryOverhead approximates the bytes an entry costs besides its key and
// value (list element, map slot, times).
const entryOverhead = 128

type memStore struct {
	mu    sync.Mutex
	max   int
	used  int
	ll    *list.List // front: most recently used
	items map[string]*list.Element
	now   func() time.Time
}

type memEntry struct {
	key     string
	val     []byte
	n       int64
	expires time.Time
}

func newMemStore(size int) *memStore {
	return &memStore{max: size, ll: list.New(), items: map[string]*list.Element{}, now: time.Now}
}

func (m *memStore) name() string { return "memory" }

func (m *memStore) lookup(key string) *memEntry {
	el := m.items[key]
	if el == nil {
		return nil
	}
	e := el.Value.(*memEntry)
	if !m.now().Before(e.expires) {
		m.remove(el)
		return nil
	}
	m.ll.MoveToFront(el)
	return e
}

func (m *memStore) remove(el *list.Element) {
	e := el.Value.(*memEntry)
	m.ll.Remove(el)
	delete(m.items, e.key)
	m.used -= len(e.key) + len(e.val) + entryOverhead
}

func (m *memStore) insert(e *memEntry) {
	if el := m.items[e.key]; el != nil {
		m.remove(el)
	}
	cost := len(e.key) + len(e.val) + entryOverhead
	for m.used+cost > m.max && m.ll.Len() > 0 {
		m.remove(m.ll.Back())
	}
	m.items[e.key] = m.ll.PushFront(e)
	m.used += cost
}

func (m *memStore) get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.lookup(key); e != nil && e.val != nil {
		return e.val, nil
	}
	return nil, nil
}

func (m *memStore) set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.insert(&memEntry{key: key, val: append([]byte(nil), val...), expires: m.now().Add(ttl)})
	return nil
}

func (m *memStore) incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.lookup(key); e != nil {
		e.n++
		return e.n, nil
	}
	m.insert(&memEntry{key: key, n: 1, expires: m.now().Add(ttl)})
	return 1, nil
}

func (m *memStore) count(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.lookup(key); e != nil {
		return e.n, nil
	}
	return 0, nil
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ll.Len()
}

// ---- redis ----

// redisStore talks to Redis with short timeouts and no retries: the cache
// must never slow a login down much. After a failure Redis is skipped for
// redisBackoff, so a dead Redis costs one timeout per backoff period.
type redisStore struct {
	addr string
	c    *redis.Client

	mu        sync.Mutex
	downUntil time.Time
}

var (
	redisTimeout = 250 * time.Millisecond
	redisBackoff = time.Second
)

// errStoreDown: Redis failed recently and is skipped for now.
var errStoreDown = errors.New("skipped after a recent failure")

func newRedisStore(addr string, db int) *redisStore {
	return &redisStore{addr: addr, c: redis.NewClient(&redis.Options{
		Addr:            addr,
		DB:              db,
		DialTimeout:     redisTimeout,
		ReadTimeout:     redisTimeout,
		WriteTimeout:    redisTimeout,
		MaxRetries:      -1,
		PoolSize:        32,
		DisableIdentity: true, // no CLIENT SETINFO: older servers log errors for it
	})}
}

func (r *redisStore) name() string { return "redis://" + r.addr }

func (r *redisStore) ok() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Now().Before(r.downUntil) {
		return errStoreDown
	}
	return nil
}

func (r *redisStore) result(err error) error {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return nil
	}
	r.mu.Lock()
	r.downUntil = time.Now().Add(redisBackoff)
	r.mu.Unlock()
	return err
}

func (r *redisStore) get(ctx context.Context, key string) ([]byte, error) {
	if err := r.ok(); err != nil {
		return nil, err
	}
	b, err := r.c.Get(ctx, key).Bytes()
	if err != nil {
		return nil, r.result(err)
	}
	return b, nil
}

func (r *redisStore) set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := r.ok(); err != nil {
		return err
	}
	return r.result(r.c.Set(ctx, key, val, ttl).Err())
}

func (r *redisStore) incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := r.ok(); err != nil {
		return 0, err
	}
	pipe := r.c.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, r.result(err)
	}
	return n.Val(), nil
}

func (r *redisStore) count(ctx context.Context, key string) (int64, error) {
	if err := r.ok(); err != nil {
		return 0, err
	}
	n, err := r.c.Get(ctx, key).Int64()
	if err != nil {
		return 0, r.result(err)
	}
	return n, nil
}
