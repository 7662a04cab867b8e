package proxy

import (
	"strings"
	"testing"
)

func idParams() *LoginParams {
	return with(imapParams(), func(p *LoginParams) { p.IMAPID = b(`("name" "x" "x-originating-ip" "192.0.2.1")`) })
}

const idLine = `mgid1 ID ("name" "x" "x-originating-ip" "192.0.2.1")` + "\r\n"
const loginLines = "a2 LOGIN {16}\r\ntest@example.com {6}\r\nsecret\r\n"

// The ID step of imap_forward_id (login_id.go): its replies, good and bad.
func TestLoginIMAPID(t *testing.T) {
	for _, tc := range []loginCase{
		{name: "ID OK, then LOGIN", params: idParams(), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("* ID (\"name\" \"Dovecot\")\r\nmgid1 OK ID completed.\r\n"), b("+ OK\r\n"), b("+ OK\r\n"), b("a2 OK in\r\n")},
			wantUp:  idLine + loginLines, wantHandoff: "a2 OK in\r\n"},
		{name: "an unfinished tagged line is waited for", params: idParams(), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("* ID NIL\r\n* OK [ALERT] two untagged\r\nmgid1 O")},
			wantUp:  idLine, wantErr: true, deadline: 300e6,
			wantLog: "upstream timed out (110: Connection timed out)", wantLevel: "info", wantAction: ActionReading},
		{name: "ID BAD does not stop the login", params: idParams(), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("mgid1 BAD Unknown command\r\n"), b("+ OK\r\n"), b("+ OK\r\n"), b("a2 OK in\r\n")},
			wantUp:  idLine + loginLines, wantHandoff: "a2 OK in\r\n"},
		{name: "ID NO does not stop the login", params: idParams(), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("mgid1 NO not now\r\n"), b("+ OK\r\n"), b("+ OK\r\n"), b("a2 NO [AUTHENTICATIONFAILED] bad\r\n")},
			wantUp:  idLine + loginLines, wantErr: true,
			wantLog: `upstream sent invalid response: "NO [AUTHENTICATIONFAILED] bad"`, wantLevel: "error", wantAction: ActionReading},
		{name: "a foreign tagged line is invalid", params: idParams(), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("x1 OK what\r\n")},
			wantUp:  idLine, wantErr: true,
			wantLog: `upstream sent invalid response: "x1 OK what"`, wantLevel: "error", wantAction: ActionReading},
		{name: "close after ID", params: idParams(), greeting: b("* OK hi\r\n"),
			replies: [][]byte{hangup}, wantUp: idLine, wantErr: true, wantAction: ActionReading},
		{name: "too long", params: with(idParams(), func(p *LoginParams) { p.BufferSize = 64 }), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("* ID (" + strings.Repeat("x", 100) + ")\r\n")},
			wantUp:  idLine, wantErr: true,
			wantLog: `upstream sent too long response line: "* ID (` + strings.Repeat("x", 57) + `"`, wantLevel: "error", wantAction: ActionReading},
		{name: "client tag mgid1", params: with(idParams(), func(p *LoginParams) { p.Tag = b("mgid1 ") }), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("mgid2 OK\r\n"), b("+ OK\r\n"), b("+ OK\r\n"), b("mgid1 OK in\r\n")},
			wantUp:  strings.Replace(idLine, "mgid1", "mgid2", 1) + strings.Replace(loginLines, "a2", "mgid1", 1), wantHandoff: "mgid1 OK in\r\n"},
		{name: "no ID without IMAPID", params: imapParams(), greeting: b("* OK hi\r\n"),
			replies: [][]byte{b("+ OK\r\n"), b("+ OK\r\n"), b("a2 OK in\r\n")},
			wantUp:  loginLines, wantHandoff: "a2 OK in\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) { runLoginCase(t, tc) })
	}
}
