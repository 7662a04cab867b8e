package main

// Self-signed certificates for the proxies' TLS listens: RSA-2048 and
// ECDSA P-256, written to a temporary directory both proxies read.

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
	"path/filepath"
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
