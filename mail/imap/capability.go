package imap

import (
	"strings"
	"sync"

	"mailgate/confparse"
)

// capabilities are the three CAPABILITY untagged lines nginx builds for a
// server at configuration time (spec section 3.5).
type capabilities struct {
	plain        []byte // no STARTTLS offered, or TLS already up
	starttls     []byte // starttls on, before TLS
	starttlsOnly []byte // starttls only, before TLS: no AUTH=, LOGINDISABLED
}

var defaultCapabilities = []string{"IMAP4", "IMAP4rev1", "UIDPLUS"}

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
	items := c.Capabilities
	if len(items) == 0 {
		items = defaultCapabilities
	}
	var b strings.Builder
	b.WriteString("* CAPABILITY")
	for _, it := range items {
		b.WriteByte(' ')
		b.WriteString(it)
	}
	base := b.String()
	for _, a := range authNames {
		if c.Auth&a.m != 0 {
			b.WriteByte(' ')
			b.WriteString(a.name)
		}
	}
	withAuth := b.String()
	return &capabilities{
		plain:        []byte(withAuth + "\r\n"),
		starttls:     []byte(withAuth + " STARTTLS\r\n"),
		starttlsOnly: []byte(base + " STARTTLS LOGINDISABLED\r\n"),
	}
}

// capCache holds one rendering per distinct (imap_capabilities, imap_auth)
// pair, made on first use. It is keyed by content, not by *Server, so
// reloads that build new Server values do not grow it.
var capCache sync.Map // string -> *capabilities

func capabilitiesFor(s *confparse.Server) *capabilities {
	c := confparse.IMAPConf{Auth: confparse.AuthPlain}
	if s != nil {
		c = s.IMAP
	}
	key := string([]byte{byte(c.Auth)}) + strings.Join(c.Capabilities, "\x00")
	if v, ok := capCache.Load(key); ok {
		return v.(*capabilities)
	}
	v, _ := capCache.LoadOrStore(key, buildCapabilities(&c))
	return v.(*capabilities)
}
