package tlsconf

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// group is one of OpenSSL 3's TLS groups.
type group struct {
	names []string    // every spelling OpenSSL 3 accepts (case matters)
	curve tls.CurveID // 0: crypto/tls does not implement it
}

var groups = []group{
	{[]string{"x25519", "X25519"}, tls.X25519},
	{[]string{"secp256r1", "prime256v1", "P-256"}, tls.CurveP256},
	{[]string{"secp384r1", "P-384"}, tls.CurveP384},
	{[]string{"secp521r1", "P-521"}, tls.CurveP521},
	{[]string{"x448", "X448"}, 0},
	{[]string{"secp224r1", "P-224"}, 0},
	{[]string{"secp192r1", "prime192v1", "P-192"}, 0},
	{[]string{"secp256k1"}, 0}, {[]string{"secp160k1"}, 0}, {[]string{"secp160r1"}, 0},
	{[]string{"secp160r2"}, 0}, {[]string{"secp192k1"}, 0}, {[]string{"secp224k1"}, 0},
	{[]string{"sect163k1", "K-163"}, 0}, {[]string{"sect163r1"}, 0}, {[]string{"sect163r2", "B-163"}, 0},
	{[]string{"sect193r1"}, 0}, {[]string{"sect193r2"}, 0},
	{[]string{"sect233k1", "K-233"}, 0}, {[]string{"sect233r1", "B-233"}, 0}, {[]string{"sect239k1"}, 0},
	{[]string{"sect283k1", "K-283"}, 0}, {[]string{"sect283r1", "B-283"}, 0},
	{[]string{"sect409k1", "K-409"}, 0}, {[]string{"sect409r1", "B-409"}, 0},
	{[]string{"sect571k1", "K-571"}, 0}, {[]string{"sect571r1", "B-571"}, 0},
	{[]string{"brainpoolP256r1"}, 0}, {[]string{"brainpoolP384r1"}, 0}, {[]string{"brainpoolP512r1"}, 0},
	{[]string{"ffdhe2048"}, 0}, {[]string{"ffdhe3072"}, 0}, {[]string{"ffdhe4096"}, 0},
	{[]string{"ffdhe6144"}, 0}, {[]string{"ffdhe8192"}, 0},
}

var groupByName = func() map[string]int {
	m := map[string]int{}
	for i, g := range groups {
		for _, n := range g.names {
			m[n] = i
		}
	}
	return m
}()

// autoCurves is "auto": OpenSSL 3.0's default groups (x25519, secp256r1,
// x448, secp521r1, secp384r1, ffdhe*) less those crypto/tls lacks.
var autoCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP521, tls.CurveP384}

// CurveError is an ssl_ecdh_curve value OpenSSL refuses; Error is nginx's
// text.
type CurveError struct {
	Spec, Group string // Group: the unknown name; "" when OpenSSL says no more
}

func (e *CurveError) Error() string {
	if e.Group == "" {
		return fmt.Sprintf(`SSL_CTX_set1_curves_list("%s") failed`, e.Spec)
	}
	return fmt.Sprintf(`SSL_CTX_set1_curves_list("%s") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group '%s' cannot be set)`, e.Spec, e.Group)
}

// Curves evaluates ssl_ecdh_curve as OpenSSL 3's SSL_CTX_set1_curves_list
// does: "auto", or a ':' list of group names, none empty or repeated. It
// returns the groups crypto/tls implements, in order; groups it lacks
// (x448, brainpool, ffdhe, ...) are accepted and left out, so the result
// may be empty (then only clients offering nothing else fail).
func Curves(spec string) ([]tls.CurveID, error) {
	if spec == "auto" {
		return append([]tls.CurveID(nil), autoCurves...), nil
	}
	seen := map[int]bool{}
	out := []tls.CurveID{}
	for _, n := range strings.Split(spec, ":") {
		n = strings.Trim(n, " \t")
		if n == "" || len(n) > 63 {
			return nil, &CurveError{Spec: spec}
		}
		i, ok := groupByName[n]
		if !ok {
			return nil, &CurveError{Spec: spec, Group: n}
		}
		if seen[i] {
			return nil, &CurveError{Spec: spec}
		}
		seen[i] = true
		if c := groups[i].curve; c != 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// CurveName is OpenSSL's name of a group, for logs and tests.
func CurveName(id tls.CurveID) string {
	for _, g := range groups {
		if g.curve == id {
			return g.names[0]
		}
	}
	return id.String()
}
