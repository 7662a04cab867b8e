// Package tlsconf turns ngx_mail_ssl_module's settings into what Go's
// crypto/tls needs, judging them as nginx and OpenSSL 3 do: OpenSSL cipher
// strings (ssl_ciphers), group lists (ssl_ecdh_curve), PEM certificates and
// keys with ssl_password_file, CA and CRL files, DH parameters and session
// ticket key files. The error texts are the ones nginx prints, OpenSSL's
// part included, so that the load-time check (package confparse) and the
// runtime (package mail) say the same thing nginx would.
package tlsconf

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

//go:generate sh -c "python3 gen_cipherdata.py | gofmt > cipherdata.go"

type kxAlg uint8

const (
	kRSA kxAlg = iota + 1
	kECDHE
	kDHE
	kPSK
	kRSAPSK
	kDHEPSK
	kECDHEPSK
	kSRP
)

type authAlg uint8

const (
	aRSA authAlg = iota + 1
	aECDSA
	aDSS
	aNULL
	aPSK
	aSRP
)

type encAlg uint8

const (
	encNULL encAlg = iota + 1
	encAES128
	encAES256
	encAESGCM128
	encAESGCM256
	encAESCCM128
	encAESCCM256
	encAESCCM8128
	encAESCCM8256
	encARIAGCM128
	encARIAGCM256
	encCAMELLIA128
	encCAMELLIA256
	encCHACHA20256
)

type macAlg uint8

const (
	macMD5 macAlg = iota + 1
	macSHA1
	macSHA256
	macSHA384
	macAEAD
)

type minVer uint8

const (
	verSSL3 minVer = iota + 1
	verTLS1
	verTLS12
)

const (
	strHigh = 1 << iota
	strMedium
	strLow
	strFIPS
	notDefault
)

// cipherInfo is one OpenSSL cipher suite and the attributes cipher-string
// words select on.
type cipherInfo struct {
	id     uint16
	name   string // OpenSSL's name, e.g. ECDHE-RSA-AES128-GCM-SHA256
	kx     kxAlg
	auth   authAlg
	enc    encAlg
	mac    macAlg
	ver    minVer
	bits   int // strength bits, for @STRENGTH
	fflags int
}

// pred selects ciphers.
type pred func(c *cipherInfo) bool

func isKx(k ...kxAlg) pred       { return func(c *cipherInfo) bool { return slices.Contains(k, c.kx) } }
func isAuth(a ...authAlg) pred   { return func(c *cipherInfo) bool { return slices.Contains(a, c.auth) } }
func isEnc(e ...encAlg) pred     { return func(c *cipherInfo) bool { return slices.Contains(e, c.enc) } }
func isMac(m ...macAlg) pred     { return func(c *cipherInfo) bool { return slices.Contains(m, c.mac) } }
func isVer(v minVer) pred        { return func(c *cipherInfo) bool { return c.ver == v } }
func hasFlag(f int) pred         { return func(c *cipherInfo) bool { return c.fflags&f != 0 } }
func matchNone(*cipherInfo) bool { return false }

func and(ps ...pred) pred {
	return func(c *cipherInfo) bool {
		for _, p := range ps {
			if !p(c) {
				return false
			}
		}
		return true
	}
}

func not(p pred) pred { return func(c *cipherInfo) bool { return !p(c) } }

var (
	encAES128s = []encAlg{encAES128, encAESGCM128, encAESCCM128, encAESCCM8128}
	encAES256s = []encAlg{encAES256, encAESGCM256, encAESCCM256, encAESCCM8256}
	encAESs    = append(append([]encAlg{}, encAES128s...), encAES256s...)
)

// aliases are OpenSSL 3's cipher-string words other than suite names.
// Words naming algorithms OpenSSL 3 leaves to the legacy provider or does
// not build (3DES, RC4, SEED, IDEA, GOST, DTLS versions) match nothing.
var aliases = map[string]pred{
	"ALL":                 not(isEnc(encNULL)),
	"COMPLEMENTOFALL":     isEnc(encNULL),
	"COMPLEMENTOFDEFAULT": and(hasFlag(notDefault), not(isEnc(encNULL))),

	"kRSA": isKx(kRSA), "kEDH": isKx(kDHE), "kDHE": isKx(kDHE), "DH": isKx(kDHE),
	"kEECDH": isKx(kECDHE), "kECDHE": isKx(kECDHE), "ECDH": isKx(kECDHE),
	"kPSK": isKx(kPSK), "kRSAPSK": isKx(kRSAPSK), "kECDHEPSK": isKx(kECDHEPSK),
	"kDHEPSK": isKx(kDHEPSK), "kSRP": isKx(kSRP),

	"aRSA": isAuth(aRSA), "aDSS": isAuth(aDSS), "DSS": isAuth(aDSS), "aNULL": isAuth(aNULL),
	"aECDSA": isAuth(aECDSA), "ECDSA": isAuth(aECDSA), "aPSK": isAuth(aPSK), "aSRP": isAuth(aSRP),

	"EDH":   and(isKx(kDHE), not(isAuth(aNULL))),
	"DHE":   and(isKx(kDHE), not(isAuth(aNULL))),
	"EECDH": and(isKx(kECDHE), not(isAuth(aNULL))),
	"ECDHE": and(isKx(kECDHE), not(isAuth(aNULL))),
	"NULL":  isEnc(encNULL),
	"RSA":   and(isKx(kRSA), isAuth(aRSA)),
	"ADH":   and(isKx(kDHE), isAuth(aNULL)),
	"AECDH": and(isKx(kECDHE), isAuth(aNULL)),
	"PSK":   isKx(kPSK, kRSAPSK, kDHEPSK, kECDHEPSK),
	"SRP":   isKx(kSRP),

	"eNULL":       isEnc(encNULL),
	"AES128":      isEnc(encAES128s...),
	"AES256":      isEnc(encAES256s...),
	"AES":         isEnc(encAESs...),
	"AESGCM":      isEnc(encAESGCM128, encAESGCM256),
	"AESCCM":      isEnc(encAESCCM128, encAESCCM256, encAESCCM8128, encAESCCM8256),
	"AESCCM8":     isEnc(encAESCCM8128, encAESCCM8256),
	"CAMELLIA128": isEnc(encCAMELLIA128),
	"CAMELLIA256": isEnc(encCAMELLIA256),
	"CAMELLIA":    isEnc(encCAMELLIA128, encCAMELLIA256),
	"CHACHA20":    isEnc(encCHACHA20256),
	"ARIA":        isEnc(encARIAGCM128, encARIAGCM256),
	"ARIAGCM":     isEnc(encARIAGCM128, encARIAGCM256),
	"ARIA128":     isEnc(encARIAGCM128),
	"ARIA256":     isEnc(encARIAGCM256),
	"CBC":         isEnc(encAES128, encAES256, encCAMELLIA128, encCAMELLIA256),

	"MD5": isMac(macMD5), "SHA1": isMac(macSHA1), "SHA": isMac(macSHA1),
	"SHA256": isMac(macSHA256), "SHA384": isMac(macSHA384),

	"SSLv3": isVer(verSSL3), "TLSv1": isVer(verTLS1), "TLSv1.0": isVer(verTLS1), "TLSv1.2": isVer(verTLS12),

	"LOW": hasFlag(strLow), "MEDIUM": hasFlag(strMedium), "HIGH": hasFlag(strHigh),
	"FIPS": and(hasFlag(strFIPS), not(isEnc(encNULL))),

	"3DES": matchNone, "RC4": matchNone, "RC2": matchNone, "IDEA": matchNone, "SEED": matchNone,
	"DES": matchNone, "GOST": matchNone, "GOST94": matchNone, "GOST89MAC": matchNone, "GOST12": matchNone,
	"kGOST": matchNone, "aGOST": matchNone, "aGOST01": matchNone, "aGOST12": matchNone,
	"DTLSv1": matchNone, "DTLSv1.0": matchNone, "DTLSv1.2": matchNone,
}

var byName = func() map[string]*cipherInfo {
	m := make(map[string]*cipherInfo, len(cipherTable))
	for i := range cipherTable {
		m[cipherTable[i].name] = &cipherTable[i]
	}
	return m
}()

// CipherError is a cipher string OpenSSL refuses; Error is nginx's text.
type CipherError struct {
	Spec   string
	Reason string // OpenSSL's error, e.g. "error:0A0000B9:SSL routines::no cipher match"
}

func (e *CipherError) Error() string {
	return fmt.Sprintf(`SSL_CTX_set_cipher_list("%s") failed (SSL: %s)`, e.Spec, e.Reason)
}

const (
	errNoCipherMatch  = "error:0A0000B9:SSL routines::no cipher match"
	errInvalidCommand = "error:0A000118:SSL routines::invalid command"
)

// entry is one suite in OpenSSL's working list.
type entry struct {
	c      *cipherInfo
	active bool
}

type cipherList []entry

// add (a plain word) activates the selected inactive suites at the end.
func (l cipherList) add(p pred) cipherList {
	picked, rest := l.split(func(e entry) bool { return !e.active && p(e.c) }, true)
	return append(rest, picked...)
}

// order ('+') moves the selected active suites to the end.
func (l cipherList) order(p pred) cipherList {
	picked, rest := l.split(func(e entry) bool { return e.active && p(e.c) }, true)
	return append(rest, picked...)
}

// del ('-') deactivates the selected suites and moves them to the front,
// where a later add finds them again in their order.
func (l cipherList) del(p pred) cipherList {
	picked, rest := l.split(func(e entry) bool { return e.active && p(e.c) }, false)
	return append(picked, rest...)
}

// bump moves the selected active suites to the front.
func (l cipherList) bump(p pred) cipherList {
	picked, rest := l.split(func(e entry) bool { return e.active && p(e.c) }, true)
	return append(picked, rest...)
}

// split separates the entries sel picks, each left with the given
// active state, from the others; both keep their order.
func (l cipherList) split(sel func(entry) bool, active bool) (picked, rest cipherList) {
	for _, e := range l {
		if sel(e) {
			picked = append(picked, entry{e.c, active})
		} else {
			rest = append(rest, e)
		}
	}
	return picked, rest
}

// kill ('!') removes the selected suites for good.
func (l cipherList) kill(p pred) cipherList {
	var out cipherList
	for _, e := range l {
		if !p(e.c) {
			out = append(out, e)
		}
	}
	return out
}

// strength (@STRENGTH) orders the active suites by strength bits, highest
// first, keeping the order within one strength.
func (l cipherList) strength() cipherList {
	maxBits := -1
	for _, e := range l {
		if e.active && e.c.bits > maxBits {
			maxBits = e.c.bits
		}
	}
	for b := maxBits; b >= 0; b-- {
		l = l.order(func(c *cipherInfo) bool { return c.bits == b })
	}
	return l
}

// baseList is OpenSSL's preference order before a cipher string applies:
// every suite inactive, ordered by its built-in rules (ephemeral ECDH
// first, AEAD and forward secrecy bumped to the top, then by strength).
var baseList = func() cipherList {
	var l cipherList
	for i := len(cipherTable) - 1; i >= 0; i-- { // by id, highest first
		l = append(l, entry{c: &cipherTable[i]})
	}
	l = l.add(and(isKx(kECDHE), isAuth(aECDSA)))
	l = l.add(isKx(kECDHE))
	l = l.del(isKx(kECDHE))
	l = l.add(isEnc(encAESGCM128, encAESGCM256))
	l = l.add(isEnc(encCHACHA20256))
	l = l.add(isEnc(encAES128, encAES256, encAESCCM128, encAESCCM256, encAESCCM8128, encAESCCM8256))
	l = l.add(func(*cipherInfo) bool { return true })
	l = l.order(isMac(macMD5))
	l = l.order(isAuth(aNULL))
	l = l.order(isKx(kRSA))
	l = l.order(isKx(kPSK))
	l = l.strength()
	l = l.bump(isVer(verTLS12))
	l = l.bump(isMac(macAEAD))
	l = l.bump(isKx(kDHE, kECDHE))
	l = l.bump(and(isKx(kDHE, kECDHE), isMac(macAEAD)))
	return l.del(func(*cipherInfo) bool { return true })
}()

// DefaultCipherList is OpenSSL 3's "DEFAULT".
const DefaultCipherList = "ALL:!COMPLEMENTOFDEFAULT:!eNULL"

func isSep(b byte) bool { return b == ':' || b == ' ' || b == ';' || b == ',' }

func isWordByte(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' ||
		b == '-' || b == '.' || b == '=' || b == '_'
}

// suiteB are the Suite B words, which replace the whole string when it
// starts with one of them.
var suiteB = []struct{ prefix, list string }{
	{"SUITEB128ONLY", "ECDHE-ECDSA-AES128-GCM-SHA256"},
	{"SUITEB128C2", "ECDHE-ECDSA-AES256-GCM-SHA384"},
	{"SUITEB128", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"},
	{"SUITEB192", "ECDHE-ECDSA-AES256-GCM-SHA384"},
}

// EvalCiphers evaluates an OpenSSL cipher string as OpenSSL 3's
// SSL_CTX_set_cipher_list does and returns the TLS 1.2-and-older suites it
// selects, in preference order, by OpenSSL name. TLS 1.3 suites are not
// affected by cipher strings. The error is nginx's message for a string
// OpenSSL refuses.
func EvalCiphers(spec string) ([]string, error) {
	l, err := evalList(spec)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range l {
		if e.active {
			out = append(out, e.c.name)
		}
	}
	if len(out) == 0 {
		return nil, &CipherError{Spec: spec, Reason: errNoCipherMatch}
	}
	return out, nil
}

func evalList(spec string) (cipherList, error) {
	rules := spec
	for _, sb := range suiteB {
		if strings.HasPrefix(rules, sb.prefix) {
			rules = sb.list
			break
		}
	}
	l := slices.Clone(baseList)
	var err error
	if strings.HasPrefix(rules, "DEFAULT") {
		if l, err = applyRules(l, DefaultCipherList, spec); err != nil {
			return nil, err
		}
		rules = strings.TrimPrefix(rules[len("DEFAULT"):], ":")
	}
	return applyRules(l, rules, spec)
}

const (
	ruleAdd = iota
	ruleDel
	ruleOrd
	ruleKill
	ruleSpecial
)

func applyRules(l cipherList, s, spec string) (cipherList, error) {
	invalid := &CipherError{Spec: spec, Reason: errInvalidCommand}
	i := 0
	for i < len(s) {
		rule := ruleAdd
		switch s[i] {
		case '-':
			rule = ruleDel
		case '+':
			rule = ruleOrd
		case '!':
			rule = ruleKill
		case '@':
			rule = ruleSpecial
		default:
			if isSep(s[i]) {
				i++
				continue
			}
		}
		if rule != ruleAdd {
			i++
		}
		var sel pred
		found := true
		var special string
		for {
			start := i
			for i < len(s) && isWordByte(s[i]) {
				i++
			}
			if i == start {
				return nil, invalid
			}
			word := s[start:i]
			if rule == ruleSpecial {
				special = word
				break
			}
			p := wordPred(word)
			if p == nil {
				found = false
				break
			}
			if sel == nil {
				sel = p
			} else {
				sel = and(sel, p)
			}
			if i < len(s) && s[i] == '+' {
				i++
				continue
			}
			break
		}
		switch {
		case rule == ruleSpecial:
			switch {
			case special == "STRENGTH":
				l = l.strength()
			case strings.HasPrefix(special, "SECLEVEL=") && len(special) > 9 && special[9] >= '0' && special[9] <= '5':
				// Security levels change which suites a handshake may
				// use, not the list.
			default:
				return nil, invalid
			}
		case found:
			switch rule {
			case ruleAdd:
				l = l.add(sel)
			case ruleDel:
				l = l.del(sel)
			case ruleOrd:
				l = l.order(sel)
			case ruleKill:
				l = l.kill(sel)
			}
		}
		if rule == ruleSpecial || !found {
			// The rest of an '@' word or of an ignored combination
			// is dropped up to the next separator.
			for i < len(s) && !isSep(s[i]) {
				i++
			}
		}
	}
	return l, nil
}

// wordPred is a cipher-string word's selection; nil for an unknown word,
// which OpenSSL ignores together with the rest of its '+' combination.
func wordPred(w string) pred {
	if c, ok := byName[w]; ok {
		return func(x *cipherInfo) bool { return x == c }
	}
	return aliases[w]
}

// goSuites maps OpenSSL's names of the suites crypto/tls implements.
var goSuites = func() map[string]uint16 {
	m := map[string]uint16{}
	for _, s := range tls.CipherSuites() {
		if n, ok := opensslName[s.ID]; ok {
			m[n] = s.ID
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		if n, ok := opensslName[s.ID]; ok {
			m[n] = s.ID
		}
	}
	return m
}()

// GoCipherSuites evaluates spec and returns, in OpenSSL's order, the
// TLS 1.0-1.2 suites of the result that crypto/tls implements (possibly
// none: then a TLS 1.2 handshake fails, as nginx's would for lack of a
// common suite). TLS 1.3 suites are not configurable, in Go as in nginx.
func GoCipherSuites(spec string) ([]uint16, error) {
	names, err := EvalCiphers(spec)
	if err != nil {
		return nil, err
	}
	out := []uint16{}
	for _, n := range names {
		if id, ok := goSuites[n]; ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// opensslName is OpenSSL's name of each suite crypto/tls knows.
var opensslName = map[uint16]string{
	tls.TLS_AES_128_GCM_SHA256:                        "TLS_AES_128_GCM_SHA256",
	tls.TLS_AES_256_GCM_SHA384:                        "TLS_AES_256_GCM_SHA384",
	tls.TLS_CHACHA20_POLY1305_SHA256:                  "TLS_CHACHA20_POLY1305_SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256:         "ECDHE-RSA-AES128-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256:       "ECDHE-ECDSA-AES128-SHA256",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA256:               "AES128-SHA256",
}

// CipherName is OpenSSL's name of a negotiated suite, as nginx sends it in
// Auth-SSL-Cipher.
func CipherName(id uint16) string {
	if n, ok := opensslName[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

// DefaultSecurityLevel is Debian's OpenSSL default security level.
const DefaultSecurityLevel = 2

// SecurityLevel is the OpenSSL security level a cipher string leaves: its
// last @SECLEVEL=n, else 2, the default Debian builds OpenSSL with (seen
// on nginx 1.22.1: an RSA-1024 client certificate is "EE certificate key
// too weak" unless ssl_ciphers has @SECLEVEL=1).
func SecurityLevel(spec string) int {
	level := DefaultSecurityLevel
	for rest := spec; ; {
		i := strings.Index(rest, "@SECLEVEL=")
		if i < 0 {
			return level
		}
		rest = rest[i+len("@SECLEVEL="):]
		if rest != "" && rest[0] >= '0' && rest[0] <= '5' {
			level = int(rest[0] - '0')
		}
	}
}
