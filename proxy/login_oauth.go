package proxy

// The mailgate-only upstream login with the client's OAuth mechanism
// (LoginParams.SASLMech): when auth_http accepts an OAUTHBEARER or XOAUTH2
// login without sending an Auth-Pass, the upstream gets the client's token
// the way the client sent it, as an initial response:
//
//	POP3  AUTH XOAUTH2 <b64>                 -> +OK
//	IMAP  <tag>AUTHENTICATE XOAUTH2 <b64>    -> <tag>OK
//	SMTP  AUTH XOAUTH2 <b64>                 -> 235 (only with proxy_smtp_auth on)
//
// Everything around it (greeting, EHLO, XCLIENT, the replies judged,
// errors and their log lines) is the nginx dialog of login.go.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
)

// Action text of the upstream SASL login (nginx has none; it follows
// "sending AUTH to upstream").
const ActionSendSASL = "sending AUTHENTICATE to upstream"

// OAuthMessage is the client message of mech ("XOAUTH2" or
// "OAUTHBEARER") for user and token, before base64.
func OAuthMessage(mech string, user, token []byte) []byte {
	var b []byte
	if mech == "OAUTHBEARER" {
		b = append(b, "n,"...)
		if len(user) > 0 {
			b = append(b, "a="...)
			for _, c := range user {
				switch c {
				case ',':
					b = append(b, "=2C"...)
				case '=':
					b = append(b, "=3D"...)
				default:
					b = append(b, c)
				}
			}
		}
		b = append(b, ",\x01"...)
	} else {
		b = append(b, "user="...)
		b = append(b, user...)
		b = append(b, 0x01)
	}
	b = append(b, "auth=Bearer "...)
	b = append(b, token...)
	return append(b, 0x01, 0x01)
}

// saslIR is "<mech> <base64 message>" for the login's command.
func (d *dialog) saslIR() []byte {
	raw := OAuthMessage(d.p.SASLMech, d.p.Login, d.p.Pass)
	b := make([]byte, 0, len(d.p.SASLMech)+1+base64.StdEncoding.EncodedLen(len(raw)))
	b = append(b, d.p.SASLMech...)
	b = append(b, ' ')
	b = base64.StdEncoding.AppendEncode(b, raw)
	clear(raw)
	return b
}

// hideIR keeps the base64 message (it holds the token) out of the log
// line of an upstream that echoed it; the raw token is already hidden
// (dialog.redact).
func hideIR(err error, ir []byte) error {
	var le *LoginError
	if i := bytes.IndexByte(ir, ' '); i >= 0 && errors.As(err, &le) && le.Log != "" {
		if b64 := string(ir[i+1:]); b64 != "" {
			le.Log = strings.ReplaceAll(le.Log, b64, "********")
		}
	}
	return err
}

// pop3SASL logs in to a POP3 upstream (greeting already read).
func (d *dialog) pop3SASL() ([]byte, error) {
	ir := d.saslIR()
	defer clear(ir)
	if err := d.step(ActionSendSASL, cmdLine([]byte("AUTH "), ir), expPOP3OK); err != nil {
		return nil, hideIR(err, ir)
	}
	return bytes.Clone(d.buf), nil
}

// imapSASL logs in to an IMAP upstream (greeting already read); the
// upstream must take SASL-IR (RFC 4959).
func (d *dialog) imapSASL() ([]byte, error) {
	ir := d.saslIR()
	defer clear(ir)
	if err := d.step(ActionSendSASL, cmdLine(d.p.Tag, []byte("AUTHENTICATE "), ir), expIMAPTagged); err != nil {
		return nil, hideIR(err, ir)
	}
	return bytes.Clone(d.buf), nil
}

// smtpSASL authenticates to an SMTP upstream (proxy_smtp_auth on, after
// EHLO and XCLIENT).
func (d *dialog) smtpSASL() ([]byte, error) {
	ir := d.saslIR()
	defer clear(ir)
	if err := d.step(ActionSendAuth, cmdLine([]byte("AUTH "), ir), expSMTP235); err != nil {
		return nil, hideIR(err, ir)
	}
	// As with AUTH PLAIN: the protocol answers with its own 235.
	return nil, nil
}
