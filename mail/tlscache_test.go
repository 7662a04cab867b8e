package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail/tlsconf"
)

// connect runs a handshake of a client with its own session cache and
// reports whether it resumed.
func connect(t *testing.T, s *tls.Config, cache tls.ClientSessionCache, version uint16) bool {
	t.Helper()
	cc := clientConf()
	cc.MinVersion, cc.MaxVersion = version, version
	cc.ClientSessionCache = cache
	st, err := handshake(t, s, cc)
	if err != nil {
		t.Fatal(err)
	}
	return st.DidResume
}

func TestSessionCacheResumption(t *testing.T) {
	n := 0
	uniq := func(s string) string { n++; return fmt.Sprintf(s, t.Name(), n) }
	var sub *testing.T // the running subtest
	load := func(cache string, tickets bool, edit func(*confparse.SSLConf)) *tls.Config {
		t := sub
		t.Helper()
		s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) {
			c.SessionCache, c.SessionTickets = cache, tickets
			if edit != nil {
				edit(c)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherCert, otherKey := selfSigned(t)
	rsa := func(c *confparse.SSLConf) {
		c.Certificates, c.CertificateKeys = []string{otherCert}, []string{otherKey}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tlsVersionName(v), func(t *testing.T) {
			tests := []struct {
				name   string
				first  func() (*tls.Config, *tls.Config) // the server of the first and of the second connection
				resume bool
			}{
				{"builtin, tickets off", func() (*tls.Config, *tls.Config) {
					s := load("builtin:100", false, nil)
					return s, s
				}, true},
				{"builtin without size, tickets off", func() (*tls.Config, *tls.Config) {
					s := load("builtin", false, nil)
					return s, s
				}, true},
				{"shared, tickets off", func() (*tls.Config, *tls.Config) {
					s := load(uniq("shared:%s%d:1m"), false, nil)
					return s, s
				}, true},
				{"builtin and shared, tickets off", func() (*tls.Config, *tls.Config) {
					s := load(uniq("builtin:10 shared:%s%d:1m"), false, nil)
					return s, s
				}, true},
				{"none, tickets off", func() (*tls.Config, *tls.Config) {
					s := load("none", false, nil)
					return s, s
				}, false},
				{"off, tickets off", func() (*tls.Config, *tls.Config) {
					s := load("off", false, nil)
					return s, s
				}, false},
				{"cache then none: the last word counts", func() (*tls.Config, *tls.Config) {
					s := load("builtin none", false, nil)
					return s, s
				}, false},
				{"none, tickets on", func() (*tls.Config, *tls.Config) {
					s := load("none", true, nil)
					return s, s
				}, true},
				{"off, tickets on", func() (*tls.Config, *tls.Config) {
					s := load("off", true, nil)
					return s, s
				}, true},
				{"builtin, tickets on", func() (*tls.Config, *tls.Config) {
					s := load("builtin", true, nil)
					return s, s
				}, true},
				// Each server block has its own builtin cache.
				{"builtin of another server", func() (*tls.Config, *tls.Config) {
					return load("builtin", false, nil), load("builtin", false, nil)
				}, false},
				// A shared cache is one for every server naming it, and
				// resumes on a server with the same certificates.
				{"shared across servers", func() (*tls.Config, *tls.Config) {
					name := uniq("shared:%s%d:1m")
					return load(name, false, nil), load(name, false, nil)
				}, true},
				{"shared across servers, other certificate", func() (*tls.Config, *tls.Config) {
					name := uniq("shared:%s%d:1m")
					return load(name, false, nil), load(name, false, rsa)
				}, false},
				{"shared, other name", func() (*tls.Config, *tls.Config) {
					return load(uniq("shared:%s%d:1m"), false, nil), load(uniq("shared:%s%d:1m"), false, nil)
				}, false},
				// ssl_session_timeout 0: expired at once
				{"builtin, expired", func() (*tls.Config, *tls.Config) {
					s := load("builtin", false, func(c *confparse.SSLConf) { c.SessionTimeout = 0 })
					return s, s
				}, false},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					sub = t
					a, b := tc.first()
					cache := tls.NewLRUClientSessionCache(4)
					if connect(t, a, cache, v) {
						t.Fatal("the first connection resumed")
					}
					if got := connect(t, b, cache, v); got != tc.resume {
						t.Errorf("resumed = %v, want %v", got, tc.resume)
					}
				})
			}
		})
	}
}

// TestSessionCacheHoldsNoSecrets: with tickets off, what the client holds
// is an id of 32 bytes, not an encrypted session.
func TestSessionCacheTicketIsAnID(t *testing.T) {
	s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) { c.SessionCache, c.SessionTickets = "builtin", false }))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		rec.tickets = nil
		connect(t, s, rec, v)
		if len(rec.tickets) == 0 {
			t.Fatalf("%s: no ticket", tlsVersionName(v))
		}
		for _, tk := range rec.tickets {
			if len(tk) != 32 {
				t.Errorf("%s: the client got a ticket of %d bytes, want a 32-byte id", tlsVersionName(v), len(tk))
			}
		}
	}
}

type recordingCache struct {
	tls.ClientSessionCache
	tickets [][]byte
}

func (r *recordingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		if tk, _, err := cs.ResumptionState(); err == nil {
			r.tickets = append(r.tickets, tk)
		}
	}
	r.ClientSessionCache.Put(key, cs)
}

// TestSessionCacheBound: a full cache drops its oldest session.
func TestSessionCacheBound(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		s, err := loadTLS(tlsServer(t, func(c *confparse.SSLConf) { c.SessionCache, c.SessionTickets = "builtin:2", false }))
		if err != nil {
			t.Fatal(err)
		}
		clients := []tls.ClientSessionCache{tls.NewLRUClientSessionCache(1), tls.NewLRUClientSessionCache(1), tls.NewLRUClientSessionCache(1)}
		for _, c := range clients {
			connect(t, s, c, v)
		}
		// builtin:2 keeps the sessions of the second and third clients.
		if connect(t, s, clients[0], v) {
			t.Errorf("%s: the oldest session resumed in a full cache", tlsVersionName(v))
		}
		// The first client's new session pushed out the second's.
		if !connect(t, s, clients[2], v) {
			t.Errorf("%s: the newest session did not resume", tlsVersionName(v))
		}
	}
}

func TestSessionStore(t *testing.T) {
	now := time.Unix(1000, 0)
	st := newSessionStore(3)
	st.timeNow = func() time.Time { return now }
	var ctx, other [32]byte
	other[0] = 1
	ids := make([]string, 5)
	for i := range ids {
		var err error
		if ids[i], err = st.put(ctx, []byte{byte(i)}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if st.len() != 3 {
		t.Fatalf("%d sessions in a store of 3", st.len())
	}
	for i, id := range ids {
		got := st.get(ctx, []byte(id))
		if want := i >= 2; (got != nil) != want || (got != nil && got[0] != byte(i)) {
			t.Errorf("session %d: got %v, want stored=%v", i, got, want)
		}
	}
	if st.get(other, []byte(ids[4])) != nil {
		t.Error("a session resumed in another context")
	}
	if st.get(ctx, []byte("no such id")) != nil {
		t.Error("an unknown id resumed")
	}
	// ids[2] was stored at 1002 and expires at 1012.
	now = time.Unix(1012, 0)
	if st.get(ctx, []byte(ids[2])) != nil {
		t.Error("an expired session resumed")
	}
	if st.get(ctx, []byte(ids[3])) == nil {
		t.Error("a live session is gone")
	}
	if st.len() != 2 {
		t.Errorf("the expired session stays: %d sessions", st.len())
	}
	// Unlimited (builtin:0).
	un := newSessionStore(0)
	for i := 0; i < 100; i++ {
		un.put(ctx, []byte{1}, time.Minute) //nolint:errcheck
	}
	if un.len() != 100 {
		t.Errorf("builtin:0 kept %d of 100", un.len())
	}
}

func TestSharedSessionStoreReuse(t *testing.T) {
	a := sharedSessionStore("TestSharedSessionStoreReuse", 1<<20)
	if b := sharedSessionStore("TestSharedSessionStoreReuse", 1<<20); b != a {
		t.Error("the same name and size made a new cache (a reload would lose the sessions)")
	}
	if c := sharedSessionStore("TestSharedSessionStoreReuse", 2<<20); c == a || c.max != 2*tlsconf.SessionsPerMegabyte {
		t.Errorf("a new size kept the old cache or got %d sessions", c.max)
	}
}

// selfSigned writes a new ECDSA certificate and key for mx.example.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "mx.example"},
		DNSNames: []string{"mx.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestSharedSessionStoreCollected: a shared cache no configuration uses
// any more leaves the registry.
func TestSharedSessionStoreCollected(t *testing.T) {
	const name = "TestSharedSessionStoreCollected"
	sharedSessionStore(name, 1<<20)
	for i := 0; i < 50; i++ {
		runtime.GC()
		sharedStores.Lock()
		_, ok := sharedStores.m[name]
		sharedStores.Unlock()
		if !ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("an unused shared cache stays in the registry")
}
