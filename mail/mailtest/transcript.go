package mailtest

// Helpers for protocol transcript tests: reads cut where a test says,
// exact reads, the end of a session, STARTTLS on the client's side, a
// throw-away certificate, and request heads taken apart.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/mail/errlog"
)

// Cut returns c with its reads cut where a test says: the first sizes[0]
// bytes that arrive come in reads of their own (never together with a
// later byte), then the next sizes[1] bytes, and so on; after the last
// size, reads are not cut. A client that writes its whole input at once
// (or faster than the session reads) then has each piece read on its own,
// whatever the timing, as if each had been a packet read before the next
// came.
func Cut(c net.Conn, sizes ...int) net.Conn {
	return &cutConn{Conn: c, sizes: sizes}
}

type cutConn struct {
	net.Conn
	mu    sync.Mutex
	sizes []int
}

func (c *cutConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	for len(c.sizes) > 0 && c.sizes[0] <= 0 {
		c.sizes = c.sizes[1:]
	}
	if len(c.sizes) > 0 && len(p) > c.sizes[0] {
		p = p[:c.sizes[0]]
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if len(c.sizes) > 0 {
		c.sizes[0] -= n
	}
	c.mu.Unlock()
	return n, err
}

// DialCut is Dial over a Unix pair whose server end is Cut at sizes.
func (e *Env) DialCut(t testing.TB, listen int, sizes ...int) *Client {
	t.Helper()
	client, server := Pair(t, Unix)
	return e.Serve(client, Cut(server, sizes...), listen)
}

// ReadN reads exactly n bytes, or what came before d passed or the
// connection ended.
func (c *Client) ReadN(n int, d time.Duration) string {
	c.SetReadDeadline(time.Now().Add(d)) //nolint:errcheck
	b := make([]byte, n)
	m, _ := io.ReadFull(c.Conn, b)
	return string(b[:m])
}

// CloseWrite closes the client's sending side (the server reads EOF).
func (c *Client) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("mailtest: %T cannot close its writing side", c.Conn)
}

// StartTLS runs the client's side of a TLS handshake (any certificate is
// accepted); the Client then talks TLS.
func (c *Client) StartTLS() error {
	tc := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test's own certificate
	tc.SetDeadline(time.Now().Add(5 * time.Second))                 //nolint:errcheck
	if err := tc.Handshake(); err != nil {
		return err
	}
	tc.SetDeadline(time.Time{}) //nolint:errcheck
	c.Conn = tc
	return nil
}

// openGrace is how long End waits for a session that should stay open
// to close by mistake.
const openGrace = 20 * time.Millisecond

// End checks how a session ends once the client has read every reply it
// expected. closed: the server closes within 3 seconds without sending
// anything more (the server's timeout must be longer). Otherwise the
// session must still be open (for openGrace), and once the client closes its
// side it must end without sending anything more. End returns what went
// wrong, "" when nothing did.
func (c *Client) End(closed bool) string {
	if !closed {
		select {
		case <-c.Done():
			return "the server closed the session"
		case <-time.After(openGrace):
		}
		if err := c.CloseWrite(); err != nil {
			return err.Error()
		}
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second)) //nolint:errcheck
	rest, err := io.ReadAll(c.Conn)
	if errlog.IsTimeout(err) {
		return fmt.Sprintf("the session is still open (got %q more)", rest)
	}
	select {
	case <-c.Done():
	case <-time.After(3 * time.Second):
		return fmt.Sprintf("the session did not end (got %q more)", rest)
	}
	if len(rest) > 0 {
		return fmt.Sprintf("the server sent %q more", rest)
	}
	return ""
}

var (
	certOnce        sync.Once
	certPEM, keyPEM []byte
	certErr         error
)

// Certificate writes a self-signed certificate for "mx.example.test" and
// its key (made once per process) into the test's temporary directory, for
// ssl_certificate and ssl_certificate_key.
func Certificate(t testing.TB) (cert, key string) {
	t.Helper()
	certOnce.Do(func() { certPEM, keyPEM, certErr = selfSigned() })
	if certErr != nil {
		t.Fatal(certErr)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func selfSigned() ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"mx.example.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}

// Header returns the value of the named header in a request head (as an
// AuthServer records it), "%XX"-escapes decoded, and whether it is there.
func Header(head []byte, name string) (string, bool) {
	r := bufio.NewReader(bytes.NewReader(head))
	r.ReadString('\n') //nolint:errcheck // the request line
	for {
		line, err := r.ReadString('\n')
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ": ")
		if ok && strings.EqualFold(k, name) {
			if u, uerr := url.PathUnescape(v); uerr == nil {
				v = u
			}
			return v, true
		}
		if err != nil || line == "\r\n" {
			return "", false
		}
	}
}
