package tlsconf

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// cipherSpecs are compared with the openssl binary (the library nginx runs
// with): same list in the same order, or the same refusal.
var cipherSpecs = []string{
	"HIGH:!aNULL:!MD5", "HIGH", "MEDIUM", "LOW", "ALL", "ALL:COMPLEMENTOFALL", "COMPLEMENTOFALL:ALL",
	"DEFAULT", "DEFAULT:!ECDHE", "DEFAULTX", "HIGH:DEFAULT", "COMPLEMENTOFDEFAULT", "FIPS",
	"aNULL", "eNULL", "NULL", "ECDHE", "EECDH", "kECDHE", "ECDH", "DHE", "EDH", "DH", "kDHE", "ADH", "AECDH",
	"RSA", "kRSA", "aRSA", "ECDSA", "aECDSA", "DSS", "PSK", "kPSK", "SRP", "MD5", "SHA", "SHA1", "SHA256", "SHA384",
	"AES", "AES128", "AES256", "AESGCM", "AESCCM", "AESCCM8", "CHACHA20", "CAMELLIA", "CAMELLIA128", "ARIA", "ARIAGCM", "CBC",
	"SSLv3", "TLSv1", "TLSv1.0", "TLSv1.2", "3DES", "RC4", "DTLSv1.2", "FOO", "FOO:BAR", "", "!ALL", "high",
	"ECDHE-RSA-AES128-GCM-SHA256", "FOO:ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256+ECDHE",
	"ECDHE-RSA-AES128-GCM-SHA256+kRSA", "TLSv1.2+ECDHE-RSA-AES128-SHA", "AES128-SHA:AES128-SHA", "AES128-SHA+AES128-SHA",
	"ECDHE+AESGCM", "AESGCM+ECDHE", "HIGH+AES128+ECDHE", "ECDHE+AESGCM:@STRENGTH", "ALL:@STRENGTH", "ALL:COMPLEMENTOFALL:@STRENGTH",
	"HIGH:!aNULL:!MD5:@STRENGTH", "HIGH:@SECLEVEL=3", "HIGH:@SECLEVEL=9", "HIGH:@FOO", "HIGH:@STRENGTH+X",
	"HIGH:#", "HIGH:!", "HIGH:-", "!", "HIGH:+", "ECDHE+", "+ECDHE", "HIGH::", "HIGH ECDHE", "HIGH,ECDHE", "HIGH;ECDHE", "HIGH#x",
	"HIGH:a_b", "HIGH:TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256",
	"SUITEB128", "SUITEB128ONLY", "SUITEB128C2", "SUITEB192", "SUITEB128:!ECDSA",
	"ECDHE:-AESGCM:AESGCM", "ALL:-ECDHE:+ECDHE", "ALL:+AES128", "ALL:+kRSA:+aNULL", "ALL:-ALL:ALL", "FOO+BAR#x:HIGH", "HIGH+FOO#:ECDHE", "ECDHE+AESGCM#", "ALL:-ALL:ECDHE:ALL",
	"kEECDH+AESGCM:kEDH+AESGCM:AES256:!aNULL:!eNULL:!MD5:!DSS:!PSK:!SRP", "EECDH+AESGCM:EDH+AESGCM",
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
	"HIGH:!AES", "!aNULL:HIGH", "HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!aECDH:!EDH-DSS-DES-CBC3-SHA:!KRB5-DES-CBC3-SHA",
	"eNULL:ECDHE", "ECDHE:eNULL", "COMPLEMENTOFALL:kRSA", "NULL:@STRENGTH:ALL",
}

func openssl(t *testing.T, spec string) ([]string, string) {
	t.Helper()
	out, err := exec.Command("openssl", "ciphers", "-tls1_2", spec).CombinedOutput()
	if err != nil {
		s := string(out)
		switch {
		case strings.Contains(s, "no cipher match"):
			return nil, errNoCipherMatch
		case strings.Contains(s, "invalid command"):
			return nil, errInvalidCommand
		}
		t.Fatalf("openssl ciphers %q: %v\n%s", spec, err, out)
	}
	var names []string
	for _, n := range strings.Split(strings.TrimSpace(string(out)), ":") {
		if !strings.HasPrefix(n, "TLS_") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, errNoCipherMatch
	}
	return names, ""
}

func TestCiphersAgainstOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("the openssl binary is needed (apt-get install openssl)")
	}
	for _, spec := range cipherSpecs {
		want, wantErr := openssl(t, spec)
		got, err := EvalCiphers(spec)
		gotErr := ""
		var ce *CipherError
		if errors.As(err, &ce) {
			gotErr = ce.Reason
		}
		if gotErr != wantErr || strings.Join(got, ":") != strings.Join(want, ":") {
			t.Errorf("%q:\nopenssl: %s %s\nmailgate: %s %s", spec, wantErr, strings.Join(want, ":"), gotErr, strings.Join(got, ":"))
		}
	}
}

func TestSecurityLevel(t *testing.T) {
	for spec, want := range map[string]int{
		"HIGH:!aNULL:!MD5":                   2,
		"DEFAULT@SECLEVEL=0":                 0,
		"HIGH:@SECLEVEL=0:@SECLEVEL=2":       2,
		"@SECLEVEL=0:HIGH":                   0,
		"HIGH:@SECLEVEL=9":                   2,
		"ECDHE+AESGCM:@STRENGTH:@SECLEVEL=3": 3,
	} {
		if got := SecurityLevel(spec); got != want {
			t.Errorf("SecurityLevel(%q) = %d, want %d", spec, got, want)
		}
	}
}
