package tlsconf

import (
	"crypto"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fx = "../../confparse/testdata/sslfile/"

func TestLoadKeyPair(t *testing.T) {
	pw := func(p ...string) []string { return p }
	tests := []struct {
		name, cert, key string
		passwords       []string
		want            string // "" = loads
	}{
		{"plain", "cert.pem", "key.pem", nil, ""},
		{"combined file", "combined.pem", "combined.pem", nil, ""},
		{"cert missing", "nope.pem", "key.pem", nil, `cannot load certificate "@/nope.pem": BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory:calling fopen(@/nope.pem, r) error:10000080:BIO routines::no such file)`},
		{"cert empty", "empty.pem", "key.pem", nil, `cannot load certificate "@/empty.pem": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)`},
		{"cert garbage", "garbage.pem", "key.pem", nil, `cannot load certificate "@/garbage.pem": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)`},
		{"cert DER", "cert.der", "key.pem", nil, `cannot load certificate "@/cert.der": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)`},
		{"cert bad base64", "badder.pem", "key.pem", nil, `cannot load certificate "@/badder.pem": PEM_read_bio_X509_AUX() failed (SSL: error:04800064:PEM routines::bad base64 decode)`},
		{"key is a cert", "cert.pem", "cert.pem", nil, `cannot load certificate key "@/cert.pem": PEM_read_bio_PrivateKey() failed (SSL: error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM)`},
		{"key garbage", "cert.pem", "garbage.pem", nil, `cannot load certificate key "@/garbage.pem": PEM_read_bio_PrivateKey() failed (SSL: error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM)`},
		{"key point off the curve", "cert.pem", "offcurve.key", nil, `cannot load certificate key "@/offcurve.key": PEM_read_bio_PrivateKey() failed (SSL: ` + sslECPointNotOnCurve + `)`},
		{"key mismatch", "cert.pem", "other.key", nil, `SSL_CTX_use_PrivateKey("@/other.key") failed (SSL: error:05800074:x509 certificate routines::key values mismatch)`},
		{"legacy no password", "cert.pem", "enc_legacy.key", nil, `cannot load certificate key "@/enc_legacy.key": PEM_read_bio_PrivateKey() failed (SSL: ` + sslNoPasswordPEM + `)`},
		{"legacy wrong password", "cert.pem", "enc_legacy.key", pw("nope"), `cannot load certificate key "@/enc_legacy.key": PEM_read_bio_PrivateKey() failed (SSL: error:1C800064:Provider routines::bad decrypt error:04800065:PEM routines::bad decrypt)`},
		{"legacy second password", "cert.pem", "enc_legacy.key", pw("wrong", "secret"), ""},
		{"pkcs8 no password", "cert.pem", "enc_pkcs8.key", nil, `cannot load certificate key "@/enc_pkcs8.key": PEM_read_bio_PrivateKey() failed (SSL: ` + sslNoPasswordPKCS8 + `)`},
		{"pkcs8 wrong password", "cert.pem", "enc_pkcs8.key", pw("nope", ""), `cannot load certificate key "@/enc_pkcs8.key": PEM_read_bio_PrivateKey() failed (SSL: ` + sslBadDecryptPKCS8 + `)`},
		{"pkcs8 password", "cert.pem", "enc_pkcs8.key", pw("secret"), ""},
		// Debian's OpenSSL security level 2: 112 bits
		{"RSA-1024 key", "rsa1024.pem", "rsa1024.key", nil, `SSL_CTX_use_certificate("@/rsa1024.pem") failed (SSL: error:0A00018F:SSL routines::ee key too small)`},
		{"SHA-1 signature", "sha1.pem", "sha1.key", nil, `SSL_CTX_use_certificate("@/sha1.pem") failed (SSL: error:0A00018E:SSL routines::ca md too weak)`},
		{"RSA-1024 CA in the chain", "weakca_chain.pem", "weakca_leaf.key", nil, `SSL_CTX_set0_chain("@/weakca_chain.pem") failed (SSL: error:0A00018D:SSL routines::ca key too small)`},
	}
	dir, err := filepath.Abs(fx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadKeyPair(filepath.Join(dir, tc.cert), filepath.Join(dir, tc.key), tc.passwords, DefaultSecurityLevel)
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), dir, "@")
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if err == nil {
				if len(c.Certificate) == 0 || c.PrivateKey == nil || c.Leaf == nil {
					t.Fatalf("incomplete certificate %+v", c)
				}
				// The key is the certificate's.
				pub := c.PrivateKey.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
				if !pub.Equal(c.Leaf.PublicKey) {
					t.Fatal("key does not belong to the certificate")
				}
			}
		})
	}
}

// TestLoadKeyPairSecurityLevel: a lower @SECLEVEL in ssl_ciphers lets
// the weak certificates load, as in nginx.
func TestLoadKeyPairSecurityLevel(t *testing.T) {
	dir, _ := filepath.Abs(fx)
	for _, tc := range []struct {
		cert, key string
		level     int
	}{
		{"rsa1024.pem", "rsa1024.key", 1},
		{"weakca_chain.pem", "weakca_leaf.key", 1},
		{"sha1.pem", "sha1.key", 0},
	} {
		if _, err := LoadKeyPair(filepath.Join(dir, tc.cert), filepath.Join(dir, tc.key), nil, tc.level); err != nil {
			t.Errorf("%s at level %d: %v", tc.cert, tc.level, err)
		}
		if _, err := LoadKeyPair(filepath.Join(dir, tc.cert), filepath.Join(dir, tc.key), nil, tc.level+1); err == nil {
			t.Errorf("%s at level %d loaded", tc.cert, tc.level+1)
		}
	}
}

func TestVerifyFiles(t *testing.T) {
	dir, _ := filepath.Abs(fx)
	dhLoad := func(p string) error { return CheckDHParam(p, DefaultSecurityLevel) }
	tests := []struct {
		name string
		load func(string) error
		file string
		want string
	}{
		{"CA ok", caLoad, "cert.pem", ""},
		{"CA garbage", caLoad, "garbage.pem", `SSL_CTX_load_verify_locations("@/garbage.pem") failed (SSL: error:05800088:x509 certificate routines::no certificate or crl found)`},
		{"CA empty", caLoad, "empty.pem", `SSL_CTX_load_verify_locations("@/empty.pem") failed (SSL: error:05800088:x509 certificate routines::no certificate or crl found)`},
		{"CA bad base64", caLoad, "badder.pem", `SSL_CTX_load_verify_locations("@/badder.pem") failed (SSL: error:04800064:PEM routines::bad base64 decode error:05880009:x509 certificate routines::PEM lib)`},
		{"CRL ok", crlLoad, "crl.pem", ""},
		{"CRL may hold certificates", crlLoad, "combined.pem", ""},
		{"CRL garbage", crlLoad, "garbage.pem", `X509_LOOKUP_load_file("@/garbage.pem") failed (SSL: error:05800088:x509 certificate routines::no certificate or crl found)`},
		{"dhparam ok", dhLoad, "dhparam.pem", ""},
		{"dhparam 1024 bits", dhLoad, "dh1024.pem", `SSL_CTX_set_tmp_dh("@/dh1024.pem") failed (SSL: error:0A00018A:SSL routines::dh key too small)`},
		{"dhparam 1024 bits at level 1", func(p string) error { return CheckDHParam(p, 1) }, "dh1024.pem", ""},
		{"dhparam garbage", dhLoad, "garbage.pem", `PEM_read_bio_DHparams("@/garbage.pem") failed (SSL: error:0480006C:PEM routines::no start line:Expecting: DH PARAMETERS)`},
		{"dhparam is a cert", dhLoad, "cert.pem", `PEM_read_bio_DHparams("@/cert.pem") failed (SSL: error:0480006C:PEM routines::no start line:Expecting: DH PARAMETERS)`},
		{"ticket 48", ticketLoad, "ticket48.key", ""},
		{"ticket 80", ticketLoad, "ticket80.key", ""},
		{"ticket 32", ticketLoad, "ticket32.key", `"@/ticket32.key" must be 48 or 80 bytes`},
		{"ticket empty", ticketLoad, "empty.pem", `"@/empty.pem" must be 48 or 80 bytes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load(filepath.Join(dir, tc.file))
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), dir, "@")
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func caLoad(p string) error     { _, _, err := LoadCAFile(p); return err }
func crlLoad(p string) error    { _, _, err := LoadCRLFile(p); return err }
func ticketLoad(p string) error { _, err := LoadTicketKey(p); return err }

func TestTicketKeyDeterministic(t *testing.T) {
	a, err := LoadTicketKey(fx + "ticket48.key")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := LoadTicketKey(fx + "ticket48.key")
	c, _ := LoadTicketKey(fx + "ticket80.key")
	if a != b || a == c || a == (TicketKey{}) {
		t.Fatalf("keys: %x %x %x", a, b, c)
	}
}

func TestReadPasswords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"secret\n", []string{"secret"}},
		{"secret", []string{"secret"}},
		{"a\nb\n", []string{"a", "b"}},
		{"a\r\nb\r\n", []string{"a", "b"}},
		{"a\n\nb", []string{"a", "", "b"}},
		{"", []string{}},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		p := filepath.Join(dir, "pw"+string(rune('a'+i)))
		if err := os.WriteFile(p, []byte(tc.in), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPasswords(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q: got %q want %q", tc.in, got, tc.want)
		}
	}
}

func TestCurves(t *testing.T) {
	tests := []struct {
		spec string
		want []tls.CurveID
		err  string
	}{
		{"auto", []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP521, tls.CurveP384}, ""},
		{"secp384r1", []tls.CurveID{tls.CurveP384}, ""},
		{"prime256v1:secp384r1:secp521r1", []tls.CurveID{tls.CurveP256, tls.CurveP384, tls.CurveP521}, ""},
		{"X25519:P-256", []tls.CurveID{tls.X25519, tls.CurveP256}, ""},
		{"x25519", []tls.CurveID{tls.X25519}, ""},
		{"X448:brainpoolP256r1", []tls.CurveID{}, ""},
		{"ffdhe2048:secp384r1", []tls.CurveID{tls.CurveP384}, ""},
		{"bogus", nil, `SSL_CTX_set1_curves_list("bogus") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group 'bogus' cannot be set)`},
		{"prime256v1:bogus", nil, `SSL_CTX_set1_curves_list("prime256v1:bogus") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group 'bogus' cannot be set)`},
		{"SECP384R1", nil, `SSL_CTX_set1_curves_list("SECP384R1") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group 'SECP384R1' cannot be set)`},
		{"", nil, `SSL_CTX_set1_curves_list("") failed`},
		{"P-256:", nil, `SSL_CTX_set1_curves_list("P-256:") failed`},
		{"x25519:X25519", nil, `SSL_CTX_set1_curves_list("x25519:X25519") failed`},
		{"secp224r1:P-224", nil, `SSL_CTX_set1_curves_list("secp224r1:P-224") failed`},
	}
	for _, tc := range tests {
		got, err := Curves(tc.spec)
		e := ""
		if err != nil {
			e = err.Error()
		}
		if e != tc.err || len(got) != len(tc.want) {
			t.Errorf("%q: got %v %q, want %v %q", tc.spec, got, e, tc.want, tc.err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v want %v", tc.spec, got, tc.want)
			}
		}
	}
}

func TestGoCipherSuites(t *testing.T) {
	tests := []struct {
		spec string
		want []uint16
	}{
		{"ECDHE-RSA-AES128-GCM-SHA256", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{"ECDHE+AESGCM", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{"CHACHA20", []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}},
		{"aNULL", []uint16{}}, // only suites Go lacks
		{"kRSA+AES128+SHA1", []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
	}
	for _, tc := range tests {
		got, err := GoCipherSuites(tc.spec)
		if err != nil {
			t.Fatalf("%q: %v", tc.spec, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %v want %v", tc.spec, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v want %v", tc.spec, got, tc.want)
			}
		}
	}
	if _, err := GoCipherSuites("FOO"); err == nil || err.Error() != `SSL_CTX_set_cipher_list("FOO") failed (SSL: error:0A0000B9:SSL routines::no cipher match)` {
		t.Fatalf("FOO: %v", err)
	}
	// The default list keeps every strong suite crypto/tls has.
	def, err := GoCipherSuites("HIGH:!aNULL:!MD5")
	if err != nil || len(def) < 10 {
		t.Fatalf("default: %v %v", def, err)
	}
}
