package proxy

// mailgate-only TLS to the upstream (LoginParams.TLS, docs/upstream-tls.md):
// either TLS from the first byte (proxy_ssl on), after the PROXY protocol
// header, or STARTTLS before the login (proxy_starttls on):
//
//	POP3  greeting, STLS -> +OK, handshake, USER/PASS
//	IMAP  greeting, <tag>STARTTLS -> <tag>OK, handshake, LOGIN
//	SMTP  greeting, EHLO (must list STARTTLS), STARTTLS -> 220, handshake,
//	      then the usual EHLO/HELO, XCLIENT, AUTH...
//
// Nothing that carries the client's credentials is sent before the
// handshake and the certificate checks have succeeded: a refused STARTTLS,
// a failed handshake or a failed verification ends the login with a
// *LoginError (no Reply: the client gets the protocol's internal error).
// The log lines are those of nginx's stream and http upstream SSL code:
// "upstream SSL certificate verify error: (20:unable to get local issuer
// certificate)", "upstream SSL certificate does not match \"mail.example\"",
// "SSL_do_handshake() failed (SSL: ...)" while "SSL handshaking to upstream".

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"mailgate/mail/errlog"
)

// Action texts of the upstream TLS steps.
const (
	ActionSSLHandshake = "SSL handshaking to upstream"
	ActionSendStartTLS = "sending STARTTLS to upstream"
)

// UpstreamTLS is TLS towards the upstream for one login.
type UpstreamTLS struct {
	// StartTLS: upgrade a plain connection after the greeting; false: TLS
	// from the first byte.
	StartTLS bool
	// Config is the client configuration (protocols, ciphers, client
	// certificate, SNI in ServerName, session cache). Login does not
	// change it; certificate checks are Verify's and Name's, after the
	// handshake, so Config normally has InsecureSkipVerify set.
	Config *tls.Config
	// Verify, if set, judges the upstream's chain (its own certificate
	// first) as OpenSSL does and returns OpenSSL's verify result code and
	// text (0 and "ok" when trusted). Nil: proxy_ssl_verify off.
	Verify func(chain []*x509.Certificate) (code int, text string)
	// Name is checked against the certificate when Verify is set.
	Name string
}

// handshake runs the TLS client handshake on d.conn and the checks of
// proxy_ssl_verify; on success d.conn is the TLS connection.
func (d *dialog) handshake() error {
	t := d.p.TLS
	d.action = ActionSSLHandshake
	if d.p.Trace != nil {
		d.p.Trace(ActionSSLHandshake, nil)
	}
	tc := tls.Client(d.conn, t.Config)
	if err := tc.Handshake(); err != nil {
		return tlsError("SSL_do_handshake", err, d.action)
	}
	if t.Verify != nil {
		st := tc.ConnectionState()
		if code, text := t.Verify(st.PeerCertificates); code != 0 {
			return &LoginError{
				Log:    fmt.Sprintf("upstream SSL certificate verify error: (%d:%s)", code, text),
				Level:  LevelError,
				Action: d.action,
			}
		}
		if len(st.PeerCertificates) == 0 || !HostMatches(st.PeerCertificates[0], t.Name) {
			return &LoginError{
				Log:    fmt.Sprintf(`upstream SSL certificate does not match "%s"`, t.Name),
				Level:  LevelError,
				Action: d.action,
			}
		}
	}
	d.conn = tc
	d.buf = d.buf[:0]
	return nil
}

// HostMatches is OpenSSL's X509_check_host as nginx's ngx_ssl_check_host
// calls it, widened for addresses: a DNS name matches the certificate's
// DNS names (one leading "*." wildcard label), or its common name when it
// has none; an IP address also matches the certificate's IP addresses.
func HostMatches(c *x509.Certificate, name string) bool {
	if name == "" {
		return false
	}
	if c.VerifyHostname(name) == nil {
		return true
	}
	if len(c.DNSNames) == 0 && c.Subject.CommonName != "" {
		return strings.EqualFold(c.Subject.CommonName, strings.TrimSuffix(name, "."))
	}
	return false
}

// startTLS sends the protocol's STARTTLS command, judges the reply with e
// and runs the handshake. A refusal is logged like any invalid upstream
// reply, but never relayed to the client (proxy_pass_error_message).
func (d *dialog) startTLS(cmd []byte, e expect) error {
	if err := d.step(ActionSendStartTLS, cmd, e); err != nil {
		var le *LoginError
		if errors.As(err, &le) && le.Reply != nil {
			le.Reply = nil
			le.Level = LevelError
		}
		return err
	}
	return d.handshake()
}

// smtpStartTLS is the SMTP upgrade after the greeting: EHLO, whose reply
// must list STARTTLS, then STARTTLS and the handshake. The login then
// starts again with EHLO/HELO, as RFC 3207 asks.
func (d *dialog) smtpStartTLS() error {
	if err := d.step(ActionSendHelo, cmdLine([]byte("EHLO "+d.p.ServerName)), expSMTP250); err != nil {
		return err
	}
	if !ehloHas(d.buf, "STARTTLS") {
		return &LoginError{Log: "upstream does not support STARTTLS", Level: LevelError, Action: ActionSendStartTLS}
	}
	return d.startTLS([]byte("STARTTLS\r\n"), expSMTP220)
}

// ehloHas reports whether a 250 EHLO reply lists the keyword kw (on a
// line after the first, which names the server).
func ehloHas(reply []byte, kw string) bool {
	for i, line := range bytes.Split(reply, []byte("\r\n")) {
		if i == 0 {
			continue
		}
		if len(line) < 4 {
			continue
		}
		f := bytes.Fields(line[4:])
		if len(f) > 0 && bytes.EqualFold(f[0], []byte(kw)) {
			return true
		}
	}
	return false
}

// remoteAlerts are OpenSSL's reason texts of the alerts an upstream may
// send, by crypto/tls's text for them, with the alert number (OpenSSL's
// reason code is 1000 + the number).
var remoteAlerts = map[string]struct {
	n    int
	text string
}{
	"handshake failure":               {40, "sslv3 alert handshake failure"},
	"bad certificate":                 {42, "sslv3 alert bad certificate"},
	"unsupported certificate":         {43, "sslv3 alert unsupported certificate"},
	"revoked certificate":             {44, "sslv3 alert certificate revoked"},
	"expired certificate":             {45, "sslv3 alert certificate expired"},
	"unknown certificate":             {46, "sslv3 alert certificate unknown"},
	"illegal parameter":               {47, "sslv3 alert illegal parameter"},
	"unknown certificate authority":   {48, "tlsv1 alert unknown ca"},
	"access denied":                   {49, "tlsv1 alert access denied"},
	"error decoding message":          {50, "tlsv1 alert decode error"},
	"error decrypting message":        {51, "tlsv1 alert decrypt error"},
	"protocol version not supported":  {70, "tlsv1 alert protocol version"},
	"insufficient security level":     {71, "tlsv1 alert insufficient security"},
	"internal error":                  {80, "tlsv1 alert internal error"},
	"unrecognized name":               {112, "tlsv1 unrecognized name"},
	"certificate required":            {116, "tlsv13 alert certificate required"},
	"no application protocol":         {120, "tlsv1 alert no application protocol"},
	"inappropriate fallback":          {86, "tlsv1 alert inappropriate fallback"},
	"user canceled":                   {90, "tlsv1 alert user cancelled"},
	"missing extension":               {109, "tlsv13 alert missing extension"},
	"unsupported extension":           {110, "tlsv1 alert unsupported extension"},
	"bad certificate status response": {113, "tlsv1 bad certificate status response"},
}

// localErrors map crypto/tls's own handshake failures to OpenSSL's.
var localErrors = []struct{ goText, openssl string }{
	{"server selected unsupported protocol version", "error:0A000102:SSL routines::unsupported protocol"},
	{"no supported versions satisfy MinVersion and MaxVersion", "error:0A0000BF:SSL routines::no protocols available"},
	{"server chose an unconfigured cipher suite", "error:0A0000B9:SSL routines::no cipher match"},
	{"first record does not look like a TLS handshake", "error:0A00010B:SSL routines::wrong version number"},
}

// tlsError turns a TLS failure (op "SSL_do_handshake", "SSL_read",
// "SSL_write") into nginx's log line for an upstream connection (its
// log_error is NGX_ERROR_ERR): a timeout as the other login timeouts; a
// close or reset during the handshake "peer closed connection in SSL
// handshake" at error; an alert from the upstream at error; anything else
// at crit.
func tlsError(op string, err error, action string) *LoginError {
	if errlog.IsTimeout(err) {
		return &LoginError{Log: "upstream timed out (110: Connection timed out)", Level: LevelInfo, Action: action, Err: err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		text := strings.TrimPrefix(oe.Err.Error(), "tls: ")
		if a, ok := remoteAlerts[text]; ok {
			return &LoginError{
				Log:    fmt.Sprintf("%s() failed (SSL: error:0A%06X:SSL routines::%s:SSL alert number %d)", op, 1000+a.n, a.text, a.n),
				Level:  LevelError,
				Action: action,
				Err:    err,
			}
		}
		return &LoginError{Log: fmt.Sprintf("%s() failed (SSL: %s)", op, oe.Err.Error()), Level: LevelError, Action: action, Err: err}
	}
	if op == "SSL_do_handshake" {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &LoginError{Log: "peer closed connection in SSL handshake", Level: LevelError, Action: action, Err: err}
		}
		if errno := errlog.Errno(err); errno == syscall.ECONNRESET || errno == syscall.EPIPE {
			return &LoginError{Log: "peer closed connection in SSL handshake " + errlog.ErrnoText(errno), Level: LevelError, Action: action, Err: err}
		}
	}
	if errno := errlog.Errno(err); errno != 0 {
		return &LoginError{Log: op + "() failed " + errlog.ErrnoText(errno), Level: LevelError, Action: action, Err: err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return &LoginError{Action: action, Err: err} // a clean close: nothing logged, as for plain upstreams
	}
	msg := err.Error()
	for _, l := range localErrors {
		if strings.Contains(msg, l.goText) {
			msg = l.openssl
			break
		}
	}
	return &LoginError{Log: fmt.Sprintf("%s() failed (SSL: %s)", op, msg), Level: LevelCrit, Action: action, Err: err}
}
