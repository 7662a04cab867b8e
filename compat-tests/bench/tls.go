package main

// Self-signed certificates for the proxies' TLS listens: RSA-2048 and
// ECDSA P-256, written to a temporary directory both proxies read.

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

var certs struct {
	dir                            string
	rsaCert, rsaKey, ecCert, ecKey string
}

func makeCerts() {
	dir, err := os.MkdirTemp("", "mailgate-bench-certs-")
	if err != nil {
		fatalf("certs: %v", err)
	}
	os.Chmod(dir, 0o755)
	certs.dir = dir
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fatalf("certs: %v", err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fatalf("certs: %v", err)
	}
	certs.rsaCert, certs.rsaKey = writeCert(dir, "rsa", rk, &rk.PublicKey)
	certs.ecCert, certs.ecKey = writeCert(dir, "ec", ek, &ek.PublicKey)
}

func writeCert(dir, name string, key crypto.Signer, pub any) (certFile, keyFile string) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "bench.example"},
		DNSNames:     []string{"bench.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		fatalf("certs: %v", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		fatalf("certs: %v", err)
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		fatalf("certs: %v", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o644); err != nil {
		fatalf("certs: %v", err)
	}
	return certFile, keyFile
}

// handshakeResult is one handshake-rate run.
type handshakeResult struct {
	ok, failed, resumed int64
	rate                float64
	p50                 time.Duration
	firstErr            string
	elapsed             time.Duration
	lat                 []time.Duration
	cpu                 time.Duration // the proxy's CPU time over the run
}

func (r handshakeResult) merge(o handshakeResult) handshakeResult {
	m := handshakeResult{ok: r.ok + o.ok, failed: r.failed + o.failed, resumed: r.resumed + o.resumed,
		firstErr: r.firstErr, elapsed: r.elapsed + o.elapsed, cpu: r.cpu + o.cpu}
	if m.firstErr == "" {
		m.firstErr = o.firstErr
	}
	m.lat = append(append([]time.Duration(nil), r.lat...), o.lat...)
	m.finish()
	return m
}

func (r *handshakeResult) finish() {
	if r.elapsed > 0 {
		r.rate = float64(r.ok) / r.elapsed.Seconds()
	}
	if len(r.lat) > 0 {
		slices.Sort(r.lat)
		r.p50 = r.lat[len(r.lat)/2]
	}
}

// runHandshakes: `clients` loops of connect, TLS handshake, IMAP
// greeting, LOGOUT, close, for d. With resume, every client shares one
// session cache, so all but the first handshakes may resume.
func runHandshakes(address string, d time.Duration, resume bool) handshakeResult {
	conf := benchTLS.Clone()
	if resume {
		conf.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	var (
		ok, failed, resumed atomic.Int64
		mu                  sync.Mutex
		firstErr            string
		lat                 []time.Duration
		wg                  sync.WaitGroup
	)
	t0 := time.Now()
	deadline := t0.Add(d)
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{r: bufio.NewReaderSize(nil, 1024)}
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for time.Now().Before(deadline) {
				s := time.Now()
				did, err := oneHandshake(cl, address, conf)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
					continue
				}
				ok.Add(1)
				mine = append(mine, time.Since(s))
				if did {
					resumed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r := handshakeResult{ok: ok.Load(), failed: failed.Load(), resumed: resumed.Load(), firstErr: firstErr,
		elapsed: time.Since(t0), lat: lat}
	r.finish()
	return r
}

func oneHandshake(cl *client, address string, conf *tls.Config) (resumed bool, err error) {
	c, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, conf)
	if err := tc.Handshake(); err != nil {
		return false, err
	}
	cl.c = tc
	cl.r.Reset(tc)
	// Reading the greeting also reads a TLS 1.3 session ticket.
	if err := cl.expect("* OK"); err != nil {
		return false, err
	}
	if err := cl.send("a LOGOUT\r\n"); err != nil {
		return false, err
	}
	if err := cl.expectTagged("a"); err != nil {
		return false, err
	}
	return tc.ConnectionState().DidResume, nil
}

func handshakeFigure() {
	type variant struct {
		name   string
		ec     bool
		resume bool
	}
	variants := []variant{
		{"RSA-2048, full handshake", false, false},
		{"ECDSA P-256, full handshake", true, false},
		{"RSA-2048, resumed (session tickets, on by default in both)", false, true},
		{"ECDSA P-256, resumed (session tickets)", true, true},
	}
	var res [2][]handshakeResult
	withProxiesABBA(proxyOpts{}, func(p *proxy, idx int) {
		first := len(res[idx]) == 0
		for k, v := range variants {
			port := p.ports.imapsRSA
			if v.ec {
				port = p.ports.imapsEC
			}
			c0 := cpuTime(p.pid)
			r := runHandshakes(addr(port), *duration/2, v.resume)
			r.cpu = cpuTime(p.pid) - c0
			if r.failed > 0 || r.ok == 0 {
				fail("%s: TLS handshakes (%s): %d of %d FAILED (first: %s)", p.name, v.name, r.failed, r.failed+r.ok, r.firstErr)
			}
			if first {
				res[idx] = append(res[idx], r)
			} else {
				res[idx][k] = res[idx][k].merge(r)
			}
		}
	})
	sec := fmt.Sprintf("TLS handshakes/s on an imaps listen (TLS 1.3; handshake, greeting, LOGOUT), %d clients", *clients)
	for k, v := range variants {
		if k >= len(res[0]) || k >= len(res[1]) {
			break
		}
		addRow(sec, v.name, "/s", res[0][k].rate, res[1][k].rate, "higher")
		addRow(sec, "  latency p50 (connect to close)", "ms", ms(res[0][k].p50), ms(res[1][k].p50), "lower")
		cpu := func(r handshakeResult) float64 { return ms(r.cpu) / float64(max(r.ok, 1)) }
		addRow(sec, "  proxy CPU per connection", "ms", cpu(res[0][k]), cpu(res[1][k]), "lower")
		if v.resume {
			pct := func(r handshakeResult) float64 { return 100 * float64(r.resumed) / float64(max(r.ok, 1)) }
			addRow(sec, "  handshakes that resumed", "%", pct(res[0][k]), pct(res[1][k]), "")
		}
	}
}
