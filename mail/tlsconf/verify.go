package tlsconf

import (
	"bytes"
	"crypto/x509"
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
// (ssl_crl; nil: no revocation check) and ssl_verify_depth.
type ClientVerify struct {
	Roots []*x509.Certificate
	CRLs  []*x509.RevocationList
	Depth int
}

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
		if !sslClientPurpose(x, mustBeCA) {
			fail(ErrInvalidPurpose)
		}
		if i > 1 && x.BasicConstraintsValid && (x.MaxPathLen > 0 || x.MaxPathLenZero) && plen > x.MaxPathLen {
			fail(ErrPathLengthExceeded)
		}
		if i > 0 && !selfIssued(x) {
			plen++
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
			if xi.CheckSignature(xs.SignatureAlgorithm, xs.RawTBSCertificate, xs.Signature) != nil {
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
