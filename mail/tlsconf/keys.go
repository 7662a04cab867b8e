package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// OpenSSL 3's error texts as nginx prints them after "(SSL: ".
const (
	sslNoStartLine  = "error:0480006C:PEM routines::no start line:Expecting: %s"
	sslBadBase64    = "error:04800064:PEM routines::bad base64 decode"
	sslBadASN1      = "error:068000A8:asn1 encoding routines::wrong tag error:0688010A:asn1 encoding routines::nested asn1 error:Type=%s error:0488000D:PEM routines::ASN1 lib"
	sslNoKeyDecoder = "error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM"
	// OpenSSL 3 on an EC key whose stored public point is off the curve.
	sslECPointNotOnCurve = sslNoKeyDecoder + " error:0800006B:elliptic curve routines::point is not on curve" +
		" error:08080010:elliptic curve routines::EC lib error:0800008E:elliptic curve routines::decode error"
	sslBadPKCS8    = sslNoKeyDecoder + " error:068000A8:asn1 encoding routines::wrong tag error:0688010A:asn1 encoding routines::nested asn1 error:Type=PKCS8_PRIV_KEY_INFO"
	sslKeyMismatch = "error:05800074:x509 certificate routines::key values mismatch"
	// An encrypted key and no ssl_password_file: OpenSSL asks the
	// terminal, which nginx -t does not have.
	sslNoPasswordPEM   = "error:1400006B:UI routines::processing error:while reading strings error:0480006D:PEM routines::problems getting password error:07880109:common libcrypto routines::interrupted or cancelled error:07880109:common libcrypto routines::interrupted or cancelled error:04800068:PEM routines::bad password read"
	sslNoPasswordPKCS8 = "error:1400006B:UI routines::processing error:while reading strings error:0480006D:PEM routines::problems getting password error:07880109:common libcrypto routines::interrupted or cancelled error:07880109:common libcrypto routines::interrupted or cancelled error:1C80009F:Provider routines::unable to get passphrase error:1400006B:UI routines::processing error:while reading strings error:0480006D:PEM routines::problems getting password error:07880109:common libcrypto routines::interrupted or cancelled error:04800068:PEM routines::bad password read"
	sslBadDecryptPEM   = "error:1C800064:Provider routines::bad decrypt error:04800065:PEM routines::bad decrypt"
	sslBadDecryptPKCS8 = "error:1C800064:Provider routines::bad decrypt error:11800074:PKCS12 routines::pkcs12 cipherfinal error:maybe wrong password error:1C800064:Provider routines::bad decrypt error:11800074:PKCS12 routines::pkcs12 cipherfinal error:maybe wrong password"
	sslNoCertOrCRL     = "error:05800088:x509 certificate routines::no certificate or crl found"
)

// fopenError is OpenSSL's text for a file BIO_new_file could not open.
func fopenError(path string, err error) string {
	code, text := 2, "No such file or directory"
	var errno syscall.Errno
	if errors.As(err, &errno) {
		code, text = int(errno), errnoText(errno)
	}
	return fmt.Sprintf("error:8%07X:system library::%s:calling fopen(%s, r) error:10000080:BIO routines::no such file", code, text, path)
}

func errnoText(e syscall.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// readFile reads a file named in a directive, or the inline "data:" value
// nginx also accepts for certificates and keys.
func readFile(path string) ([]byte, error) {
	if strings.HasPrefix(path, "data:") {
		return []byte(path[5:]), nil
	}
	return readAll(path)
}

// readAll reads a file as OpenSSL's file BIO does: a directory opens and
// reads as empty.
func readAll(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, syscall.EISDIR) {
		return nil, nil
	}
	return b, err
}

// FileError is a TLS file nginx refuses; Error is nginx's message.
type FileError struct{ Msg string }

func (e *FileError) Error() string { return e.Msg }

func fileErr(format string, a ...any) error { return &FileError{Msg: fmt.Sprintf(format, a...)} }

// certSecurity is OpenSSL's security check of a server certificate and
// its chain as SSL_CTX_use_certificate and SSL_CTX_set0_chain make
// it at the security level of ssl_ciphers (SecurityLevel): the key's
// strength, and the signature's digest unless the certificate is
// self-signed.
func certSecurity(certFile string, certs []*x509.Certificate, level int) error {
	if level < 1 || level > len(minBits) {
		return nil
	}
	need := minBits[level-1]
	for i, c := range certs {
		fn, reason := "SSL_CTX_use_certificate", "error:0A00018F:SSL routines::ee key too small"
		if i > 0 {
			fn, reason = "SSL_CTX_set0_chain", "error:0A00018D:SSL routines::ca key too small"
		}
		if keyBits(c) < need {
			return fileErr(`%s("%s") failed (SSL: %s)`, fn, certFile, reason)
		}
		if !selfIssued(c) && sigBits(c) < need {
			return fileErr(`%s("%s") failed (SSL: %s)`, fn, certFile, "error:0A00018E:SSL routines::ca md too weak")
		}
	}
	return nil
}

// LoadKeyPair loads ssl_certificate (with its chain) and
// ssl_certificate_key as nginx does, trying each password of
// ssl_password_file in turn (passwords nil: there is none). The errors are
// nginx's messages.
func LoadKeyPair(certFile, keyFile string, passwords []string, level int) (tls.Certificate, error) {
	var out tls.Certificate
	certs, err := loadCertChain(certFile)
	if err != nil {
		return out, err
	}
	if err := certSecurity(certFile, certs, level); err != nil {
		return out, err
	}
	key, err := loadKey(keyFile, passwords)
	if err != nil {
		return out, err
	}
	if !publicKeyMatches(certs[0].PublicKey, key) {
		return out, fileErr(`SSL_CTX_use_PrivateKey("%s") failed (SSL: %s)`, keyFile, sslKeyMismatch)
	}
	for _, c := range certs {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	out.Leaf = certs[0]
	out.PrivateKey = key
	return out, nil
}

func loadCertChain(path string) ([]*x509.Certificate, error) {
	fail := func(fn, ssl string) error {
		return fileErr(`cannot load certificate "%s": %s failed (SSL: %s)`, path, fn, ssl)
	}
	data, err := readFile(path)
	if err != nil {
		return nil, fail("BIO_new_file()", fopenError(path, err))
	}
	var certs []*x509.Certificate
	fn := "PEM_read_bio_X509_AUX()"
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" && b.Type != "TRUSTED CERTIFICATE" && b.Type != "X509 CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fail(fn, fmt.Sprintf(sslBadASN1, "X509"))
		}
		certs = append(certs, c)
		fn = "PEM_read_bio_X509()"
	}
	// pem.Decode steps over a block whose base64 is broken; OpenSSL
	// stops there.
	if n := bytes.Count(data, []byte("-----BEGIN ")); n > 0 && countBlocks(data) < n {
		if len(certs) == 0 && !hasCertBegin(data) {
			return nil, fail(fn, fmt.Sprintf(sslNoStartLine, "TRUSTED CERTIFICATE"))
		}
		return nil, fail(fn, sslBadBase64)
	}
	if len(certs) == 0 {
		return nil, fail(fn, fmt.Sprintf(sslNoStartLine, "TRUSTED CERTIFICATE"))
	}
	return certs, nil
}

func hasCertBegin(data []byte) bool {
	for _, t := range []string{"CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"} {
		if bytes.Contains(data, []byte("-----BEGIN "+t+"-----")) {
			return true
		}
	}
	return false
}

func countBlocks(data []byte) int {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n
		}
		n++
	}
}

func loadKey(path string, passwords []string) (crypto.Signer, error) {
	fail := func(fn, ssl string) error {
		return fileErr(`cannot load certificate key "%s": %s failed (SSL: %s)`, path, fn, ssl)
	}
	data, err := readFile(path)
	if err != nil {
		return nil, fail("BIO_new_file()", fopenError(path, err))
	}
	const fn = "PEM_read_bio_PrivateKey()"
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fail(fn, sslNoKeyDecoder)
		}
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY":
			if passwords == nil {
				return nil, fail(fn, sslNoPasswordPKCS8)
			}
			var last error
			for _, pw := range passwords {
				der, err := decryptPKCS8(b.Bytes, []byte(pw))
				if err == nil {
					if k, err := parseKeyDER("PRIVATE KEY", der); err == nil {
						return k, nil
					}
				}
				last = err
			}
			if errors.Is(last, errUnsupportedPBE) {
				return nil, fail(fn, sslNoKeyDecoder)
			}
			return nil, fail(fn, sslBadDecryptPKCS8)
		case strings.HasSuffix(b.Type, "PRIVATE KEY") && b.Headers["Proc-Type"] == "4,ENCRYPTED":
			if passwords == nil {
				return nil, fail(fn, sslNoPasswordPEM)
			}
			for _, pw := range passwords {
				der, err := x509.DecryptPEMBlock(b, []byte(pw)) //nolint:staticcheck // legacy PEM encryption is what OpenSSL writes with -aes128 etc.
				if err != nil {
					continue
				}
				if k, err := parseKeyDER(b.Type, der); err == nil {
					return k, nil
				}
			}
			return nil, fail(fn, sslBadDecryptPEM)
		case b.Type == "PRIVATE KEY" || b.Type == "RSA PRIVATE KEY" || b.Type == "EC PRIVATE KEY":
			k, err := parseKeyDER(b.Type, b.Bytes)
			if err != nil {
				if errors.Is(err, errPointNotOnCurve) {
					return nil, fail(fn, sslECPointNotOnCurve)
				}
				if b.Type == "PRIVATE KEY" {
					return nil, fail(fn, sslBadPKCS8)
				}
				return nil, fail(fn, sslNoKeyDecoder)
			}
			return k, nil
		}
	}
}

func parseKeyDER(typ string, der []byte) (crypto.Signer, error) {
	var k any
	var err error
	switch typ {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(der)
	default:
		k, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		return nil, err
	}
	if ek, ok := k.(*ecdsa.PrivateKey); ok && !ecEmbeddedPointValid(typ, der, ek.Curve) {
		return nil, errPointNotOnCurve
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return s, nil
}

// errPointNotOnCurve: an EC key whose stored public point is not on its
// curve. Go derives the public key from the private scalar and never
// reads the stored point; OpenSSL decodes it and refuses the key.
var errPointNotOnCurve = errors.New("point is not on curve")

// ecEmbeddedPointValid reports whether the public point an EC private key
// carries (RFC 5915's optional publicKey), if any, is a point of curve.
func ecEmbeddedPointValid(typ string, der []byte, curve elliptic.Curve) bool {
	if typ != "EC PRIVATE KEY" {
		var info struct {
			Version    int
			Algo       pkix.AlgorithmIdentifier
			PrivateKey []byte
		}
		if _, err := asn1.Unmarshal(der, &info); err != nil {
			return true // x509 parsed it; nothing more to look at
		}
		der = info.PrivateKey
	}
	var key struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
	}
	if _, err := asn1.Unmarshal(der, &key); err != nil || len(key.PublicKey.Bytes) == 0 {
		return true
	}
	pt := key.PublicKey.Bytes
	if pt[0] == 2 || pt[0] == 3 {
		x, _ := elliptic.UnmarshalCompressed(curve, pt)
		return x != nil
	}
	var ec ecdh.Curve
	switch curve {
	case elliptic.P256():
		ec = ecdh.P256()
	case elliptic.P384():
		ec = ecdh.P384()
	case elliptic.P521():
		ec = ecdh.P521()
	default:
		return true
	}
	_, err := ec.NewPublicKey(pt)
	return err == nil
}

func publicKeyMatches(pub any, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	switch p := pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return p.(equaler).Equal(key.Public())
	}
	return false
}

// ReadPasswords splits an ssl_password_file as nginx does: one password a
// line (LF, optionally CR LF); the empty remainder after the last newline
// is not a password.
func ReadPasswords(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return splitPasswords(data), nil
}

func splitPasswords(data []byte) []string {
	out := []string{}
	s := strings.TrimSuffix(string(data), "\n")
	if len(data) == 0 {
		return out
	}
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.TrimSuffix(l, "\r"))
	}
	return out
}

// LoadCAFile reads ssl_client_certificate or ssl_trusted_certificate as
// SSL_CTX_load_verify_locations does: certificates and CRLs, at least one.
func LoadCAFile(path string) ([]*x509.Certificate, []*x509.RevocationList, error) {
	certs, crls, err := loadVerifyFile(path)
	if err != nil {
		return nil, nil, fileErr(`SSL_CTX_load_verify_locations("%s") failed (SSL: %s)`, path, err.Error())
	}
	return certs, crls, nil
}

// LoadCRLFile reads ssl_crl as X509_LOOKUP_load_file does.
func LoadCRLFile(path string) ([]*x509.Certificate, []*x509.RevocationList, error) {
	certs, crls, err := loadVerifyFile(path)
	if err != nil {
		return nil, nil, fileErr(`X509_LOOKUP_load_file("%s") failed (SSL: %s)`, path, err.Error())
	}
	return certs, crls, nil
}

type sslText string

func (s sslText) Error() string { return string(s) }

func loadVerifyFile(path string) ([]*x509.Certificate, []*x509.RevocationList, error) {
	data, err := readAll(path)
	if err != nil {
		return nil, nil, sslText(fopenError(path, err) + " error:05880002:x509 certificate routines::system lib")
	}
	var certs []*x509.Certificate
	var crls []*x509.RevocationList
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, sslText(fmt.Sprintf(sslBadASN1, "X509") + " error:05880009:x509 certificate routines::PEM lib")
			}
			certs = append(certs, c)
		case "X509 CRL":
			c, err := x509.ParseRevocationList(b.Bytes)
			if err != nil {
				return nil, nil, sslText(fmt.Sprintf(sslBadASN1, "X509_CRL") + " error:05880009:x509 certificate routines::PEM lib")
			}
			crls = append(crls, c)
		}
	}
	if n := bytes.Count(data, []byte("-----BEGIN ")); n > countBlocks(data) {
		return nil, nil, sslText(sslBadBase64 + " error:05880009:x509 certificate routines::PEM lib")
	}
	if len(certs) == 0 && len(crls) == 0 {
		return nil, nil, sslText(sslNoCertOrCRL)
	}
	return certs, crls, nil
}

// CheckDHParam reads ssl_dhparam as PEM_read_bio_DHparams does. Go's TLS
// has no finite-field DHE suites, so the parameters are only checked.
//
// At an OpenSSL security level (SecurityLevel of ssl_ciphers) parameters
// weaker than it are refused as SSL_CTX_set0_tmp_dh_pkey refuses them.
func CheckDHParam(path string, level int) error {
	fail := func(ssl string) error {
		return fileErr(`PEM_read_bio_DHparams("%s") failed (SSL: %s)`, path, ssl)
	}
	data, err := readAll(path)
	if err != nil {
		return fileErr(`BIO_new_file("%s") failed (SSL: %s)`, path, fopenError(path, err))
	}
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "DH PARAMETERS" && b.Type != "X9.42 DH PARAMETERS" {
			continue
		}
		if !validDHParams(b.Type, b.Bytes) {
			return fail(fmt.Sprintf(sslBadASN1, "DHparams"))
		}
		if level >= 1 && level <= len(minBits) && dhSecurityBits(b.Type, b.Bytes) < minBits[level-1] {
			return fileErr(`SSL_CTX_set_tmp_dh("%s") failed (SSL: error:0A00018A:SSL routines::dh key too small)`, path)
		}
		return nil
	}
	if bytes.Contains(data, []byte("-----BEGIN DH PARAMETERS-----")) {
		return fail(sslBadBase64)
	}
	return fail(fmt.Sprintf(sslNoStartLine, "DH PARAMETERS"))
}

// TicketKey is one ssl_session_ticket_key file turned into a key for
// crypto/tls.
type TicketKey [32]byte

// LoadTicketKey reads an ssl_session_ticket_key file. nginx wants 48 bytes
// (16 name, 16 HMAC, 16 AES-128) or 80 bytes (16 name, 32 HMAC, 32
// AES-256). crypto/tls takes one 32-byte secret per key and derives its
// own HMAC and AES keys from it, so mailgate uses the SHA-256 of the whole
// file: the same file gives the same key on every mailgate instance, and
// tickets are shared between them (not with nginx: the ticket formats
// differ anyway).
func LoadTicketKey(path string) (TicketKey, error) {
	var k TicketKey
	fi, err := os.Stat(path)
	if err != nil {
		return k, err
	}
	if sz := fi.Size(); sz != 48 && sz != 80 {
		return k, fileErr(`"%s" must be 48 or 80 bytes`, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return k, err
	}
	if len(data) != 48 && len(data) != 80 {
		return k, fileErr(`"%s" must be 48 or 80 bytes`, path)
	}
	return ticketKey(data), nil
}
