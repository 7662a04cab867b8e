package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ConfCommands is what a server's ssl_conf_command lines mean for
// crypto/tls, in the order nginx applies them (after every other ssl_*
// directive, each overriding what came before).
type ConfCommands struct {
	Tickets          *bool // Options [-]SessionTicket
	ServerPreference *bool // Options [-]ServerPreference
	// ServerPreferenceAt is the index of the command that set
	// ServerPreference.
	ServerPreferenceAt int
	// MinVersion, MaxVersion: set when MinSet/MaxSet; 0 is "None" (no
	// bound).
	MinVersion, MaxVersion uint16
	MinSet, MaxSet         bool
	// CipherString replaces ssl_ciphers when set.
	CipherString *string
	// Groups replaces ssl_ecdh_curve when set.
	Groups *string
	// NoTLS13 is "Ciphersuites" with no suite crypto/tls has: OpenSSL
	// then has no TLS 1.3 suite and negotiates TLS 1.2 at most.
	NoTLS13 bool
	// Certificates and PrivateKeys are the files of Certificate and
	// PrivateKey, in order.
	Certificates, PrivateKeys []string
	// Unhonoured lists the known commands crypto/tls cannot honour (or
	// honours only in part), with why.
	Unhonoured []Unhonoured

	index int // of the command being applied
}

// Unhonoured is one ssl_conf_command mailgate accepts, as nginx does, but
// cannot apply as OpenSSL would.
type Unhonoured struct {
	Name, Value, Why string
	Index            int // of the command in the list given
}

// confCommandNames are the commands OpenSSL 3.0's SSL_CONF_cmd knows with
// nginx's flags (SSL_CONF_FLAG_FILE|SERVER|CERTIFICATE): their file-style
// names, which OpenSSL compares without case.
var confCommandNames = []string{
	"SignatureAlgorithms", "ClientSignatureAlgorithms", "Curves", "Groups", "ECDHParameters",
	"CipherString", "Ciphersuites", "Protocol", "MinProtocol", "MaxProtocol", "Options",
	"VerifyMode", "Certificate", "PrivateKey", "ServerInfoFile", "ChainCAPath", "ChainCAFile",
	"ChainCAStore", "VerifyCAPath", "VerifyCAFile", "VerifyCAStore", "RequestCAFile", "ClientCAFile",
	"RequestCAPath", "ClientCAPath", "RequestCAStore", "ClientCAStore", "DHParameters",
	"RecordPadding", "NumTickets",
}

// confOptions are the names "Options" takes in OpenSSL 3.0 (compared
// without case, as nginx -t shows).
var confOptions = []string{
	"SessionTicket", "Compression", "EmptyFragments", "Bugs", "DHSingle", "ECDHSingle",
	"ServerPreference", "NoResumptionOnRenegotiation", "NoRenegotiation", "PrioritizeChaCha",
	"MiddleboxCompat", "AntiReplay", "ExtendedMasterSecret", "CANames", "KTLS",
	"UnsafeLegacyRenegotiation", "UnsafeLegacyServerConnect", "EncryptThenMac", "ClientRenegotiation",
}

// optionNotes says what crypto/tls does instead of an option it has no
// switch for.
var optionNotes = map[string]string{
	"Compression":                 "crypto/tls never compresses",
	"NoRenegotiation":             "a crypto/tls server never renegotiates",
	"ClientRenegotiation":         "a crypto/tls server never renegotiates",
	"UnsafeLegacyRenegotiation":   "a crypto/tls server never renegotiates",
	"NoResumptionOnRenegotiation": "a crypto/tls server never renegotiates",
	"ExtendedMasterSecret":        "crypto/tls always offers the extended master secret",
	"MiddleboxCompat":             "crypto/tls always answers in TLS 1.3 middlebox compatibility mode",
	"PrioritizeChaCha":            "crypto/tls puts ChaCha20 first by itself when the client prefers it and the machine has no AES hardware",
	"KTLS":                        "crypto/tls has no kernel TLS",
}

var protocolVersions = map[string]uint16{
	"None": 0, "SSLv3": tls.VersionSSL30, "TLSv1": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11,
	"TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13, "DTLSv1": 0, "DTLSv1.2": 0,
}

// tls13Suites are OpenSSL's TLS 1.3 suite names; crypto/tls implements
// the first three, always enabled, in its own order.
var tls13Suites = []string{"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256", "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}

// ConfCommandError is an ssl_conf_command OpenSSL refuses; Error is the
// line nginx logs.
type ConfCommandError struct {
	Name, Value, Reason string
}

func (e *ConfCommandError) Error() string {
	return fmt.Sprintf(`SSL_CONF_cmd("%s", "%s") failed (SSL: %s)`, e.Name, e.Value, e.Reason)
}

func badValue(name, value, cause string) error {
	r := fmt.Sprintf("error:0A000180:SSL routines::bad value:cmd=%s, value=%s", name, value)
	if cause != "" {
		r = cause + " " + r
	}
	return &ConfCommandError{Name: name, Value: value, Reason: r}
}

// ParseConfCommands judges ssl_conf_command lines as OpenSSL does under
// nginx and returns their meaning for crypto/tls. The error is nginx's
// message for the first command OpenSSL refuses.
func ParseConfCommands(cmds [][2]string) (*ConfCommands, error) {
	cc := &ConfCommands{}
	for i, kv := range cmds {
		cc.index = i
		if err := cc.apply(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return cc, nil
}

func (cc *ConfCommands) unhonoured(name, value, why string) {
	cc.Unhonoured = append(cc.Unhonoured, Unhonoured{Name: name, Value: value, Why: why, Index: cc.index})
}

func (cc *ConfCommands) apply(name, value string) error {
	canon := ""
	for _, n := range confCommandNames {
		if strings.EqualFold(n, name) {
			canon = n
		}
	}
	if canon == "" {
		return &ConfCommandError{Name: name, Value: value, Reason: "error:0A000182:SSL routines::unknown cmd name:cmd=" + name}
	}
	switch canon {
	case "Options":
		return cc.options(name, value)
	case "MinProtocol", "MaxProtocol":
		v, ok := protocolVersions[value]
		if !ok {
			return badValue(name, value, "")
		}
		if strings.HasPrefix(value, "DTLS") {
			cc.unhonoured(name, value, "a DTLS version does not bound TLS")
			return nil
		}
		if canon == "MinProtocol" {
			cc.MinVersion, cc.MinSet = v, true
		} else {
			cc.MaxVersion, cc.MaxSet = v, true
		}
		if v == tls.VersionSSL30 {
			cc.unhonoured(name, value, "crypto/tls has no SSLv3")
		}
	case "CipherString":
		if _, err := EvalCiphers(value); err != nil {
			return badValue(name, value, "error:0A0000B9:SSL routines::no cipher match")
		}
		v := value
		cc.CipherString = &v
	case "Ciphersuites":
		return cc.ciphersuites(name, value)
	case "Groups", "Curves":
		if value == "" {
			return badValue(name, value, "")
		}
		if _, err := Curves(value); err != nil {
			var ce *CurveError
			cause := ""
			if errors.As(err, &ce) && ce.Group != "" {
				cause = fmt.Sprintf("error:0A080106:SSL routines::passed invalid argument:group '%s' cannot be set", ce.Group)
			}
			return badValue(name, value, cause)
		}
		v := value
		cc.Groups = &v
	case "Certificate", "PrivateKey":
		data, err := os.ReadFile(value)
		if err != nil {
			return badValue(name, value, fileCause(value, err))
		}
		if canon == "Certificate" && !hasPEMCertificate(data) {
			return badValue(name, value, "error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE error:0A080009:SSL routines::PEM lib")
		}
		if canon == "PrivateKey" && !hasPEMKey(data) {
			return badValue(name, value, "error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM error:0A080009:SSL routines::PEM lib")
		}
		if canon == "Certificate" {
			cc.Certificates = append(cc.Certificates, value)
		} else {
			cc.PrivateKeys = append(cc.PrivateKeys, value)
		}
	case "DHParameters":
		if _, err := os.ReadFile(value); err != nil {
			return badValue(name, value, strings.Replace(fileCause(value, err), " error:0A080002:SSL routines::system lib", "", 1))
		}
		cc.unhonoured(name, value, "crypto/tls has no finite-field DHE")
	case "ServerInfoFile":
		if _, err := os.ReadFile(value); err != nil {
			return badValue(name, value, fileCause(value, err))
		}
		cc.unhonoured(name, value, "crypto/tls sends no serverinfo extensions")
	default:
		cc.unhonoured(name, value, "crypto/tls has no equivalent setting")
	}
	return nil
}

// fileCause is OpenSSL's error queue for a file SSL_CONF_cmd cannot open.
func fileCause(path string, err error) string {
	f := fopenError(path, err)
	f = strings.Replace(f, " error:10000080:BIO routines::no such file", " error:10080002:BIO routines::system lib", 1)
	return f + " error:0A080002:SSL routines::system lib"
}

func (cc *ConfCommands) options(name, value string) error {
	var items []string
	for _, it := range strings.Split(value, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return badValue(name, value, "")
	}
	opts := make([]string, len(items))
	for i, it := range items {
		opt := strings.TrimPrefix(strings.TrimPrefix(it, "+"), "-")
		for _, o := range confOptions {
			if strings.EqualFold(o, opt) {
				opts[i] = o
			}
		}
		if opts[i] == "" {
			return badValue(name, value, "")
		}
	}
	for i, it := range items {
		on := !strings.HasPrefix(it, "-")
		opt := opts[i]
		switch opt {
		case "SessionTicket":
			cc.Tickets = &on
		case "ServerPreference":
			cc.ServerPreference, cc.ServerPreferenceAt = &on, cc.index
		default:
			why := optionNotes[opt]
			if why == "" {
				why = "crypto/tls has no such switch"
			}
			cc.unhonoured(name, it, why)
		}
	}
	return nil
}

func (cc *ConfCommands) ciphersuites(name, value string) error {
	if value == "" {
		cc.NoTLS13 = true
		return nil
	}
	var known []string
	for _, s := range strings.Split(value, ":") {
		if slices.Contains(tls13Suites, s) {
			known = append(known, s)
		}
	}
	if len(known) == 0 {
		return badValue(name, value, "error:0A0000B9:SSL routines::no cipher match")
	}
	goSuites := tls13Suites[:3]
	var inGo int
	for _, s := range known {
		if slices.Contains(goSuites, s) {
			inGo++
		}
	}
	switch {
	case inGo == 0:
		// Only CCM suites: crypto/tls has none, so no TLS 1.3.
		cc.NoTLS13 = true
		cc.unhonoured(name, value, "crypto/tls implements none of these TLS 1.3 suites (no CCM), so TLS 1.3 is not offered")
	case inGo < len(goSuites) || len(known) > inGo:
		cc.unhonoured(name, value, "crypto/tls's TLS 1.3 suites are fixed (TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, in its own order): the list is not applied")
	default:
		cc.unhonoured(name, value, "crypto/tls chooses among its TLS 1.3 suites in its own order, not in the order listed")
	}
	return nil
}

// hasPEMCertificate reports whether data has a PEM certificate crypto/x509
// reads, as SSL_CTX_use_certificate_chain_file needs.
func hasPEMCertificate(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" || b.Type == "TRUSTED CERTIFICATE" {
			_, err := x509.ParseCertificate(b.Bytes)
			return err == nil
		}
	}
}

// hasPEMKey reports whether data has an unencrypted PEM private key.
func hasPEMKey(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			return true
		}
		if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return true
		}
		if _, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return true
		}
	}
}
