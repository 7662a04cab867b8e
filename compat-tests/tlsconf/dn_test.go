package tlsconf_test

import (
	"encoding/asn1"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
	"mailgate/mail/tlsconf"
)

// atv is one attribute of a name: an OID, the value's universal tag and
// its content bytes as they go on the wire.
type atv struct {
	oid string
	tag int
	val string
}

// rdn is one RelativeDistinguishedName: more than one atv makes it
// multi-valued.
type rdn []atv

// Tags of the value types the names below use.
const (
	tUTF8      = 12
	tPrintable = 19
	tT61       = 20
	tIA5       = 22
	tUniversal = 28
	tBMP       = 30
	tNumeric   = 18
	tBitString = 3
	tSequence  = 16
)

func oid(s string) asn1.ObjectIdentifier {
	var o asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			panic(s)
		}
		o = append(o, n)
	}
	return o
}

// nameDER encodes rdns as an X.509 Name, the attributes of each SET in
// the order given (not sorted).
func nameDER(rdns ...rdn) []byte {
	var seq []byte
	for _, r := range rdns {
		var set []byte
		for _, a := range r {
			v := asn1.RawValue{Class: asn1.ClassUniversal, Tag: a.tag, IsCompound: a.tag == tSequence, Bytes: []byte(a.val)}
			b, err := asn1.Marshal(struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}{oid(a.oid), v})
			if err != nil {
				panic(err)
			}
			set = append(set, b...)
		}
		b, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: set})
		if err != nil {
			panic(err)
		}
		seq = append(seq, b...)
	}
	b, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: seq})
	if err != nil {
		panic(err)
	}
	return b
}

// bmp and universal encode s as UCS-2 and UCS-4 big-endian.
func bmp(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>8), byte(r))
	}
	return string(b)
}

func universal(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
	}
	return string(b)
}

// OIDs of the attributes OpenSSL prints by name.
const (
	oCN        = "2.5.4.3"
	oSN        = "2.5.4.4"
	oSerial    = "2.5.4.5"
	oC         = "2.5.4.6"
	oL         = "2.5.4.7"
	oST        = "2.5.4.8"
	oStreet    = "2.5.4.9"
	oO         = "2.5.4.10"
	oOU        = "2.5.4.11"
	oTitle     = "2.5.4.12"
	oDesc      = "2.5.4.13"
	oBusiness  = "2.5.4.15"
	oPostal    = "2.5.4.17"
	oName      = "2.5.4.41"
	oGN        = "2.5.4.42"
	oInitials  = "2.5.4.43"
	oGenQual   = "2.5.4.44"
	oDNQual    = "2.5.4.46"
	oPseudonym = "2.5.4.65"
	oRole      = "2.5.4.72"
	oOrgID     = "2.5.4.97"
	oEmail     = "1.2.840.113549.1.9.1"
	oUnstruct  = "1.2.840.113549.1.9.2"
	oUID       = "0.9.2342.19200300.100.1.1"
	oMail      = "0.9.2342.19200300.100.1.3"
	oDC        = "0.9.2342.19200300.100.1.25"
	oJurL      = "1.3.6.1.4.1.311.60.2.1.1"
	oJurST     = "1.3.6.1.4.1.311.60.2.1.2"
	oJurC      = "1.3.6.1.4.1.311.60.2.1.3"
	oUnknown   = "1.2.3.4.5"
)

func one(o string, tag int, v string) rdn { return rdn{{o, tag, v}} }

// dnNames are the names both tests use: every attribute OpenSSL names,
// unknown OIDs, multi-valued RDNs, every RFC 2253 escape, the string
// types OpenSSL converts to UTF-8, control characters. (OpenSSL refuses
// certificates with other value types, such as OCTET STRING,
// VisibleString, UTCTime or INTEGER, and with BMPString surrogates or
// UniversalString characters beyond Unicode.) goParses is false for names
// crypto/x509 refuses to parse (so crypto/tls refuses the certificate).
var dnNames = []struct {
	name     string
	rdns     []rdn
	goParses bool
}{
	{"email CN O", []rdn{one(oO, tUTF8, "Example"), one(oCN, tUTF8, "alice"), one(oEmail, tIA5, "alice@example.org")}, true},
	{"every named attribute", []rdn{
		one(oC, tPrintable, "CH"), one(oST, tUTF8, "Zurich"), one(oL, tUTF8, "Zurich"), one(oStreet, tUTF8, "Main St 1"),
		one(oPostal, tUTF8, "8000"), one(oO, tUTF8, "Example AG"), one(oOU, tUTF8, "Mail"), one(oTitle, tUTF8, "Dr"),
		one(oSN, tUTF8, "Smith"), one(oGN, tUTF8, "Alice"), one(oInitials, tUTF8, "A.S."), one(oGenQual, tUTF8, "III"),
		one(oDNQual, tPrintable, "q1"), one(oPseudonym, tUTF8, "al"), one(oBusiness, tUTF8, "Private Organization"),
		one(oSerial, tPrintable, "123456"), one(oJurC, tPrintable, "CH"), one(oJurST, tUTF8, "ZH"), one(oJurL, tUTF8, "Zurich"),
		one(oDC, tIA5, "org"), one(oDC, tIA5, "example"), one(oUID, tUTF8, "alice"), one(oMail, tIA5, "a@example.org"),
		one(oDesc, tUTF8, "desc"), one(oName, tUTF8, "nm"), one(oRole, tUTF8, "admin"), one(oOrgID, tUTF8, "VATCH-1"),
		one(oUnstruct, tIA5, "host.example"), one(oCN, tUTF8, "alice"), one(oEmail, tIA5, "alice@example.org"),
	}, true},
	{"unknown OID", []rdn{one(oUnknown, tUTF8, "x y"), one(oCN, tUTF8, "a"), one("2.5.4.250", tPrintable, "z")}, true},
	{"multi-valued RDNs", []rdn{one(oO, tUTF8, "Ex"), {{oCN, tUTF8, "a"}, {oUID, tUTF8, "b"}}, {{oOU, tUTF8, "x"}, {oOU, tUTF8, "y"}, {oOU, tUTF8, "z"}}}, true},
	{"RFC 2253 specials", []rdn{one(oCN, tUTF8, `a,b+c"d\e<f>g;h=i`), one(oOU, tUTF8, "#lead"), one(oOU, tUTF8, " lead"), one(oOU, tUTF8, "trail "), one(oOU, tUTF8, "mid # space")}, true},
	{"single characters", []rdn{one(oOU, tUTF8, "#"), one(oOU, tUTF8, " "), one(oOU, tUTF8, ","), one(oOU, tUTF8, "# "), one(oOU, tUTF8, "")}, true},
	{"control characters", []rdn{one(oCN, tUTF8, "a\tb\r\nc\x00d\x1fe\x7f"), one(oOU, tPrintable, "p q")}, true},
	{"UTF-8 and Latin-1", []rdn{one(oOU, tUTF8, "Zürich"), one(oO, tT61, "Z\xfcrich"), one(oCN, tUTF8, "日本")}, true},
	{"BMPString", []rdn{one(oOU, tBMP, bmp("Zürich")), one(oCN, tBMP, bmp("日本 #"))}, true},
	{"UniversalString", []rdn{one(oCN, tUniversal, universal("a😀ü"))}, false},
	{"NumericString", []rdn{one(oOU, tNumeric, "123 45"), one(oCN, tPrintable, "p")}, true},
	{"values OpenSSL dumps", []rdn{one(oCN, tBitString, "\x00\x05"), one(oOU, tSequence, "\x0c\x01a"), one(oUnknown, tSequence, "\x02\x01\x01")}, false},
	{"IA5String with high bytes", []rdn{one(oEmail, tIA5, "\xe9t\xe9")}, false},
}

// TestDNStringAgainstOpenSSL compares tlsconf.DNString with what `openssl
// x509 -nameopt RFC2253` prints (X509_NAME_print_ex with XN_FLAG_RFC2253,
// nginx's call) for every name of dnNames, crypto/x509 able to parse them
// or not.
func TestDNStringAgainstOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl (the command) is needed: apt-get install openssl")
	}
	dir := t.TempDir()
	for _, n := range dnNames {
		t.Run(n.name, func(t *testing.T) {
			der := nameDER(n.rdns...)
			f := filepath.Join(dir, "c.pem")
			if err := os.WriteFile(f, []byte(issue(t, certSpec{rawSubject: der}).pem), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("openssl", "x509", "-in", f, "-noout", "-subject", "-nameopt", "RFC2253").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl x509: %v\n%s", err, out)
			}
			want := strings.TrimSuffix(strings.TrimPrefix(string(out), "subject="), "\n")
			got, err := tlsconf.DNString(der)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("DNString:\n got %q\nwant %q (openssl)", got, want)
			}
		})
	}
}

// TestClientCertNamesAgainstNginx logs in over TLS with a client
// certificate under each name of dnNames (subject), issued by a CA whose
// name is another one (issuer), with ssl_verify_client optional_no_ca,
// and compares the Auth-SSL-Subject and Auth-SSL-Issuer headers nginx and
// mailgate send.
func TestClientCertNamesAgainstNginx(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl (the command) is needed: apt-get install openssl")
	}
	auth := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: "127.0.0.1:9"},
	}})
	cert, key := harness.SelfSigned("mx.test")
	files := map[string]string{"cert.pem": cert, "key.pem": key}
	dir := t.TempDir()
	var scenarios []scenario
	for i, n := range dnNames {
		// the issuer is the next name crypto/x509 reads too, if this one
		// is, so that only unreadable subjects make a declared difference
		j := (i + 1) % len(dnNames)
		for n.goParses && !dnNames[j].goParses {
			j = (j + 1) % len(dnNames)
		}
		issuer := dnNames[j]
		ca := issue(t, certSpec{rawSubject: nameDER(issuer.rdns...), ca: true})
		leaf := issue(t, certSpec{rawSubject: nameDER(n.rdns...), parent: ca, serial: 0x1234})
		cf, kf := filepath.Join(dir, strconv.Itoa(i)+".pem"), filepath.Join(dir, strconv.Itoa(i)+".key")
		if err := os.WriteFile(cf, []byte(leaf.pem), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kf, []byte(leaf.kpem), 0o600); err != nil {
			t.Fatal(err)
		}
		want := func(der []byte) string {
			s, err := tlsconf.DNString(der)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s := scenario{name: n.name, server: "ssl_verify_client optional_no_ca;",
			client: []string{"-cert", cf, "-key", kf, "-tls1_2"}}
		if n.goParses && issuer.goParses {
			s.must = []string{"Auth-SSL-Verify: FAILED:", "Auth-SSL-Subject: " + want(nameDER(n.rdns...)) + "\n"}
			if iss := want(nameDER(issuer.rdns...)); iss != "" {
				s.must = append(s.must, "Auth-SSL-Issuer: "+iss+"\n")
			}
		} else {
			s.differ = "crypto/x509 refuses to parse this name (UniversalString, BIT STRING or SEQUENCE values, IA5String above 0x7F), so crypto/tls fails the handshake where OpenSSL accepts the certificate"
		}
		scenarios = append(scenarios, s)
	}
	runScenarios(t, auth, files, scenarios)
}
