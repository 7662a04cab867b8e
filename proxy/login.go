package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"time"

	"mailgate/mail/bufpool"
	"mailgate/mail/errlog"
)

// nginx's "while ..." action texts of the upstream login dialog.
const (
	ActionConnecting    = "connecting to upstream"
	ActionReading       = "reading response from upstream"
	ActionSendUser      = "sending user name to upstream"
	ActionSendPass      = "sending password to upstream"
	ActionSendLogin     = "sending LOGIN command to upstream"
	ActionSendHelo      = "sending HELO/EHLO to upstream"
	ActionSendXClient   = "sending XCLIENT to upstream"
	ActionSendCliHelo   = "sending client HELO/EHLO to upstream"
	ActionSendAuth      = "sending AUTH to upstream"
	ActionSendMailFrom  = "sending MAIL FROM to upstream"
	ActionSendRcptTo    = "sending RCPT TO to upstream"
	ActionSendProxyProt = "sending PROXY protocol header to upstream"
)

// Log levels of LoginError.Level and RelayResult.Level.
const (
	LevelError = errlog.Error
	LevelInfo  = errlog.Info
	LevelAlert = errlog.Alert
	LevelCrit  = errlog.Crit
)

// DefaultBufferSize is proxy_buffer's default (the page size).
const DefaultBufferSize = 4096

// What a reply must look like to be accepted. Each value is one of nginx's
// read states of ngx_mail_proxy_read_response.
type expect int

const (
	expPOP3OK       expect = iota // "+OK"
	expIMAPGreeting               // "* OK"
	expIMAPCont                   // "+"
	expIMAPTagged                 // [one "* ..." line] <tag>OK
	expSMTP220                    // greeting
	expSMTP250                    // HELO/EHLO, client HELO/EHLO, MAIL
	expSMTP2x0                    // XCLIENT: 220 or 250
	expSMTP235                    // AUTH PLAIN
	expSMTPAny                    // RCPT: any complete reply
)

// judgement of the bytes buffered so far.
type verdict int

const (
	vMore    verdict = iota // not complete yet: read more
	vOK                     // accepted
	vInvalid                // complete but wrong ("upstream sent invalid response")
	vTooLong                // buffer full without a line end
)

// judge applies nginx's reply rules to buf (the whole upstream reply buffer
// of capacity size). For vInvalid, start is where nginx's log text starts
// (past a skipped untagged IMAP line).
func judge(buf []byte, size int, e expect, tag []byte) (v verdict, start int) {
	n := len(buf)
	if n < 4 || buf[n-2] != '\r' || buf[n-1] != '\n' {
		// Below 4 bytes only with a buffer smaller than that: nginx then
		// reads 0 bytes, which it treats as a close.
		if n >= size {
			return vTooLong, 0
		}
		return vMore, 0
	}
	switch e {
	case expPOP3OK:
		return okIf(bytes.HasPrefix(buf, []byte("+OK")))
	case expIMAPGreeting:
		return okIf(bytes.HasPrefix(buf, []byte("* OK")))
	case expIMAPCont:
		return okIf(buf[0] == '+')
	case expIMAPTagged:
		return judgeIMAPTagged(buf, tag)
	default:
		return judgeSMTP(buf, e)
	}
}

// okIf is vOK, or vInvalid with the log line starting at the reply's start.
func okIf(ok bool) (verdict, int) {
	if ok {
		return vOK, 0
	}
	return vInvalid, 0
}

// judgeIMAPTagged judges the reply to the upstream LOGIN: the tagged OK,
// after at most one untagged line (e.g. Gmail's "* CAPABILITY ..."),
// which newer nginx skips.
func judgeIMAPTagged(buf, tag []byte) (verdict, int) {
	n := len(buf)
	p := 0
	if buf[0] == '*' && buf[1] == ' ' {
		p = 2
		for p < n-1 {
			if buf[p] == '\r' && buf[p+1] == '\n' {
				p += 2
				break
			}
			p++
		}
		if n-p < 4 {
			return vMore, 0
		}
	}
	if n-p >= len(tag) && bytes.Equal(buf[p:p+len(tag)], tag) {
		// nginx steps over a matching tag before looking for OK, so its
		// log line of a refusal starts after the tag ("NO
		// [AUTHENTICATIONFAILED] ...").
		p += len(tag)
		if n-p >= 2 && buf[p] == 'O' && buf[p+1] == 'K' {
			return vOK, 0
		}
	}
	if p > n-2 {
		p = n - 2 // only with a tag holding CR or LF
	}
	return vInvalid, p
}

// judgeSMTP judges an SMTP reply: a multi-line one is complete at the
// line whose 4th byte is not '-', then its code decides.
func judgeSMTP(buf []byte, e expect) (verdict, int) {
	n := len(buf)
	if buf[3] == '-' {
		// The search for the last line's start begins 7 bytes from the
		// end ("\r\n200\r\n"), as nginx does.
		m := n - 7
		for m > 0 {
			if buf[m] == '\r' && buf[m+1] == '\n' {
				break
			}
			m--
		}
		if m <= 0 || buf[m+5] == '-' {
			return vMore, 0
		}
	}
	c0, c1, c2 := buf[0], buf[1], buf[2]
	switch e {
	case expSMTP220:
		return okIf(c0 == '2' && c1 == '2' && c2 == '0')
	case expSMTP250:
		return okIf(c0 == '2' && c1 == '5' && c2 == '0')
	case expSMTP2x0:
		return okIf(c0 == '2' && (c1 == '2' || c1 == '5') && c2 == '0')
	case expSMTP235:
		return okIf(c0 == '2' && c1 == '3' && c2 == '5')
	case expSMTPAny:
		return vOK, 0
	}
	return vInvalid, 0
}

// dialog is one upstream login in progress.
type dialog struct {
	conn   net.Conn
	p      *LoginParams
	buf    []byte // capacity = proxy_buffer
	size   int
	action string
}

// Login runs nginx's upstream login dialog on conn (already connected):
// the PROXY protocol header if asked for, then POP3 USER/PASS, IMAP LOGIN
// with literals, or the SMTP EHLO/XCLIENT/HELO/AUTH/MAIL/RCPT sequence.
// p.Deadline bounds the whole dialog.
//
// On success it returns the bytes the client must get as the answer to its
// authenticating command (POP3: the upstream's PASS reply; IMAP: the whole
// final reply buffer; SMTP: the upstream's RCPT reply on the smtp_auth
// none path, and nil otherwise: the protocol answers with its own 235)
// and clears conn's deadline. On failure
// the error is a *LoginError. Login never closes conn.
func Login(conn net.Conn, p *LoginParams) (handoff []byte, err error) {
	_, handoff, err = LoginConn(conn, p)
	return handoff, err
}

// LoginConn is Login that also returns the connection the relay must use:
// conn itself, or the TLS connection over it when p.TLS is set.
func LoginConn(conn net.Conn, p *LoginParams) (up net.Conn, handoff []byte, err error) {
	size := p.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	// The reply buffer is lent for the login: what outlives it (the
	// hand-off, a relayed error reply) is cloned.
	bp := bufpool.Get(size)
	defer bufpool.Put(bp)
	d := &dialog{
		conn:   conn,
		p:      p,
		buf:    (*bp)[:0],
		size:   size,
		action: ActionConnecting,
	}
	if !p.Deadline.IsZero() {
		if err := conn.SetDeadline(p.Deadline); err != nil {
			return nil, nil, &LoginError{Log: "upstream deadline: " + err.Error(), Level: LevelError, Action: d.action, Err: err}
		}
	}
	if p.ProxyProtocol != 0 {
		d.action = ActionSendProxyProt
		hdr, herr := ProxyHeader(p.ProxyProtocol, p.Source, p.Dest)
		if herr != nil {
			return nil, nil, &LoginError{Log: herr.Error(), Level: LevelError, Action: d.action, Err: herr}
		}
		if err := d.send(hdr); err != nil {
			return nil, nil, err
		}
	}
	if p.TLS != nil && !p.TLS.StartTLS {
		if err := d.handshake(); err != nil { // mailgate-only (upstream_tls.go)
			return nil, nil, err
		}
	}
	switch p.Protocol {
	case "pop3":
		handoff, err = d.pop3()
	case "imap":
		handoff, err = d.imap()
	case "smtp":
		handoff, err = d.smtp()
	default:
		err = &LoginError{Log: "unknown mail protocol " + strconv.Quote(p.Protocol), Level: LevelError, Action: d.action}
	}
	if err != nil {
		return nil, nil, err
	}
	if !p.Deadline.IsZero() {
		_ = d.conn.SetDeadline(time.Time{})
	}
	return d.conn, handoff, nil
}

// send writes one command in one Write, after which the reply buffer is
// emptied (bytes the upstream sent beyond the reply just judged are lost,
// as in nginx).
func (d *dialog) send(b []byte) error {
	d.buf = d.buf[:0]
	if _, err := d.conn.Write(b); err != nil {
		return d.ioError("send", err)
	}
	return nil
}

// reply reads until the buffer holds a judgeable reply and judges it.
func (d *dialog) reply(e expect) error {
	for {
		n, err := d.conn.Read(d.buf[len(d.buf):d.size])
		if n > 0 || (err != nil && !errlog.IsTimeout(err)) {
			d.action = ActionReading
		}
		if n > 0 {
			d.buf = d.buf[:len(d.buf)+n]
			v, start := judge(d.buf, d.size, e, d.p.Tag)
			if v != vMore && d.p.Trace != nil {
				d.p.Trace("upstream replied", d.buf)
			}
			switch v {
			case vOK:
				return nil
			case vInvalid:
				return d.invalid(start)
			case vTooLong:
				return d.tooLong()
			}
			if len(d.buf) == d.size {
				return d.full()
			}
			continue
		}
		if err == nil {
			continue
		}
		return d.ioError("recv", err)
	}
}

// full handles a buffer that ends in CRLF, has no room left and still
// wants more (an unfinished multi-line reply). nginx waits for the next
// read event; its recv() then has no room, returns 0 and that counts as a
// close (internal error, nothing logged). Without more data the timeout
// fires first.
func (d *dialog) full() error {
	var one [1]byte
	for {
		n, err := d.conn.Read(one[:])
		if err != nil && errlog.IsTimeout(err) {
			return d.ioError("recv", err)
		}
		if n > 0 || err != nil {
			return &LoginError{Action: ActionReading, Err: errors.New("upstream reply buffer full")}
		}
	}
}

func (d *dialog) invalid(start int) error {
	text := d.buf[start : len(d.buf)-2]
	if !d.p.PassErrorMessage {
		// nginx NUL-terminates the line in place and logs it with %s.
		if i := bytes.IndexByte(text, 0); i >= 0 {
			text = text[:i]
		}
		return &LoginError{
			Log:    `upstream sent invalid response: "` + d.redact(text) + `"`,
			Level:  LevelError,
			Action: d.action,
		}
	}
	return &LoginError{
		Reply:  bytes.Clone(d.buf),
		Log:    `upstream sent invalid response: "` + d.redact(text) + `"`,
		Level:  LevelInfo,
		Action: d.action,
	}
}

func (d *dialog) tooLong() error {
	text := d.buf[:len(d.buf)-1]
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	return &LoginError{
		Log:    `upstream sent too long response line: "` + d.redact(text) + `"`,
		Level:  LevelError,
		Action: d.action,
	}
}

// redact hides our password if an echoing upstream sent it back, so that
// it never reaches the error log. nginx would log it; this is a deliberate
// difference that only shows with such upstreams.
func (d *dialog) redact(b []byte) string {
	if len(d.p.Pass) > 0 && bytes.Contains(b, d.p.Pass) {
		b = bytes.ReplaceAll(b, d.p.Pass, []byte("********"))
	}
	return string(b)
}

// ioError turns a read or write failure into nginx's log line: a timeout
// is "upstream timed out (110: Connection timed out)" at info, a socket
// error "recv() failed (104: Connection reset by peer)" at error, and a
// clean close is not logged at all.
func (d *dialog) ioError(op string, err error) error {
	if errlog.IsTimeout(err) {
		return &LoginError{
			Log:    "upstream timed out (110: Connection timed out)",
			Level:  LevelInfo,
			Action: d.action,
			Err:    err,
		}
	}
	if _, ok := d.conn.(*tls.Conn); ok {
		return tlsError(map[string]string{"recv": "SSL_read", "send": "SSL_write"}[op], err, d.action)
	}
	if errno := errlog.Errno(err); errno != 0 {
		return &LoginError{
			Log:    op + "() failed " + errlog.ErrnoText(errno),
			Level:  LevelError,
			Action: d.action,
			Err:    err,
		}
	}
	// EOF or a non-socket error: nginx says nothing and answers with the
	// internal error.
	return &LoginError{Action: d.action, Err: err}
}

func (d *dialog) step(action string, line []byte, e expect) error {
	d.action = action
	if d.p.Trace != nil {
		shown := line
		if action == ActionSendPass || action == ActionSendAuth || action == ActionSendSASL {
			shown = []byte("(a password, not shown)")
		}
		d.p.Trace(action, shown)
	}
	err := d.send(line)
	clear(line) // may hold the password; no copy outlives the dialog
	if err != nil {
		return err
	}
	return d.reply(e)
}

func cmdLine(parts ...[]byte) []byte {
	n := 2
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return append(b, '\r', '\n')
}

func (d *dialog) pop3() ([]byte, error) {
	if err := d.reply(expPOP3OK); err != nil {
		return nil, err
	}
	if d.p.TLS != nil && d.p.TLS.StartTLS {
		if err := d.startTLS([]byte("STLS\r\n"), expPOP3OK); err != nil {
			return nil, err
		}
	}
	if d.p.SASLMech != "" {
		return d.pop3SASL() // mailgate-only (login_oauth.go)
	}
	if err := d.step(ActionSendUser, cmdLine([]byte("USER "), d.p.Login), expPOP3OK); err != nil {
		return nil, err
	}
	if err := d.step(ActionSendPass, cmdLine([]byte("PASS "), d.p.Pass), expPOP3OK); err != nil {
		return nil, err
	}
	return bytes.Clone(d.buf), nil
}

func (d *dialog) imap() ([]byte, error) {
	if err := d.reply(expIMAPGreeting); err != nil {
		return nil, err
	}
	if d.p.TLS != nil && d.p.TLS.StartTLS {
		if err := d.startTLS(cmdLine(d.p.Tag, []byte("STARTTLS")), expIMAPTagged); err != nil {
			return nil, err
		}
	}
	// The ID goes inside TLS when there is TLS.
	if d.p.IMAPID != nil {
		if err := d.imapID(); err != nil { // mailgate-only (login_id.go)
			return nil, err
		}
	}
	if d.p.SASLMech != "" {
		return d.imapSASL() // mailgate-only (login_oauth.go)
	}
	login := cmdLine(d.p.Tag, []byte("LOGIN {"+strconv.Itoa(len(d.p.Login))+"}"))
	if err := d.step(ActionSendLogin, login, expIMAPCont); err != nil {
		return nil, err
	}
	user := cmdLine(d.p.Login, []byte(" {"+strconv.Itoa(len(d.p.Pass))+"}"))
	if err := d.step(ActionSendUser, user, expIMAPCont); err != nil {
		return nil, err
	}
	if err := d.step(ActionSendPass, cmdLine(d.p.Pass), expIMAPTagged); err != nil {
		return nil, err
	}
	return bytes.Clone(d.buf), nil
}

func (d *dialog) smtp() ([]byte, error) {
	p := d.p
	if err := d.reply(expSMTP220); err != nil {
		return nil, err
	}
	if p.TLS != nil && p.TLS.StartTLS {
		if err := d.smtpStartTLS(); err != nil {
			return nil, err
		}
	}
	verb := "HELO "
	if p.ESMTP || p.XClient {
		verb = "EHLO "
	}
	if err := d.step(ActionSendHelo, cmdLine([]byte(verb+p.ServerName)), expSMTP250); err != nil {
		return nil, err
	}
	// The reply to XCLIENT may be 220 or 250; the one to the replayed
	// client HELO/EHLO must be 250.
	if p.XClient {
		if err := d.step(ActionSendXClient, xclientLine(p), expSMTP2x0); err != nil {
			return nil, err
		}
		if len(p.Helo) > 0 {
			verb := "HELO "
			if p.ESMTP {
				verb = "EHLO "
			}
			if err := d.step(ActionSendCliHelo, cmdLine([]byte(verb), p.Helo), expSMTP250); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case p.AuthNone:
		if err := d.step(ActionSendMailFrom, cmdLine(p.MailFrom), expSMTP250); err != nil {
			return nil, err
		}
		if err := d.step(ActionSendRcptTo, cmdLine(p.RcptTo), expSMTPAny); err != nil {
			return nil, err
		}
		return bytes.Clone(d.buf), nil
	case p.SMTPAuth && p.SASLMech != "":
		return d.smtpSASL() // mailgate-only (login_oauth.go)
	case p.SMTPAuth:
		d.action = ActionSendAuth
		if p.Pass == nil {
			return nil, &LoginError{Log: "no password available", Level: LevelError, Action: d.action}
		}
		raw := make([]byte, 0, 2+len(p.Login)+len(p.Pass))
		raw = append(raw, 0)
		raw = append(raw, p.Login...)
		raw = append(raw, 0)
		raw = append(raw, p.Pass...)
		enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
		base64.StdEncoding.Encode(enc, raw)
		clear(raw)
		line := cmdLine([]byte("AUTH PLAIN "), enc)
		if err := d.step(ActionSendAuth, line, expSMTP235); err != nil {
			return nil, err
		}
	}
	// nginx throws the upstream's reply away and the protocol sends its
	// own (mail.Handler.LoggedIn).
	return nil, nil
}

// xclientLine renders "XCLIENT ADDR=...[ LOGIN=...] NAME=...\r\n".
func xclientLine(p *LoginParams) []byte {
	b := make([]byte, 0, 64+3*len(p.Login)+len(p.ClientHost))
	b = append(b, "XCLIENT ADDR="...)
	if p.ClientIP.Is6() {
		b = append(b, "IPV6:"...)
	}
	if p.ClientIP.IsValid() {
		b = append(b, FormatAddr(p.ClientIP)...)
	} else {
		b = append(b, "unix:"...)
	}
	if len(p.Login) > 0 && !p.SMTPAuth {
		b = append(b, " LOGIN="...)
		if p.XTextLogin {
			b = AppendXText(b, p.Login)
		} else {
			b = append(b, p.Login...)
		}
	}
	b = append(b, " NAME="...)
	b = append(b, p.ClientHost...)
	return append(b, '\r', '\n')
}

// AppendXText appends s in xtext (RFC 1891) as newer nginx encodes
// XCLIENT LOGIN=: bytes below 0x21, '+', '=' and 0x7F-0xFF become "+XX".
func AppendXText(b, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if c < 0x21 || c >= 0x7f || c == '+' || c == '=' {
			b = append(b, '+', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}
