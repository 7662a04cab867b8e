package tlsconf

import (
	"encoding/asn1"
	"testing"
)

type testATV struct {
	oid asn1.ObjectIdentifier
	tag int
	val string
}

func testName(t *testing.T, rdns ...[]testATV) []byte {
	t.Helper()
	var seq []byte
	for _, r := range rdns {
		var set []byte
		for _, a := range r {
			b, err := asn1.Marshal(struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}{a.oid, asn1.RawValue{Tag: a.tag, IsCompound: a.tag == asn1.TagSequence, Bytes: []byte(a.val)}})
			if err != nil {
				t.Fatal(err)
			}
			set = append(set, b...)
		}
		b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: set})
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, b...)
	}
	b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: seq})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDNString: what `openssl x509 -nameopt RFC2253` (OpenSSL 3.0.19)
// prints for the same names; compat-tests/tlsconf compares many more live.
func TestDNString(t *testing.T) {
	cn, o, ou, email, uid := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.ObjectIdentifier{2, 5, 4, 11},
		asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	jurC, unknown := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3}, asn1.ObjectIdentifier{1, 2, 3, 4, 5}
	one := func(oid asn1.ObjectIdentifier, tag int, v string) []testATV { return []testATV{{oid, tag, v}} }
	const utf8, printable, ia5, t61, bmp, universal = 12, 19, 22, 20, 30, 28
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"reversed, emailAddress by name", testName(t, one(o, utf8, "Example"), one(cn, utf8, "alice"), one(email, ia5, "alice@example.org")),
			"emailAddress=alice@example.org,CN=alice,O=Example"},
		{"jurisdictionC", testName(t, one(jurC, printable, "CH")), "jurisdictionC=CH"},
		{"unknown OID dumped", testName(t, one(unknown, utf8, "x y"), one(cn, utf8, "a")), "CN=a,1.2.3.4.5=#0C03782079"},
		{"multi-valued", testName(t, one(o, utf8, "Ex"), []testATV{{cn, utf8, "a"}, {uid, utf8, "b"}}), "UID=b+CN=a,O=Ex"},
		{"specials", testName(t, one(cn, utf8, `a,b+c"d\e<f>g;h=i`)), `CN=a\,b\+c\"d\\e\<f\>g\;h=i`},
		{"leading and trailing", testName(t, one(ou, utf8, "#lead"), one(ou, utf8, " lead"), one(ou, utf8, "trail "), one(ou, utf8, "mid # space")),
			`OU=mid # space,OU=trail\ ,OU=\ lead,OU=\#lead`},
		{"single characters", testName(t, one(ou, utf8, "#"), one(ou, utf8, " "), one(ou, utf8, "# "), one(ou, utf8, "")), `OU=,OU=\#\ ,OU=\ ,OU=#`},
		{"control characters", testName(t, one(cn, utf8, "a\tb\r\nc\x00d\x7f")), `CN=a\09b\0D\0Ac\00d\7F`},
		{"UTF-8 bytes escaped", testName(t, one(ou, utf8, "Zürich")), `OU=Z\C3\BCrich`},
		{"T61String as Latin-1", testName(t, one(o, t61, "Z\xfcrich")), `O=Z\C3\BCrich`},
		{"BMPString", testName(t, one(cn, bmp, "\x00Z\x00\xfc\x65\xe5\x00 \x00#")), `CN=Z\C3\BC\E6\97\A5 #`},
		{"UniversalString", testName(t, one(cn, universal, "\x00\x00\x00a\x00\x01\xf6\x00")), `CN=a\F0\9F\98\80`},
		{"SEQUENCE value dumped", testName(t, one(ou, asn1.TagSequence, "\x0c\x01a")), "OU=#30030C0161"},
		{"empty name", testName(t), ""},
	}
	for _, tc := range tests {
		got, err := DNString(tc.der)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	if _, err := DNString([]byte{0x30, 0x05}); err == nil {
		t.Error("a truncated name parsed")
	}
}
