package tlsconf

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func FuzzEvalCiphers(f *testing.F) {
	for _, s := range cipherSpecs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		names, err := EvalCiphers(spec)
		var ce *CipherError
		if err != nil {
			if !errors.As(err, &ce) || ce.Spec != spec {
				t.Fatalf("%q: unexpected error %v", spec, err)
			}
			return
		}
		if len(names) == 0 {
			t.Fatalf("%q: empty list without an error", spec)
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] || byName[n] == nil {
				t.Fatalf("%q: bad or repeated suite %q in %v", spec, n, names)
			}
			seen[n] = true
		}
	})
}

func FuzzCurves(f *testing.F) {
	for _, s := range []string{"auto", "secp384r1", "X25519:P-256", "", ":", "x25519:x25519", "bogus", "prime256v1:secp384r1:secp521r1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := Curves(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `SSL_CTX_set1_curves_list("`+spec+`") failed`) {
				t.Fatalf("%q: %v", spec, err)
			}
			return
		}
		if len(c) > 4 {
			t.Fatalf("%q: %v", spec, c)
		}
	})
}

func FuzzDecryptPKCS8(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01}, []byte("x"))
	f.Add([]byte{}, []byte(""))
	maxIterations = 10_000 // keep each input fast
	f.Fuzz(func(t *testing.T, der, pw []byte) {
		out, err := decryptPKCS8(der, pw)
		if err == nil && len(out) >= len(der) {
			t.Fatalf("plaintext longer than its ciphertext")
		}
	})
}

func FuzzSplitPasswords(f *testing.F) {
	for _, s := range []string{"", "a", "a\n", "a\r\nb\r\n", "\n\n", "x\ny"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pw := splitPasswords(data)
		for _, p := range pw {
			if strings.Contains(p, "\n") {
				t.Fatalf("%q: password with a newline: %q", data, p)
			}
		}
		// Without CRs, joining the lines gives the file back, less its
		// final newline.
		if len(data) > 0 && !strings.Contains(string(data), "\r") && strings.Join(pw, "\n") != strings.TrimSuffix(string(data), "\n") {
			t.Fatalf("%q: lines %q", data, pw)
		}
	})
}

func FuzzLoadPEM(f *testing.F) {
	for _, n := range []string{"cert.pem", "key.pem", "enc_legacy.key", "enc_pkcs8.key", "combined.pem", "garbage.pem", "badder.pem"} {
		b, err := os.ReadFile(fx + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	maxIterations = 10_000 // keep each input fast
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := loadCertChain("data:" + s); err != nil && !strings.HasPrefix(err.Error(), `cannot load certificate "data:`) {
			t.Fatalf("certificate error %v", err)
		}
		if _, err := loadKey("data:"+s, []string{"secret", "x"}); err != nil && !strings.HasPrefix(err.Error(), `cannot load certificate key "data:`) {
			t.Fatalf("key error %v", err)
		}
	})
}
