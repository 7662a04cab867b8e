package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// mkCert issues a P-256 certificate; edit adjusts the template.
func mkCert(t *testing.T, serial int64, cn string, parent *testCert, ca bool, edit func(*x509.Certificate)) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if !ca {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if edit != nil {
		edit(tmpl)
	}
	p, pk := tmpl, key
	if parent != nil {
		p, pk = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p, &key.PublicKey, pk)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{c, key}
}

func mkCRL(t *testing.T, issuer *testCert, signer *ecdsa.PrivateKey, next time.Time, revoked ...int64) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: next}
	for _, r := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(r), RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.cert, signer)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestVerifyClientChain: the results nginx reports with OpenSSL 3.0.19
// for the same chains (compat-tests/tlsconf TestVerifyResultsAgainstNginx
// and TestClientCertificatesAgainstNginx compare them live).
func TestVerifyClientChain(t *testing.T) {
	expired := func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}
	root := mkCert(t, 1, "root", nil, true, nil)
	inter := mkCert(t, 2, "inter", root, true, nil)
	leaf := mkCert(t, 3, "leaf", inter, false, nil)
	direct := mkCert(t, 4, "direct", root, false, nil)
	self := mkCert(t, 5, "self", nil, false, nil)
	selfExpired := mkCert(t, 6, "self-expired", nil, false, expired)
	old := mkCert(t, 7, "old", root, false, expired)
	future := mkCert(t, 8, "future", root, false, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)
	})
	serverOnly := mkCert(t, 9, "server-only", root, false, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	nonCA := mkCert(t, 10, "non-ca", root, false, func(c *x509.Certificate) {
		c.BasicConstraintsValid, c.KeyUsage, c.ExtKeyUsage = false, 0, nil
	})
	leafOfNonCA := mkCert(t, 11, "leaf-of-non-ca", nonCA, false, nil)
	otherRoot := mkCert(t, 12, "other-root", nil, true, nil)
	stranger := mkCert(t, 13, "stranger", otherRoot, false, nil)
	interOld := mkCert(t, 14, "inter-old", root, true, expired)
	leafOfOld := mkCert(t, 15, "leaf-of-old", interOld, false, nil)
	later := time.Now().Add(time.Hour)

	certs := func(cs ...*testCert) []*x509.Certificate {
		var out []*x509.Certificate
		for _, c := range cs {
			out = append(out, c.cert)
		}
		return out
	}
	roots := certs(root)
	tests := []struct {
		name  string
		peer  []*x509.Certificate
		roots []*x509.Certificate
		depth int
		crls  []*x509.RevocationList
		want  int
	}{
		{"direct, depth 0", certs(direct), roots, 0, nil, VerifyOK},
		{"intermediate, depth 1", certs(leaf, inter), roots, 1, nil, VerifyOK},
		{"intermediate, depth 0", certs(leaf, inter), roots, 0, nil, ErrUnableToGetIssuerLocal},
		{"whole chain sent, depth 0, no CA", certs(leaf, inter, root), nil, 0, nil, ErrUnableToGetIssuerLocal},
		{"CRLs for all", certs(leaf, inter), roots, 1, []*x509.RevocationList{mkCRL(t, root, root.key, later), mkCRL(t, inter, inter.key, later)}, VerifyOK},
		{"leaf revoked", certs(leaf, inter), roots, 1, []*x509.RevocationList{mkCRL(t, root, root.key, later), mkCRL(t, inter, inter.key, later, 3)}, ErrCertRevoked},
		{"intermediate revoked", certs(leaf, inter), roots, 1, []*x509.RevocationList{mkCRL(t, root, root.key, later, 2), mkCRL(t, inter, inter.key, later)}, ErrCertRevoked},
		{"no CRL for the root", certs(leaf, inter), roots, 1, []*x509.RevocationList{mkCRL(t, inter, inter.key, later)}, ErrUnableToGetCRL},
		{"expired CRL", certs(direct), roots, 1, []*x509.RevocationList{mkCRL(t, root, root.key, time.Now().Add(-time.Second))}, ErrCRLHasExpired},
		{"CRL signed by another key", certs(direct), roots, 1, []*x509.RevocationList{mkCRL(t, inter, root.key, later)}, ErrUnableToGetCRL},
		{"leaf alone, unknown issuer", certs(stranger), nil, 100, nil, ErrUnableToVerifyLeafSig},
		{"leaf and intermediate, no root", certs(leaf, inter), nil, 100, nil, ErrUnableToGetIssuerLocal},
		{"whole chain, root untrusted", certs(leaf, inter, root), nil, 100, nil, ErrSelfSignedCertInChain},
		{"self-signed", certs(self), roots, 100, nil, ErrDepthZeroSelfSigned},
		{"self-signed and trusted", certs(self), certs(self), 100, nil, VerifyOK},
		{"self-signed expired", certs(selfExpired), nil, 100, nil, ErrCertHasExpired},
		{"expired", certs(old), roots, 100, nil, ErrCertHasExpired},
		{"not yet valid", certs(future), roots, 100, nil, ErrCertNotYetValid},
		{"intermediate expired", certs(leafOfOld, interOld), roots, 100, nil, ErrCertHasExpired},
		{"server purpose only", certs(serverOnly), roots, 100, nil, ErrInvalidPurpose},
		{"issuer not a CA", certs(leafOfNonCA, nonCA), roots, 100, nil, ErrInvalidPurpose},
		{"unknown issuer with its root", certs(stranger, otherRoot), roots, 100, nil, ErrSelfSignedCertInChain},
	}
	for _, tc := range tests {
		v := &ClientVerify{Roots: tc.roots, CRLs: tc.crls, Depth: tc.depth}
		if got := v.VerifyClientChain(tc.peer, time.Now()); got != tc.want {
			t.Errorf("%s: got %d (%s), want %d (%s)", tc.name, got, VerifyErrorText(got), tc.want, VerifyErrorText(tc.want))
		}
	}
}

// TestVerifySecurityLevel: keys and signature digests below the security
// level (Debian's default 2: 112 bits), as nginx reports them.
func TestVerifySecurityLevel(t *testing.T) {
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	leaf := func(pub any, alg x509.SignatureAlgorithm) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), SignatureAlgorithm: alg,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
		if err != nil {
			t.Skipf("crypto/x509 cannot make this certificate: %v", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := leaf(&ec.PublicKey, x509.SHA256WithRSA)
	roots := []*x509.Certificate{root}
	for _, tc := range []struct {
		name  string
		c     *x509.Certificate
		level int
		want  int
	}{
		{"SHA-256, level 2", good, 2, VerifyOK},
		// level 4 wants 192 bits: the P-256 leaf (128) fails first, then
		// the RSA-2048 root (112), the last error
		{"SHA-256, level 4", good, 4, ErrCAKeyTooSmall},
		{"SHA-256, level 3", good, 3, ErrCAKeyTooSmall},
	} {
		v := &ClientVerify{Roots: roots, Depth: 9, Level: tc.level}
		if got := v.VerifyClientChain([]*x509.Certificate{tc.c}, time.Now()); got != tc.want {
			t.Errorf("%s: got %d (%s), want %d", tc.name, got, VerifyErrorText(got), tc.want)
		}
	}
	sha1 := leaf(&ec.PublicKey, x509.SHA1WithRSA)
	for level, want := range map[int]int{0: VerifyOK, 1: ErrCAMDTooWeak, 2: ErrCAMDTooWeak} {
		v := &ClientVerify{Roots: roots, Depth: 9, Level: level}
		if got := v.VerifyClientChain([]*x509.Certificate{sha1}, time.Now()); got != want {
			t.Errorf("SHA-1 signed, level %d: got %d (%s), want %d", level, got, VerifyErrorText(got), want)
		}
	}
}

// TestVerifyServerPurpose: with ServerPurpose an upstream's chain is
// judged for "SSL server" (proxy_ssl_verify): a serverAuth certificate
// passes, a clientAuth-only one is "unsuitable certificate purpose", and
// depth and trust are judged as for clients.
func TestVerifyServerPurpose(t *testing.T) {
	ca := mkCert(t, 1, "CA", nil, true, nil)
	mid := mkCert(t, 5, "intermediate", ca, true, nil)
	server := mkCert(t, 2, "mail.test", ca, false, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.KeyUsage = x509.KeyUsageDigitalSignature
	})
	noEKU := mkCert(t, 3, "mail.test", ca, false, func(c *x509.Certificate) { c.ExtKeyUsage = nil })
	client := mkCert(t, 4, "client", ca, false, nil)
	deep := mkCert(t, 6, "mail.test", mid, false, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	other := mkCert(t, 7, "other CA", nil, true, nil)
	v := &ClientVerify{Roots: []*x509.Certificate{ca.cert}, Depth: 1, Level: 2, ServerPurpose: true}
	for _, c := range []struct {
		name  string
		chain []*x509.Certificate
		depth int
		want  int
	}{
		{"server certificate", []*x509.Certificate{server.cert}, 1, VerifyOK},
		{"no extended key usage", []*x509.Certificate{noEKU.cert}, 1, VerifyOK},
		{"client-only certificate", []*x509.Certificate{client.cert}, 1, ErrInvalidPurpose},
		{"intermediate sent, depth 1", []*x509.Certificate{deep.cert, mid.cert}, 1, VerifyOK},
		{"unknown CA", []*x509.Certificate{mkCert(t, 8, "mail.test", other, false, nil).cert}, 1, ErrUnableToVerifyLeafSig}, // OpenSSL's last error, as nginx reports it
		{"self-signed", []*x509.Certificate{other.cert}, 1, ErrDepthZeroSelfSigned},
	} {
		vv := *v
		vv.Depth = c.depth
		if got := vv.VerifyClientChain(c.chain, time.Now()); got != c.want {
			t.Errorf("%s: %d (%s), want %d (%s)", c.name, got, VerifyErrorText(got), c.want, VerifyErrorText(c.want))
		}
	}
	v.ServerPurpose = false
	if got := v.VerifyClientChain([]*x509.Certificate{server.cert}, time.Now()); got != ErrInvalidPurpose {
		t.Errorf("serverAuth certificate as a client: %d, want %d", got, ErrInvalidPurpose)
	}
}
