package imap

import (
	"strings"

	"mailgate/confparse"
	"mailgate/mail"
)

// capabilities are the three CAPABILITY untagged lines nginx builds for a
// server at configuration time (docs/imap.md).
type capabilities struct {
	plain        []byte // no STARTTLS offered, or TLS already up
	starttls     []byte // starttls on, before TLS
	starttlsOnly []byte // starttls only, before TLS: no AUTH=, LOGINDISABLED
	idReply      []byte // mailgate-only: "* ID ...", the answer to ID (id.go)
}

// authNames are the AUTH= items in nginx's order, by imap_auth bit.
var authNames = []struct {
	m    confparse.AuthMethods
	name string
}{
	{confparse.AuthPlain, "AUTH=PLAIN"},
	{confparse.AuthLogin, "AUTH=LOGIN"},
	{confparse.AuthCRAMMD5, "AUTH=CRAM-MD5"},
	{confparse.AuthExternal, "AUTH=EXTERNAL"},
}

func buildCapabilities(c *confparse.IMAPConf) *capabilities {
	// confparse fills in imap_capabilities' default.
	items := c.Capabilities
	var b strings.Builder
	b.WriteString("* CAPABILITY")
	hasID := false
	for _, it := range items {
		b.WriteByte(' ')
		b.WriteString(it)
		hasID = hasID || strings.EqualFold(it, "ID")
	}
	if c.ID && !hasID {
		b.WriteString(" ID") // mailgate-only: imap_id on
	}
	base := b.String()
	for _, a := range authNames {
		if c.Auth&a.m != 0 {
			b.WriteByte(' ')
			b.WriteString(a.name)
		}
	}
	// mailgate-only mechanisms, after nginx's own (docs/oauth.md).
	for _, name := range mail.MailgateMechanisms(c.Auth) {
		b.WriteString(" AUTH=")
		b.WriteString(name)
	}
	withAuth := b.String()
	return &capabilities{
		plain:        []byte(withAuth + "\r\n"),
		starttls:     []byte(withAuth + " STARTTLS\r\n"),
		starttlsOnly: []byte(base + " STARTTLS LOGINDISABLED\r\n"),
		idReply:      buildIDReply(c.IDFields),
	}
}

// capabilitiesFor renders a server's CAPABILITY lines (nil: the defaults).
func capabilitiesFor(s *confparse.Server) *capabilities {
	c := confparse.IMAPConf{Auth: confparse.AuthPlain}
	if s != nil {
		c = s.IMAP
	}
	return buildCapabilities(&c)
}
