package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // DSA client certificates still exist
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5" //nolint:gosec // verifying old signatures as OpenSSL does
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // verifying old signatures as OpenSSL does
	"crypto/x509"
	"errors"
	"time"
)

// OpenSSL's X509_V_ERR codes that VerifyClientChain reports.
const (
	VerifyOK                   = 0
	ErrUnableToGetIssuerCert   = 2
	ErrUnableToGetCRL          = 3
	ErrCertSignatureFailure    = 7
	ErrCertNotYetValid         = 9
	ErrCertHasExpired          = 10
	ErrCRLNotYetValid          = 11
	ErrCRLHasExpired           = 12
	ErrDepthZeroSelfSigned     = 18
	ErrSelfSignedCertInChain   = 19
	ErrUnableToGetIssuerLocal  = 20
	ErrUnableToVerifyLeafSig   = 21
	ErrCertRevoked             = 23
	ErrInvalidCA               = 24
	ErrPathLengthExceeded      = 25
	ErrInvalidPurpose          = 26
	ErrCertUntrusted           = 27
	ErrKeyUsageNoCertSign      = 32
	ErrUnhandledCriticalExtern = 34
	ErrEEKeyTooSmall           = 66
	ErrCAKeyTooSmall           = 67
	ErrCAMDTooWeak             = 68
)

// verifyErrorText is X509_verify_cert_error_string of OpenSSL 3.0.
var verifyErrorText = map[int]string{
	VerifyOK:                   "ok",
	ErrUnableToGetIssuerCert:   "unable to get issuer certificate",
	ErrUnableToGetCRL:          "unable to get certificate CRL",
	ErrCertSignatureFailure:    "certificate signature failure",
	ErrCertNotYetValid:         "certificate is not yet valid",
	ErrCertHasExpired:          "certificate has expired",
	ErrCRLNotYetValid:          "CRL is not yet valid",
	ErrCRLHasExpired:           "CRL has expired",
	ErrDepthZeroSelfSigned:     "self-signed certificate",
	ErrSelfSignedCertInChain:   "self-signed certificate in certificate chain",
	ErrUnableToGetIssuerLocal:  "unable to get local issuer certificate",
	ErrUnableToVerifyLeafSig:   "unable to verify the first certificate",
	ErrCertRevoked:             "certificate revoked",
	ErrInvalidCA:               "invalid CA certificate",
	ErrPathLengthExceeded:      "path length constraint exceeded",
	ErrInvalidPurpose:          "unsuitable certificate purpose",
	ErrCertUntrusted:           "certificate not trusted",
	ErrKeyUsageNoCertSign:      "key usage does not include certificate signing",
	ErrUnhandledCriticalExtern: "unhandled critical extension",
	ErrEEKeyTooSmall:           "EE certificate key too weak",
	ErrCAKeyTooSmall:           "CA certificate key too weak",
	ErrCAMDTooWeak:             "CA signature digest algorithm too weak",
}

// VerifyErrorText is OpenSSL's text for a verify result code.
func VerifyErrorText(code int) string {
	if s, ok := verifyErrorText[code]; ok {
		return s
	}
	return "unknown certificate verification error"
}

// VerifyOptionalNoCA reports whether ssl_verify_client optional_no_ca
// lets a client through with this result (nginx's
// ngx_ssl_verify_error_optional).
func VerifyOptionalNoCA(code int) bool {
	switch code {
	case ErrDepthZeroSelfSigned, ErrSelfSignedCertInChain, ErrUnableToGetIssuerLocal, ErrCertUntrusted, ErrUnableToVerifyLeafSig:
		return true
	}
	return false
}

// ClientVerify is what verifying a client certificate needs: the trusted
// certificates (ssl_client_certificate, ssl_trusted_certificate), the CRLs
// (ssl_crl; nil: no revocation check), ssl_verify_depth and OpenSSL's
// security level (SecurityLevel of ssl_ciphers).
type ClientVerify struct {
	Roots []*x509.Certificate
	CRLs  []*x509.RevocationList
	Depth int
	Level int
	// ServerPurpose checks the chain for the purpose "SSL server" instead
	// of "SSL client": an upstream's chain (mailgate's proxy_ssl_verify).
	ServerPurpose bool
}

// minBits is the security bits each security level 1-5 requires.
var minBits = [...]int{80, 112, 128, 192, 256}

// VerifyClientChain verifies the certificates a client sent (its own
// first) as OpenSSL 3.0 does for nginx, whose verify callback lets every
// error pass: the chain is built (trusted certificates first, at most
// Depth+2 long), then its extensions, revocation, signatures and validity
// are checked, and the result is the code of the last error met, as
// SSL_get_verify_result reports it; 0 if none.
//
// Names are compared byte for byte (OpenSSL compares a canonical form),
// and extensions OpenSSL knows but crypto/x509 does not are not checked.
func (v *ClientVerify) VerifyClientChain(peer []*x509.Certificate, now time.Time) int {
	if len(peer) == 0 {
		return VerifyOK
	}
	last := VerifyOK
	fail := func(code int) { last = code }
	need := 0
	if v.Level >= 1 && v.Level <= len(minBits) {
		need = minBits[v.Level-1]
	}
	if need > 0 && keyBits(peer[0]) < need {
		fail(ErrEEKeyTooSmall)
	}

	// build_chain
	chain := []*x509.Certificate{peer[0]}
	numUntrusted := 1
	trusted := false
	maxLen := v.Depth + 2
	inChain := func(c *x509.Certificate) bool {
		for _, x := range chain {
			if x.Equal(c) {
				return true
			}
		}
		return false
	}
	for len(chain) < maxLen {
		x := chain[len(chain)-1]
		if len(chain) == numUntrusted && selfIssued(x) {
			if len(chain) == 1 && containsCert(v.Roots, x) {
				trusted = true
			}
			break
		}
		if r := findIssuer(v.Roots, x, nil); r != nil {
			chain = append(chain, r)
			if selfIssued(r) {
				trusted = true
				break
			}
			continue
		}
		if len(chain) > numUntrusted {
			break // past a trusted certificate only trusted ones follow
		}
		if u := findIssuer(peer[1:], x, inChain); u != nil {
			chain = append(chain, u)
			numUntrusted++
			continue
		}
		break
	}
	if !trusted {
		top := chain[len(chain)-1]
		switch {
		case selfIssued(top) && len(chain) == 1:
			fail(ErrDepthZeroSelfSigned)
		case selfIssued(top):
			fail(ErrSelfSignedCertInChain)
		case numUntrusted < len(chain):
			fail(ErrUnableToGetIssuerCert)
		default:
			fail(ErrUnableToGetIssuerLocal)
		}
	}

	// check_extensions, for the purpose "SSL client"
	plen := 0
	for i, x := range chain {
		if len(x.UnhandledCriticalExtensions) > 0 {
			fail(ErrUnhandledCriticalExtern)
		}
		mustBeCA := i > 0
		if mustBeCA {
			if r := checkCA(x); r == 0 || i+1 < len(chain) && r != 1 {
				fail(ErrInvalidCA)
			}
		}
		purposeOK := sslClientPurpose
		if v.ServerPurpose {
			purposeOK = sslServerPurpose
		}
		if !purposeOK(x, mustBeCA) {
			fail(ErrInvalidPurpose)
		}
		if i > 1 && x.BasicConstraintsValid && (x.MaxPathLen > 0 || x.MaxPathLenZero) && plen > x.MaxPathLen {
			fail(ErrPathLengthExceeded)
		}
		if i > 0 && !selfIssued(x) {
			plen++
		}
	}

	// check_auth_level: issuers' keys, and the signatures of all but the
	// top certificate
	if need > 0 {
		for i, x := range chain {
			if i > 0 && keyBits(x) < need {
				fail(ErrCAKeyTooSmall)
			}
			if i < len(chain)-1 && sigBits(x) < need {
				fail(ErrCAMDTooWeak)
			}
		}
	}

	// check_revocation (nginx sets CRL_CHECK and CRL_CHECK_ALL)
	if v.CRLs != nil {
		for i, c := range chain {
			issuer := c
			if i+1 < len(chain) {
				issuer = chain[i+1]
			}
			var crl *x509.RevocationList
			for _, l := range v.CRLs {
				if bytes.Equal(l.RawIssuer, c.RawIssuer) && l.CheckSignatureFrom(issuer) == nil {
					crl = l
					break
				}
			}
			switch {
			case crl == nil:
				fail(ErrUnableToGetCRL)
				continue
			case now.Before(crl.ThisUpdate):
				fail(ErrCRLNotYetValid)
			case !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate):
				fail(ErrCRLHasExpired)
			}
			for _, r := range crl.RevokedCertificateEntries {
				if r.SerialNumber.Cmp(c.SerialNumber) == 0 {
					fail(ErrCertRevoked)
					break
				}
			}
		}
	}

	// internal_verify: signatures and validity, from the top down
	n := len(chain) - 1
	xi := chain[n]
	xs := xi
	if !selfIssued(xi) {
		if n == 0 {
			fail(ErrUnableToVerifyLeafSig)
		} else {
			n--
			xs = chain[n]
		}
	}
	for n >= 0 {
		if xs != xi {
			if xi.KeyUsage != 0 && xi.KeyUsage&x509.KeyUsageCertSign == 0 {
				fail(ErrKeyUsageNoCertSign)
			}
			if !signatureValid(xi, xs) {
				fail(ErrCertSignatureFailure)
			}
		}
		if now.Before(xs.NotBefore) {
			fail(ErrCertNotYetValid)
		}
		if now.After(xs.NotAfter) {
			fail(ErrCertHasExpired)
		}
		n--
		if n >= 0 {
			xi, xs = xs, chain[n]
		}
	}
	return last
}

// selfIssued is OpenSSL's check_issued(x, x): the names match and an
// authority key identifier, if any, names the certificate's own key.
func selfIssued(x *x509.Certificate) bool { return issuedBy(x, x) }

func issuedBy(x, issuer *x509.Certificate) bool {
	if !bytes.Equal(x.RawIssuer, issuer.RawSubject) {
		return false
	}
	return len(x.AuthorityKeyId) == 0 || len(issuer.SubjectKeyId) == 0 || bytes.Equal(x.AuthorityKeyId, issuer.SubjectKeyId)
}

// findIssuer is the first certificate of pool that issued x (one that is
// valid now preferred, as OpenSSL does, is not modelled), skipping those
// skip reports.
func findIssuer(pool []*x509.Certificate, x *x509.Certificate, skip func(*x509.Certificate) bool) *x509.Certificate {
	for _, c := range pool {
		if skip != nil && skip(c) {
			continue
		}
		if issuedBy(x, c) {
			return c
		}
	}
	return nil
}

func containsCert(pool []*x509.Certificate, x *x509.Certificate) bool {
	for _, c := range pool {
		if c.Equal(x) {
			return true
		}
	}
	return false
}

// checkCA is OpenSSL's check_ca: 1 for basicConstraints CA:TRUE, 3 for
// a version 1 self-signed root, 4 for a key usage allowing certificate
// signing without basicConstraints, 0 for not a CA.
func checkCA(x *x509.Certificate) int {
	if x.KeyUsage != 0 && x.KeyUsage&x509.KeyUsageCertSign == 0 {
		return 0
	}
	if x.BasicConstraintsValid {
		if x.IsCA {
			return 1
		}
		return 0
	}
	if x.Version == 1 && selfIssued(x) {
		return 3
	}
	if x.KeyUsage != 0 {
		return 4
	}
	return 0
}

// sslClientPurpose is OpenSSL's check_purpose_ssl_client.
func sslClientPurpose(x *x509.Certificate, ca bool) bool {
	if len(x.ExtKeyUsage) > 0 || len(x.UnknownExtKeyUsage) > 0 {
		ok := false
		for _, u := range x.ExtKeyUsage {
			if u == x509.ExtKeyUsageClientAuth {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if ca {
		return checkCA(x) != 0
	}
	return x.KeyUsage == 0 || x.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyAgreement) != 0
}

// sslServerPurpose is OpenSSL's check_purpose_ssl_server: an extended
// key usage, if any, includes serverAuth (or a server-gated-crypto
// usage); a key usage, if any, allows a TLS server key.
func sslServerPurpose(x *x509.Certificate, ca bool) bool {
	if len(x.ExtKeyUsage) > 0 || len(x.UnknownExtKeyUsage) > 0 {
		ok := false
		for _, u := range x.ExtKeyUsage {
			if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageNetscapeServerGatedCrypto || u == x509.ExtKeyUsageMicrosoftServerGatedCrypto {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if ca {
		return checkCA(x) != 0
	}
	return x.KeyUsage == 0 || x.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment|x509.KeyUsageKeyAgreement) != 0
}

// keyBits is OpenSSL's EVP_PKEY_get_security_bits of a certificate's key.
func keyBits(c *x509.Certificate) int {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return rsaBits(k.N.BitLen())
	case *dsa.PublicKey:
		return rsaBits(k.P.BitLen())
	case *ecdsa.PublicKey:
		n := k.Curve.Params().N.BitLen()
		switch {
		case n >= 512:
			return 256
		case n >= 384:
			return 192
		case n >= 256:
			return 128
		case n >= 224:
			return 112
		case n >= 160:
			return 80
		}
		return n / 2
	case ed25519.PublicKey:
		return 128
	}
	return 1 << 16 // unknown: not judged
}

// rsaBits is OpenSSL's BN_security_bits for an RSA or DSA modulus.
func rsaBits(n int) int {
	switch {
	case n >= 15360:
		return 256
	case n >= 7680:
		return 192
	case n >= 3072:
		return 128
	case n >= 2048:
		return 112
	case n >= 1024:
		return 80
	}
	return 0
}

// sigBits is the security bits OpenSSL 3.0 gives a certificate's
// signature: those of its digest (SHA-1 63, MD5 39).
func sigBits(c *x509.Certificate) int {
	switch c.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA:
		return 39
	case x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return 63
	case x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256, x509.PureEd25519:
		return 128
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		return 192
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		return 256
	}
	return 1 << 16
}

// signatureValid checks that issuer's key signed c. crypto/x509 refuses
// SHA-1 and MD5 RSA signatures, which OpenSSL still verifies (the
// security level judges them, above), so those are checked here.
func signatureValid(issuer, c *x509.Certificate) bool {
	err := issuer.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	var insecure x509.InsecureAlgorithmError
	if !errors.As(err, &insecure) {
		return err == nil
	}
	pub, ok := issuer.PublicKey.(*rsa.PublicKey)
	if !ok {
		return false
	}
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA:
		sum := sha1.Sum(c.RawTBSCertificate) //nolint:gosec // OpenSSL verifies SHA-1 signatures
		return rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], c.Signature) == nil
	case x509.MD5WithRSA:
		sum := md5.Sum(c.RawTBSCertificate) //nolint:gosec // and MD5 ones
		return rsa.VerifyPKCS1v15(pub, crypto.MD5, sum[:], c.Signature) == nil
	}
	return false
}
