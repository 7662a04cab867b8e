package tlsconf

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"
)

// DNString renders a DER-encoded X.509 Name (a certificate's RawSubject or
// RawIssuer) as OpenSSL's X509_NAME_print_ex does with XN_FLAG_RFC2253,
// which is what nginx sends in Auth-SSL-Subject and Auth-SSL-Issuer:
//
//   - the attributes in reverse order, "," between RDNs and "+" between
//     the values of a multi-valued RDN (the whole list is reversed, so the
//     values of one RDN come out in reverse order too);
//   - an attribute type OpenSSL knows by its short name (CN, emailAddress,
//     jurisdictionC, ...), any other as a dotted OID whose value is "#"
//     and the hex of its DER encoding;
//   - a value whose string type OpenSSL cannot show (OCTET STRING,
//     SEQUENCE, GeneralString, ...) likewise as "#" and hex DER;
//   - a string value converted to UTF-8 (BMPString, UniversalString, and
//     the one-byte types read as Latin-1; a UTF8String's bytes are taken
//     as they are), then escaped: bytes >= 0x80 and control characters as
//     \XX, the characters ,+"\<>; with a backslash, and a backslash before
//     a leading '#' or space and a trailing space.
func DNString(der []byte) (string, error) {
	var rdns []rdnSET
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil {
		return "", err
	}
	if len(rest) > 0 {
		return "", errors.New("trailing data after Name")
	}
	type entry struct {
		atv attrValue
		set int
	}
	var entries []entry
	for i, rdn := range rdns {
		for _, a := range rdn {
			entries = append(entries, entry{a, i})
		}
	}
	var b strings.Builder
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if i < len(entries)-1 {
			if e.set == entries[i+1].set {
				b.WriteByte('+')
			} else {
				b.WriteByte(',')
			}
		}
		oid := e.atv.Type.String()
		name, known := oidShortNames[oid]
		if !known {
			name = oid
		}
		b.WriteString(name)
		b.WriteByte('=')
		writeValue(&b, e.atv.Value, known)
	}
	return b.String(), nil
}

type attrValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET: encoding/asn1 takes a slice type whose name ends in SET as a SET OF.
type rdnSET []attrValue

// charWidth is OpenSSL's tag2nbyte: the bytes per character of the string
// types it prints; 0 is UTF8String, and the other types are dumped.
var charWidth = map[int]int{
	asn1.TagUTF8String:      0,
	asn1.TagNumericString:   1,
	asn1.TagPrintableString: 1,
	asn1.TagT61String:       1,
	asn1.TagIA5String:       1,
	asn1.TagUTCTime:         1,
	asn1.TagGeneralizedTime: 1,
	26:                      1, // VisibleString
	28:                      4, // UniversalString
	asn1.TagBMPString:       2,
}

func writeValue(b *strings.Builder, v asn1.RawValue, knownType bool) {
	width, printable := charWidth[v.Tag]
	if v.Class != asn1.ClassUniversal {
		printable = false
	}
	if !knownType || !printable {
		b.WriteByte('#')
		b.WriteString(strings.ToUpper(hex.EncodeToString(v.FullBytes)))
		return
	}
	s := v.Bytes
	if width == 2 && len(s)%2 != 0 || width == 4 && len(s)%4 != 0 {
		// OpenSSL's do_buf refuses the string and the name is cut short
		// there; a malformed certificate, so dump it instead.
		b.WriteByte('#')
		b.WriteString(strings.ToUpper(hex.EncodeToString(v.FullBytes)))
		return
	}
	if width == 0 {
		// A UTF8String is escaped byte by byte, as it stands.
		for i, c := range s {
			escapeByte(b, c, i == 0, i == len(s)-1)
		}
		return
	}
	var u [utf8.UTFMax]byte
	for i := 0; i < len(s); i += width {
		var c rune
		for _, x := range s[i : i+width] {
			c = c<<8 | rune(x)
		}
		first, last := i == 0, i+width == len(s)
		if c < 0x80 {
			escapeByte(b, byte(c), first, last)
			continue
		}
		if c > utf8.MaxRune || c >= 0xD800 && c < 0xE000 {
			// not Unicode: OpenSSL refuses to load such a certificate
			// (and crypto/x509 to parse it)
			continue
		}
		n := utf8.EncodeRune(u[:], c)
		for _, x := range u[:n] {
			escapeByte(b, x, false, false)
		}
	}
}

// escapeByte is OpenSSL's do_esc_char under ASN1_STRFLGS_RFC2253. As in
// OpenSSL's do_buf, a one-character value counts as last, not first.
func escapeByte(b *strings.Builder, c byte, first, last bool) {
	const hexDigits = "0123456789ABCDEF"
	switch {
	case c >= 0x80 || c < 0x20 || c == 0x7f:
		b.WriteByte('\\')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
		return
	case strings.IndexByte(`,+"\<>;`, c) >= 0,
		c == ' ' && (first || last),
		c == '#' && first && !last:
		b.WriteByte('\\')
	}
	b.WriteByte(c)
}
