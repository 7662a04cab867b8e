package tlsconf

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"hash"
	"math/big"
)

// Encrypted PKCS#8 keys ("ENCRYPTED PRIVATE KEY", what `openssl pkcs8
// -topk8` and `openssl genpkey -aes256` write): PBES2 with PBKDF2 and a CBC
// cipher, as RFC 8018 defines it. The older PBES1 and PKCS#12 schemes and
// scrypt are not supported (OpenSSL 3 does not write them by default).

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// maxIterations bounds the PBKDF2 work a key file can ask for (OpenSSL
// writes 2048 by default).
var maxIterations = 10_000_000

var (
	errUnsupportedPBE = errors.New("unsupported key encryption")
	errBadDecrypt     = errors.New("bad decrypt")
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type encryptedPrivateKeyInfo struct {
	Algorithm     algorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc algorithmIdentifier
	EncryptionScheme  algorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                 `asn1:"optional"`
	PRF            algorithmIdentifier `asn1:"optional"`
}

// decryptPKCS8 returns the DER PrivateKeyInfo inside an
// EncryptedPrivateKeyInfo.
func decryptPKCS8(der, password []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, errUnsupportedPBE
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, errUnsupportedPBE
	}
	var p pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &p); err != nil {
		return nil, errUnsupportedPBE
	}
	if !p.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, errUnsupportedPBE
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(p.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
		return nil, errUnsupportedPBE
	}
	var iv []byte
	if _, err := asn1.Unmarshal(p.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
		return nil, errUnsupportedPBE
	}
	var keyLen int
	var newCipher func([]byte) (cipher.Block, error)
	switch s := p.EncryptionScheme.Algorithm; {
	case s.Equal(oidAES128CBC):
		keyLen, newCipher = 16, aes.NewCipher
	case s.Equal(oidAES192CBC):
		keyLen, newCipher = 24, aes.NewCipher
	case s.Equal(oidAES256CBC):
		keyLen, newCipher = 32, aes.NewCipher
	case s.Equal(oidDESEDE3CBC):
		keyLen, newCipher = 24, des.NewTripleDESCipher
	default:
		return nil, errUnsupportedPBE
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, errUnsupportedPBE
	}
	var h func() hash.Hash
	switch prf := kdf.PRF.Algorithm; {
	case len(prf) == 0, prf.Equal(oidHMACSHA1):
		h = sha1.New
	case prf.Equal(oidHMACSHA224):
		h = sha256.New224
	case prf.Equal(oidHMACSHA256):
		h = sha256.New
	case prf.Equal(oidHMACSHA384):
		h = sha512.New384
	case prf.Equal(oidHMACSHA512):
		h = sha512.New
	default:
		return nil, errUnsupportedPBE
	}
	if kdf.IterationCount <= 0 || kdf.IterationCount > maxIterations {
		return nil, errUnsupportedPBE
	}
	key, err := pbkdf2.Key(h, string(password), kdf.Salt, kdf.IterationCount, keyLen)
	if err != nil {
		return nil, errUnsupportedPBE
	}
	block, err := newCipher(key)
	if err != nil {
		return nil, errUnsupportedPBE
	}
	bs := block.BlockSize()
	data := info.EncryptedData
	if len(iv) != bs || len(data) == 0 || len(data)%bs != 0 {
		return nil, errBadDecrypt
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > bs {
		return nil, errBadDecrypt
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, errBadDecrypt
		}
	}
	return out[:len(out)-pad], nil
}

// validDHParams: PKCS#3 DHparams ::= SEQUENCE { prime INTEGER, base INTEGER,
// privateValueLength INTEGER OPTIONAL }.
// X9.42 parameters (p, q, g, ...) are only checked to be a SEQUENCE.
func validDHParams(typ string, der []byte) bool {
	if typ != "DH PARAMETERS" {
		var raw asn1.RawValue
		rest, err := asn1.Unmarshal(der, &raw)
		return err == nil && len(rest) == 0 && raw.Tag == asn1.TagSequence
	}
	var p struct {
		P, G *big.Int
		L    int `asn1:"optional"`
	}
	rest, err := asn1.Unmarshal(der, &p)
	return err == nil && len(rest) == 0 && p.P.Sign() > 0 && p.G.Sign() > 0
}

// dhSecurityBits is OpenSSL's DH_security_bits of valid parameters: by
// the prime's size, capped by half the subgroup order's (X9.42 q) or the
// private value length's bits when given.
func dhSecurityBits(typ string, der []byte) int {
	var pBits, n int
	if typ == "DH PARAMETERS" {
		var p struct {
			P, G *big.Int
			L    int `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(der, &p); err != nil {
			return 1 << 16
		}
		pBits, n = p.P.BitLen(), p.L
	} else {
		var p struct {
			P, G, Q *big.Int
			Rest    asn1.RawValue `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(der, &p); err != nil {
			return 1 << 16
		}
		pBits, n = p.P.BitLen(), p.Q.BitLen()
	}
	bits := rsaBits(pBits)
	if n <= 0 || bits == 0 {
		return bits
	}
	if n/2 < 80 {
		return 0
	}
	return min(bits, n/2)
}

func ticketKey(data []byte) TicketKey {
	return sha256.Sum256(data)
}
