package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func pop3Params() *LoginParams {
	return &LoginParams{Protocol: "pop3", Login: []byte("test@example.com"), Pass: []byte("secret"), BufferSize: 4096}
}

func imapParams() *LoginParams {
	return &LoginParams{Protocol: "imap", Login: []byte("test@example.com"), Pass: []byte("secret"), Tag: []byte("a2 "), BufferSize: 4096}
}

func smtpParams() *LoginParams {
	return &LoginParams{
		Protocol: "smtp", Login: []byte("test@example.com"), Pass: []byte("secret"),
		ServerName: "mx.example.test", XClient: true, XTextLogin: true,
		ClientIP: netip.MustParseAddr("127.0.0.1"), ClientHost: "[UNAVAILABLE]", BufferSize: 4096,
	}
}

func with(p *LoginParams, f func(*LoginParams)) *LoginParams { f(p); return p }

type loginCase struct {
	name     string
	params   *LoginParams
	greeting []byte
	replies  [][]byte
	deadline time.Duration // default 2s

	wantUp      string // exact bytes the upstream received
	wantHandoff string
	// On failure:
	wantLog    string // "" with wantErr: nothing logged
	wantLevel  string
	wantAction string
	wantReply  string // LoginError.Reply
	wantErr    bool
}

func b(s string) []byte { return []byte(s) }

var loginCases = []loginCase{
	// ---- POP3 ----
	{
		name: "pop3 good", params: pop3Params(),
		greeting: b("+OK upstream ready\r\n"),
		replies:  [][]byte{b("+OK user ok\r\n"), b("+OK pass ok, maildrop ready\r\n")},
		wantUp:   "USER test@example.com\r\nPASS secret\r\n", wantHandoff: "+OK pass ok, maildrop ready\r\n",
	},
	{
		name: "pop3 greeting rejected, pass_error_message off", params: pop3Params(),
		greeting: b("-ERR go away\r\n"),
		wantUp:   "", wantErr: true,
		wantLog: `upstream sent invalid response: "-ERR go away"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name:     "pop3 USER rejected, pass_error_message on",
		params:   with(pop3Params(), func(p *LoginParams) { p.PassErrorMessage = true }),
		greeting: b("+OK hi\r\n"), replies: [][]byte{b("-ERR no such user\r\n")},
		wantUp: "USER test@example.com\r\n", wantErr: true,
		wantLog: `upstream sent invalid response: "-ERR no such user"`, wantLevel: "info", wantAction: ActionReading,
		wantReply: "-ERR no such user\r\n",
	},
	{
		name: "pop3 PASS rejected, off, log cut at NUL (as captured)", params: pop3Params(),
		greeting: b("+OK upstream ready\r\n"), replies: [][]byte{b("+OK\r\n"), b("-ERR [AUTH] no\x00way\r\n")},
		wantUp: "USER test@example.com\r\nPASS secret\r\n", wantErr: true,
		wantLog: `upstream sent invalid response: "-ERR [AUTH] no"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name:     "pop3 PASS rejected, on, whole buffer relayed",
		params:   with(pop3Params(), func(p *LoginParams) { p.PassErrorMessage = true }),
		greeting: b("+OK upstream ready\r\n"), replies: [][]byte{b("+OK\r\n"), b("-ERR [AUTH] upstream says no\r\n")},
		wantUp: "USER test@example.com\r\nPASS secret\r\n", wantErr: true,
		wantLog: `upstream sent invalid response: "-ERR [AUTH] upstream says no"`, wantLevel: "info", wantAction: ActionReading,
		wantReply: "-ERR [AUTH] upstream says no\r\n",
	},
	{
		name: "pop3 early close after USER: nothing logged", params: pop3Params(),
		greeting: b("+OK upstream ready\r\n"), replies: [][]byte{hangup},
		wantUp: "USER test@example.com\r\n", wantErr: true, wantAction: ActionReading,
	},
	{
		name: "pop3 silent greeting: timeout while connecting", params: pop3Params(),
		greeting: nil, deadline: 200 * time.Millisecond,
		wantErr: true, wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionConnecting,
	},
	{
		name: "pop3 no reply to USER: timeout while sending user name (as captured)", params: pop3Params(),
		greeting: b("+OK hi\r\n"), replies: [][]byte{hang}, deadline: 200 * time.Millisecond,
		wantUp: "USER test@example.com\r\n", wantErr: true,
		wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionSendUser,
	},
	{
		name: "pop3 partial reply then silence: timeout while reading", params: pop3Params(),
		greeting: b("+OK hi\r\n"), replies: [][]byte{b("+OK par")}, deadline: 200 * time.Millisecond,
		wantUp: "USER test@example.com\r\n", wantErr: true,
		wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionReading,
	},
	{
		name:     "pop3 too long greeting line",
		params:   with(pop3Params(), func(p *LoginParams) { p.BufferSize = 16 }),
		greeting: b("+OK 0123456789abcdefgh\r\n"),
		wantErr:  true, wantLog: `upstream sent too long response line: "+OK 0123456789a"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name:     "pop3 reply of exactly the buffer size is fine",
		params:   with(pop3Params(), func(p *LoginParams) { p.BufferSize = 8 }),
		greeting: b("+OK 12\r\n"), replies: [][]byte{b("+OK\r\n"), b("+OK 34\r\n")},
		wantUp: "USER test@example.com\r\nPASS secret\r\n", wantHandoff: "+OK 34\r\n",
	},
	{
		name:     "pop3 bare LF is not a line end",
		params:   with(pop3Params(), func(p *LoginParams) { p.BufferSize = 8 }),
		greeting: b("+OK 123\n"),
		wantErr:  true, wantLog: `upstream sent too long response line: "+OK 123"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name:     "pop3 echoed password is redacted in the log",
		params:   pop3Params(),
		greeting: b("+OK hi\r\n"), replies: [][]byte{b("+OK\r\n"), b("-ERR bad password secret\r\n")},
		wantUp: "USER test@example.com\r\nPASS secret\r\n", wantErr: true,
		wantLog: `upstream sent invalid response: "-ERR bad password ********"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name: "pop3 with PROXY v1 header first",
		params: with(pop3Params(), func(p *LoginParams) {
			p.ProxyProtocol = 1
			p.Source = netip.MustParseAddrPort("192.0.2.1:123")
			p.Dest = netip.MustParseAddrPort("127.0.0.1:41034")
		}),
		greeting: b("+OK hi\r\n"), replies: [][]byte{hang, b("+OK\r\n"), b("+OK pp\r\n")},
		wantUp: "PROXY TCP4 192.0.2.1 127.0.0.1 123 41034\r\nUSER test@example.com\r\nPASS secret\r\n", wantHandoff: "+OK pp\r\n",
	},
	{
		name: "pop3 PROXY header sent, no greeting: timeout action is the header's",
		params: with(pop3Params(), func(p *LoginParams) {
			p.ProxyProtocol = 1
			p.Source = netip.MustParseAddrPort("192.0.2.1:123")
			p.Dest = netip.MustParseAddrPort("127.0.0.1:110")
		}),
		greeting: nil, deadline: 200 * time.Millisecond,
		wantUp: "PROXY TCP4 192.0.2.1 127.0.0.1 123 110\r\n", wantErr: true,
		wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionSendProxyProt,
	},

	// ---- IMAP ----
	{
		name: "imap good", params: imapParams(),
		greeting: b("* OK IMAP4 ready\r\n"),
		replies:  [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), b("a2 OK [CAPABILITY IMAP4rev1] Logged in\r\n")},
		wantUp:   "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantHandoff: "a2 OK [CAPABILITY IMAP4rev1] Logged in\r\n",
	},
	{
		name: "imap one untagged line before the tagged OK is accepted (newer nginx)", params: imapParams(),
		greeting: b("* OK IMAP4 ready\r\n"),
		replies:  [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), b("* CAPABILITY IMAP4rev1 FAKE\r\na2 OK login ok\r\n")},
		wantUp:   "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantHandoff: "* CAPABILITY IMAP4rev1 FAKE\r\na2 OK login ok\r\n",
	},
	{
		name: "imap two untagged lines are refused", params: with(imapParams(), func(p *LoginParams) { p.PassErrorMessage = true }),
		greeting: b("* OK IMAP4 ready\r\n"),
		replies:  [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), b("* CAPABILITY X\r\n* OK [ALERT] y\r\na2 OK login ok\r\n")},
		wantUp:   "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantErr: true,
		wantLog: "upstream sent invalid response: \"* OK [ALERT] y\r\na2 OK login ok\"", wantLevel: "info", wantAction: ActionReading,
		wantReply: "* CAPABILITY X\r\n* OK [ALERT] y\r\na2 OK login ok\r\n",
	},
	{
		name: "imap PREAUTH greeting refused (as captured)", params: imapParams(),
		greeting: b("* PREAUTH hi\r\n"),
		wantErr:  true, wantLog: `upstream sent invalid response: "* PREAUTH hi"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name: "imap no continuation for LOGIN", params: with(imapParams(), func(p *LoginParams) { p.PassErrorMessage = true }),
		greeting: b("* OK hi\r\n"), replies: [][]byte{b("a2 BAD no literals\r\n")},
		wantUp: "a2 LOGIN {16}\r\n", wantErr: true,
		wantLog: `upstream sent invalid response: "a2 BAD no literals"`, wantLevel: "info", wantAction: ActionReading,
		wantReply: "a2 BAD no literals\r\n",
	},
	{
		name: "imap no continuation for the password literal", params: imapParams(),
		greeting: b("* OK hi\r\n"), replies: [][]byte{b("+ OK\r\n"), b("a2 NO too long\r\n")},
		wantUp: "a2 LOGIN {16}\r\ntest@example.com {6}\r\n", wantErr: true,
		wantLog: `upstream sent invalid response: "a2 NO too long"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name: "imap tagged NO, pass_error_message on, untagged line relayed too", params: with(imapParams(), func(p *LoginParams) { p.PassErrorMessage = true }),
		greeting: b("* OK hi\r\n"),
		replies:  [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), b("* BAD [ALERT] extra\r\na2 NO [AUTHENTICATIONFAILED] upstream says no\r\n")},
		wantUp:   "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantErr: true,
		// The log starts after the matching tag, as nginx 1.22.1 printed in
		// compat-tests/imap: "NO [AUTHENTICATIONFAILED] upstream says no".
		wantLog: `upstream sent invalid response: "NO [AUTHENTICATIONFAILED] upstream says no"`, wantLevel: "info", wantAction: ActionReading,
		wantReply: "* BAD [ALERT] extra\r\na2 NO [AUTHENTICATIONFAILED] upstream says no\r\n",
	},
	{
		name: "imap other tag is refused", params: imapParams(),
		greeting: b("* OK hi\r\n"), replies: [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), b("a3 OK done\r\n")},
		wantUp: "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantErr: true,
		wantLog: `upstream sent invalid response: "a3 OK done"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name:     "imap binary login and password go as literals",
		params:   with(imapParams(), func(p *LoginParams) { p.Login = b("a \"b\"\r\n"); p.Pass = b("p{1}\x00") }),
		greeting: b("* OK hi\r\n"), replies: [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), nil, b("a2 OK ok\r\n")},
		wantUp: "a2 LOGIN {7}\r\na \"b\"\r\n {5}\r\np{1}\x00\r\n", wantHandoff: "a2 OK ok\r\n",
	},
	{
		name: "imap silent after password: timeout while sending password", params: imapParams(),
		greeting: b("* OK hi\r\n"), replies: [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), hang}, deadline: 200 * time.Millisecond,
		wantUp: "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n", wantErr: true,
		wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionSendPass,
	},

	// ---- SMTP ----
	{
		name: "smtp xclient, no client HELO", params: smtpParams(),
		greeting: b("220 up ESMTP\r\n"), replies: [][]byte{b("250-up\r\n250 XCLIENT ADDR LOGIN NAME\r\n"), b("220 up again\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
		wantHandoff: "",
	},
	{
		name:     "smtp xclient with client EHLO replayed (as captured)",
		params:   with(smtpParams(), func(p *LoginParams) { p.ESMTP = true; p.Helo = b("client.example"); p.Login = b("smtpxclient") }),
		greeting: b("220 up ESMTP\r\n"), replies: [][]byte{b("250-up\r\n250 XCLIENT ADDR LOGIN NAME\r\n"), b("220 up ESMTP again\r\n"), b("250 up\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=smtpxclient NAME=[UNAVAILABLE]\r\nEHLO client.example\r\n",
		wantHandoff: "",
	},
	{
		name:     "smtp client HELO replayed as HELO, multi-line greeting",
		params:   with(smtpParams(), func(p *LoginParams) { p.Helo = b("client.example") }),
		greeting: b("220-up line1\r\n220-up line2\r\n220 up ESMTP\r\n"), replies: [][]byte{b("250-up\r\n250-8BITMIME\r\n250 XCLIENT NAME\r\n"), b("250 ok\r\n"), b("250 up\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\nHELO client.example\r\n",
		wantHandoff: "",
	},
	{
		name:     "smtp reply to replayed HELO must be 250, not 220",
		params:   with(smtpParams(), func(p *LoginParams) { p.Helo = b("c") }),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("220 ok\r\n"), b("220 again\r\n")},
		wantUp:  "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\nHELO c\r\n",
		wantErr: true, wantLog: `upstream sent invalid response: "220 again"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name: "smtp xclient IPv6 and xtext login",
		params: with(smtpParams(), func(p *LoginParams) {
			p.ClientIP = netip.MustParseAddr("2001:db8::1")
			p.Login = b("te st+x=y\xc3\xa9@z")
		}),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("250 ok\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=IPV6:2001:db8::1 LOGIN=te+20st+2Bx+3Dy+C3+A9@z NAME=[UNAVAILABLE]\r\n",
		wantHandoff: "",
	},
	{
		name:     "smtp xclient raw login as 1.22.1",
		params:   with(smtpParams(), func(p *LoginParams) { p.XTextLogin = false; p.Login = b("te st+x=y") }),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("250 ok\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=te st+x=y NAME=[UNAVAILABLE]\r\n",
		wantHandoff: "",
	},
	{
		name:     "smtp xclient without login",
		params:   with(smtpParams(), func(p *LoginParams) { p.Login = nil; p.ClientHost = "mail.example.org" }),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("250 ok\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 NAME=mail.example.org\r\n",
		wantHandoff: "",
	},
	{
		name:     "smtp xclient + proxy_smtp_auth (as in the spec transcript)",
		params:   with(smtpParams(), func(p *LoginParams) { p.SMTPAuth = true; p.ESMTP = true; p.Helo = b("client.example") }),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("250 ok\r\n"), b("250 up\r\n"), b("235 2.7.0 Authentication successful\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\nEHLO client.example\r\nAUTH PLAIN AHRlc3RAZXhhbXBsZS5jb20Ac2VjcmV0\r\n",
		wantHandoff: "",
	},
	{
		name:     "smtp proxy_smtp_auth without xclient, rejected AUTH (as captured)",
		params:   with(smtpParams(), func(p *LoginParams) { p.SMTPAuth = true; p.XClient = false; p.ESMTP = true; p.Login = b("smtpauth") }),
		greeting: b("220 up ESMTP\r\n"), replies: [][]byte{b("250-up\r\n250 AUTH PLAIN\r\n"), b("250 ok\r\n")},
		wantUp:  "EHLO mx.example.test\r\nAUTH PLAIN AHNtdHBhdXRoAHNlY3JldA==\r\n",
		wantErr: true, wantLog: `upstream sent invalid response: "250 ok"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name:     "smtp proxy_smtp_auth without a password",
		params:   with(smtpParams(), func(p *LoginParams) { p.SMTPAuth = true; p.XClient = false; p.Pass = nil }),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n")},
		wantUp:  "HELO mx.example.test\r\n",
		wantErr: true, wantLog: "no password available", wantLevel: "error", wantAction: ActionSendAuth,
	},
	{
		name: "smtp none path with xclient: MAIL and RCPT replayed, RCPT reply handed off whatever it is",
		params: with(smtpParams(), func(p *LoginParams) {
			p.AuthNone = true
			p.Login = nil
			p.Helo = b("c.example")
			p.ESMTP = true
			p.MailFrom = b("MAIL FROM:<a@b>")
			p.RcptTo = b("RCPT TO:<x@y>")
		}),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("250 ok\r\n"), b("250 hi\r\n"), b("250 2.1.0 Ok\r\n"), b("550 5.1.1 <x@y>: Recipient address rejected\r\n")},
		wantUp:      "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\nEHLO c.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n",
		wantHandoff: "550 5.1.1 <x@y>: Recipient address rejected\r\n",
	},
	{
		name: "smtp none path without xclient",
		params: with(smtpParams(), func(p *LoginParams) {
			p.AuthNone = true
			p.XClient = false
			p.MailFrom = b("MAIL FROM:<a@b> SIZE=10")
			p.RcptTo = b("RCPT TO:<x@y>")
		}),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("250 2.1.0 Ok\r\n"), b("250-2.1.5 Ok\r\n250 2.1.5 really\r\n")},
		wantUp:      "HELO mx.example.test\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<x@y>\r\n",
		wantHandoff: "250-2.1.5 Ok\r\n250 2.1.5 really\r\n",
	},
	{
		name: "smtp none path, MAIL refused",
		params: with(smtpParams(), func(p *LoginParams) {
			p.AuthNone = true
			p.XClient = false
			p.PassErrorMessage = true
			p.MailFrom = b("MAIL FROM:<a@b>")
			p.RcptTo = b("RCPT TO:<x@y>")
		}),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("451 4.3.0 try later\r\n")},
		wantUp:  "HELO mx.example.test\r\nMAIL FROM:<a@b>\r\n",
		wantErr: true, wantLog: `upstream sent invalid response: "451 4.3.0 try later"`, wantLevel: "info", wantAction: ActionReading,
		wantReply: "451 4.3.0 try later\r\n",
	},
	{
		name:     "smtp xclient off: HELO only",
		params:   with(smtpParams(), func(p *LoginParams) { p.XClient = false }),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n")},
		wantUp: "HELO mx.example.test\r\n", wantHandoff: "",
	},
	{
		name:     "smtp EHLO refused with multi-line reply, pass_error_message on (as captured)",
		params:   with(smtpParams(), func(p *LoginParams) { p.PassErrorMessage = true }),
		greeting: b("220 up ESMTP\r\n"), replies: [][]byte{b("550-no\r\n550 really no\r\n")},
		wantUp: "EHLO mx.example.test\r\n", wantErr: true,
		wantLog: "upstream sent invalid response: \"550-no\r\n550 really no\"", wantLevel: "info", wantAction: ActionReading,
		wantReply: "550-no\r\n550 really no\r\n",
	},
	{
		name:     "smtp XCLIENT refused",
		params:   smtpParams(),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("550 5.7.0 not authorized\r\n")},
		wantUp:  "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
		wantErr: true, wantLog: `upstream sent invalid response: "550 5.7.0 not authorized"`, wantLevel: "error", wantAction: ActionReading,
	},
	{
		name:     "smtp greeting 554 refused",
		params:   with(smtpParams(), func(p *LoginParams) { p.PassErrorMessage = true }),
		greeting: b("554 5.7.1 go away\r\n"),
		wantErr:  true, wantLog: `upstream sent invalid response: "554 5.7.1 go away"`, wantLevel: "info", wantAction: ActionReading,
		wantReply: "554 5.7.1 go away\r\n",
	},
	{
		name:     "smtp unfinished multi-line greeting then silence: timeout while reading",
		params:   smtpParams(),
		greeting: b("220-up\r\n220-more\r\n"), deadline: 200 * time.Millisecond,
		wantErr: true, wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionReading,
	},
	{
		name:     "smtp no reply to the client HELO: timeout action (as captured)",
		params:   with(smtpParams(), func(p *LoginParams) { p.Helo = b("client.example") }),
		greeting: b("220 up\r\n"), replies: [][]byte{b("250 up\r\n"), b("250 ok\r\n"), hang}, deadline: 200 * time.Millisecond,
		wantUp:  "EHLO mx.example.test\r\nXCLIENT ADDR=127.0.0.1 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\nHELO client.example\r\n",
		wantErr: true, wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionSendCliHelo,
	},
	{
		name:     "smtp multi-line reply filling the buffer, then more data: close, nothing logged",
		params:   with(smtpParams(), func(p *LoginParams) { p.BufferSize = 16 }),
		greeting: b("220-abcdefghij\r\n220 more\r\n"),
		wantErr:  true, wantAction: ActionReading,
	},
}

func TestLogin(t *testing.T) {
	for _, tc := range loginCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLoginCase(t, tc)
		})
	}
}

// runLoginCase runs one login case against a scripted upstream.
func runLoginCase(t *testing.T, tc loginCase) {
	up := newFakeUpstream(t, tc.greeting, tc.replies...)
	conn, err := net.Dial("tcp", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	p := *tc.params
	dl := tc.deadline
	if dl == 0 {
		dl = 2 * time.Second
	}
	p.Deadline = time.Now().Add(dl)
	handoff, err := Login(conn, &p)
	conn.Close()
	got := up.received(time.Second)
	if string(got) != tc.wantUp {
		t.Errorf("upstream got\n%q\nwant\n%q", got, tc.wantUp)
	}
	if !tc.wantErr {
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if string(handoff) != tc.wantHandoff {
			t.Errorf("handoff %q, want %q", handoff, tc.wantHandoff)
		}
		return
	}
	var le *LoginError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T), want *LoginError", err, err)
	}
	if handoff != nil {
		t.Errorf("handoff %q on error", handoff)
	}
	// A level matters only with a log line.
	if le.Log != tc.wantLog || le.Log != "" && le.Level.String() != tc.wantLevel || le.Action != tc.wantAction {
		t.Errorf("LoginError{Log: %q, Level: %q, Action: %q}, want {%q, %q, %q}", le.Log, le.Level, le.Action, tc.wantLog, tc.wantLevel, tc.wantAction)
	}
	if string(le.Reply) != tc.wantReply || (tc.wantReply == "") != (le.Reply == nil) {
		t.Errorf("Reply %q, want %q", le.Reply, tc.wantReply)
	}
	if strings.Contains(le.Log, string(p.Pass)) && len(p.Pass) > 0 {
		t.Errorf("password in log %q", le.Log)
	}
	if strings.Contains(le.Error(), "secret") {
		t.Errorf("password in Error() %q", le.Error())
	}
}

func TestLoginClearsDeadline(t *testing.T) {
	up := newFakeUpstream(t, b("+OK\r\n"), b("+OK\r\n"), b("+OK go\r\n"), b("late\r\n"))
	conn, err := net.Dial("tcp", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := pop3Params()
	p.Deadline = time.Now().Add(100 * time.Millisecond)
	if _, err := Login(conn, p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := conn.Write(b("NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "late\r\n" {
		t.Fatalf("read after login: %q, %v", buf[:n], err)
	}
}

func TestDialErrors(t *testing.T) {
	// A port in our range with nothing listening.
	l := listenLocal(t)
	addr := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	tests := []struct {
		pp         int
		log, level string
		action     string
	}{
		{0, "recv() failed (111: Connection refused)", "error", ActionReading},
		{1, "send() failed (111: Connection refused)", "error", ActionSendProxyProt},
	}
	for _, tc := range tests {
		_, err := DialProxy(context.Background(), addr, tc.pp)
		var le *LoginError
		if !errors.As(err, &le) {
			t.Fatalf("pp=%d: %v, want *LoginError", tc.pp, err)
		}
		if le.Log != tc.log || le.Level.String() != tc.level || le.Action != tc.action {
			t.Errorf("pp=%d: {%q %q %q}, want {%q %q %q}", tc.pp, le.Log, le.Level, le.Action, tc.log, tc.level, tc.action)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := Dial(ctx, addr)
	var le *LoginError
	if !errors.As(err, &le) || le.Log != "upstream timed out (110: Connection timed out)" || le.Level != LevelInfo || le.Action != ActionConnecting {
		t.Errorf("expired context: %#v", err)
	}
	// A good dial.
	l2 := listenLocal(t)
	defer l2.Close()
	c, err := Dial(context.Background(), netip.MustParseAddrPort(l2.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestJudgeSMTPMultiline(t *testing.T) {
	tests := []struct {
		in   string
		want verdict
	}{
		{"250 ok\r\n", vOK},
		{"250-a\r\n", vMore},
		{"250-a\r\n250-b\r\n", vMore},
		{"250-a\r\n250 b\r\n", vOK},
		{"250-a\r\n250\r\n", vOK}, // last line of 3 characters: its 4th byte is CR
		{"250-a\r\n25\r\n", vMore},
		{"250-a\r\n550 b\r\n", vOK}, // only the first line's code counts
		{"550-a\r\n250 b\r\n", vInvalid},
		{"25", vMore},
		{"250", vMore},
		{"250 ", vMore},
	}
	for _, tc := range tests {
		v, _ := judge([]byte(tc.in), 4096, expSMTP250, nil)
		if v != tc.want {
			t.Errorf("judge(%q) = %v, want %v", tc.in, v, tc.want)
		}
	}
}

// FuzzJudge checks the reply reader never panics and keeps its invariants
// on arbitrary upstream bytes.
func FuzzJudge(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "* OK x\r\n", "+ \r\n", "* CAPABILITY\r\na2 OK\r\n", "* \r\n", "*  \r\n\r\n", "220-a\r\n220 b\r\n", "250-\r\n\r\n", "\r\n\r\n", "a2 O\r\n"} {
		for e := expPOP3OK; e <= expSMTPAny; e++ {
			f.Add([]byte(s), uint8(e), uint16(len(s)))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, e uint8, size uint16) {
		ex := expect(e % uint8(expSMTPAny+1))
		sz := int(size)%4096 + 1
		if len(data) > sz {
			data = data[:sz]
		}
		tag := []byte("a2 ")
		if e&0x80 != 0 {
			tag = []byte("\r\n") // not a valid tag, but must not crash
		}
		v, start := judge(data, sz, ex, tag)
		if start < 0 || start > len(data) {
			t.Fatalf("start %d out of range", start)
		}
		if v == vInvalid && (len(data) < 4 || !bytes.HasSuffix(data, []byte("\r\n")) || start > len(data)-2) {
			t.Fatalf("invalid verdict on %q (start %d)", data, start)
		}
		if v == vOK && !bytes.HasSuffix(data, []byte("\r\n")) {
			t.Fatalf("accepted %q without CRLF", data)
		}
		if v == vTooLong && len(data) < sz {
			t.Fatalf("too long with room left: %q", data)
		}
	})
}

// FuzzLogin runs the whole dialog against arbitrary upstream bytes.
func FuzzLogin(f *testing.F) {
	f.Add(uint8(0), []byte("+OK\r\n+OK\r\n+OK go\r\n"))
	f.Add(uint8(1), []byte("* OK\r\n+ OK\r\n+ OK\r\na2 OK\r\n"))
	f.Add(uint8(2), []byte("220 x\r\n250 x\r\n250 x\r\n"))
	f.Fuzz(func(t *testing.T, proto uint8, script []byte) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		go func() {
			defer c2.Close()
			go io_discard(c2)
			c2.Write(script)
		}()
		p := [...]*LoginParams{pop3Params(), imapParams(), smtpParams()}[proto%3]
		p.BufferSize = 64
		p.Deadline = time.Now().Add(50 * time.Millisecond)
		h, err := Login(c1, p)
		if err == nil && h == nil {
			t.Fatal("nil handoff without error")
		}
		var le *LoginError
		if err != nil && !errors.As(err, &le) {
			t.Fatalf("%T is not a *LoginError", err)
		}
		if le != nil && strings.Contains(le.Log, "secret") {
			t.Fatalf("password in log: %q", le.Log)
		}
	})
}

func io_discard(c net.Conn) {
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// TestLoginRejectEveryStep refuses each step of each dialog in turn, with
// proxy_pass_error_message off and on.
func TestLoginRejectEveryStep(t *testing.T) {
	type dialogScript struct {
		name     string
		params   func() *LoginParams
		greeting string
		replies  []string // good replies, one per command
		commands []string // what the upstream receives, one per step
		bad      string   // a refused reply for any step
	}
	smtpFull := func() *LoginParams {
		return with(smtpParams(), func(p *LoginParams) { p.SMTPAuth = true; p.Helo = b("c.example"); p.ESMTP = true })
	}
	smtpNone := func() *LoginParams {
		return with(smtpParams(), func(p *LoginParams) {
			p.AuthNone = true
			p.Login = nil
			p.Helo = b("c.example")
			p.MailFrom = b("MAIL FROM:<a@b>")
			p.RcptTo = b("RCPT TO:<x@y>")
		})
	}
	scripts := []dialogScript{
		{"pop3", pop3Params, "+OK g\r\n", []string{"+OK u\r\n", "+OK p\r\n"},
			[]string{"USER test@example.com\r\n", "PASS secret\r\n"}, "-ERR refused here\r\n"},
		{"imap", imapParams, "* OK g\r\n", []string{"+ OK\r\n", "+ OK\r\n", "a2 OK p\r\n"},
			[]string{"a2 LOGIN {16}\r\n", "test@example.com {6}\r\n", "secret\r\n"}, "a2 NO refused here\r\n"},
		{"smtp auth", smtpFull, "220 g\r\n", []string{"250 e\r\n", "250 x\r\n", "250 h\r\n", "235 a\r\n"},
			[]string{"EHLO mx.example.test\r\n", "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n", "EHLO c.example\r\n", "AUTH PLAIN AHRlc3RAZXhhbXBsZS5jb20Ac2VjcmV0\r\n"},
			"554-5.7.0 refused\r\n554 5.7.0 here\r\n"},
		{"smtp none", smtpNone, "220 g\r\n", []string{"250 e\r\n", "250 x\r\n", "250 h\r\n", "250 m\r\n", "250 r\r\n"},
			[]string{"EHLO mx.example.test\r\n", "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]\r\n", "HELO c.example\r\n", "MAIL FROM:<a@b>\r\n", "RCPT TO:<x@y>\r\n"},
			"554-5.7.0 refused\r\n554 5.7.0 here\r\n"},
	}
	for _, sc := range scripts {
		// Step 0 is the greeting; step k the reply to command k. The
		// reply to RCPT is never refused.
		steps := len(sc.replies)
		if sc.name == "smtp none" {
			steps--
		}
		for step := 0; step <= steps; step++ {
			for _, pem := range []bool{false, true} {
				name := fmt.Sprintf("%s/step%d/pass_error_message=%v", sc.name, step, pem)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					greeting := sc.greeting
					var replies [][]byte
					for _, r := range sc.replies {
						replies = append(replies, b(r))
					}
					if step == 0 {
						greeting = sc.bad
					} else {
						replies[step-1] = b(sc.bad)
					}
					up := newFakeUpstream(t, b(greeting), replies...)
					conn, err := net.Dial("tcp", up.addr())
					if err != nil {
						t.Fatal(err)
					}
					p := sc.params()
					p.PassErrorMessage = pem
					p.Deadline = time.Now().Add(2 * time.Second)
					_, err = Login(conn, p)
					conn.Close()
					if got, want := string(up.received(time.Second)), strings.Join(sc.commands[:step], ""); got != want {
						t.Errorf("upstream got %q, want %q", got, want)
					}
					var le *LoginError
					if !errors.As(err, &le) {
						t.Fatalf("err %v", err)
					}
					logged := strings.TrimSuffix(sc.bad, "\r\n")
					if sc.name == "imap" && step == 3 {
						logged = strings.TrimPrefix(logged, "a2 ") // after the matching tag
					}
					wantLog := `upstream sent invalid response: "` + logged + `"`
					wantLevel, wantReply := "error", ""
					if pem {
						wantLevel, wantReply = "info", sc.bad
					}
					if le.Log != wantLog || le.Level.String() != wantLevel || le.Action != ActionReading || string(le.Reply) != wantReply {
						t.Errorf("got {%q %q %q %q}, want {%q %q %q %q}", le.Log, le.Level, le.Action, le.Reply, wantLog, wantLevel, ActionReading, wantReply)
					}
				})
			}
		}
	}
}

func TestDialErrorTexts(t *testing.T) {
	addr := netip.MustParseAddrPort("[2001:db8::1]:143")
	sys := func(e syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", e)}
	}
	tests := []struct {
		err                error
		pp                 int
		log, level, action string
	}{
		{sys(syscall.ECONNREFUSED), 0, "recv() failed (111: Connection refused)", "error", ActionReading},
		{sys(syscall.EHOSTUNREACH), 0, "recv() failed (113: No route to host)", "error", ActionReading},
		{sys(syscall.ECONNREFUSED), 2, "send() failed (111: Connection refused)", "error", ActionSendProxyProt},
		{sys(syscall.ENETUNREACH), 0, "connect() to 2001:db8::1:143 failed (101: Network is unreachable)", "error", ActionConnecting},
		{sys(syscall.EADDRNOTAVAIL), 0, "connect() to 2001:db8::1:143 failed (99: Cannot assign requested address)", "crit", ActionConnecting},
		{context.DeadlineExceeded, 0, "upstream timed out (110: Connection timed out)", "info", ActionConnecting},
	}
	for _, tc := range tests {
		le := dialError(context.Background(), addr, tc.pp, tc.err)
		if le.Log != tc.log || le.Level.String() != tc.level || le.Action != tc.action {
			t.Errorf("%v: {%q %q %q}, want {%q %q %q}", tc.err, le.Log, le.Level, le.Action, tc.log, tc.level, tc.action)
		}
	}
}
