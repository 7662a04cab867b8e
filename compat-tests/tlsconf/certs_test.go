package tlsconf_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certSpec describes one certificate of a test chain.
type certSpec struct {
	cn         string
	rawSubject []byte  // the subject as DER, instead of CN=cn
	parent     *issued // nil: self-signed
	ca         bool    // basicConstraints CA:TRUE and keyCertSign
	notCA      bool    // no basicConstraints, key usage or EKU at all
	serial     int64   // 0: random
	rsaBits    int     // 0: a P-256 key
	notBefore  time.Duration
	notAfter   time.Duration
	eku        []x509.ExtKeyUsage
}

// issued is a certificate and its key. cert is only a template carrying
// the names when crypto/x509 cannot parse the certificate it made.
type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
	kpem string
}

// issue makes the certificate s describes: a client certificate (key
// usage digitalSignature, EKU clientAuth) unless ca or notCA.
func issue(t *testing.T, s certSpec) *issued {
	t.Helper()
	var k crypto.Signer
	var err error
	if s.rsaBits > 0 {
		k, err = rsa.GenerateKey(rand.Reader, s.rsaBits)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.notBefore == 0 {
		s.notBefore = -time.Hour
	}
	if s.notAfter == 0 {
		s.notAfter = 24 * time.Hour
	}
	serial := big.NewInt(s.serial)
	if s.serial == 0 {
		serial, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: s.cn}, RawSubject: s.rawSubject,
		NotBefore: time.Now().Add(s.notBefore), NotAfter: time.Now().Add(s.notAfter)}
	switch {
	case s.ca:
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	case !s.notCA:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if s.eku != nil {
		tmpl.ExtKeyUsage = s.eku
	}
	parent, pkey := tmpl, k
	if s.parent != nil {
		parent, pkey = s.parent.cert, s.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), pkey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		// a name crypto/x509 does not read: the template serves as parent
		c = tmpl
		c.Raw, c.PublicKey = der, k.Public()
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &issued{c, k, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))}
}

// signWithOpenSSL has the openssl command issue a client certificate (or
// a CA, with the extensions given) under parent, with the digest and the
// key ("ec:CURVE" or "rsa:BITS") given: for what crypto/x509 will not
// make, such as SHA-1 signatures.
func signWithOpenSSL(t *testing.T, dir string, parent *issued, cn, digest, newkey string, exts ...string) *issued {
	t.Helper()
	p := func(name string) string { return filepath.Join(dir, cn+"."+name) }
	for name, content := range map[string]string{"ca.pem": parent.pem, "ca.key": parent.kpem} {
		if err := os.WriteFile(p(name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if len(exts) == 0 {
		exts = []string{"extendedKeyUsage=clientAuth", "keyUsage=digitalSignature"}
	}
	if err := os.WriteFile(p("ext"), []byte(strings.Join(exts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyArgs := []string{"-newkey", newkey}
	if curve, ok := strings.CutPrefix(newkey, "ec:"); ok {
		if out, err := exec.Command("openssl", "ecparam", "-name", curve, "-out", p("params")).CombinedOutput(); err != nil {
			t.Fatalf("openssl ecparam: %v\n%s", err, out)
		}
		keyArgs = []string{"-newkey", "ec:" + p("params")}
	}
	cmds := [][]string{
		append(append([]string{"req", "-new", "-nodes"}, keyArgs...), "-keyout", p("key"), "-out", p("csr"), "-subj", "/CN="+cn),
		{"x509", "-req", "-in", p("csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-set_serial", "77", "-days", "1", digest, "-extfile", p("ext"), "-out", p("pem")},
	}
	for _, c := range cmds {
		if out, err := exec.Command("openssl", c...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", c, err, out)
		}
	}
	certPEM, err := os.ReadFile(p("pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(p("key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	out := &issued{cert: c, pem: string(certPEM), kpem: string(keyPEM)}
	if kb, _ := pem.Decode(keyPEM); kb != nil {
		if k, err := x509.ParsePKCS8PrivateKey(kb.Bytes); err == nil {
			out.key, _ = k.(crypto.Signer)
		}
	}
	return out
}
