package confparse

// DirectiveInfo describes one directive mailgate knows, for documentation
// and `mailgate check --effective` (which shows defaults for values that
// have no entry in Server.Sources).
type DirectiveInfo struct {
	Name     string
	Module   string   // e.g. "core", "events", "mail_core", "mail_ssl"
	Contexts []string // "main", "events", "mail", "server", or "any"
	Default  string   // nginx's default as written in a config ("" if none)
	Merge    string   // "scalar", "bitmask", "array", "special" or "" (main context)
	// MailgateOnly: nginx does not know this directive (a mailgate
	// extension, off unless written).
	MailgateOnly bool
}

// Directives lists the directive table in nginx's module order.
func Directives() []DirectiveInfo {
	out := make([]DirectiveInfo, 0, len(table))
	for _, d := range table {
		info := DirectiveInfo{Name: d.name, Module: d.module, Default: d.def, MailgateOnly: d.mailgateOnly}
		switch d.merge {
		case mergeScalar:
			info.Merge = "scalar"
		case mergeBitmask:
			info.Merge = "bitmask"
		case mergeArray:
			info.Merge = "array"
		case mergeSpecial:
			info.Merge = "special"
		}
		if d.ctx&ctxAny == ctxAny {
			info.Contexts = []string{"any"}
		} else {
			for _, c := range []struct {
				m    ctxMask
				name string
			}{{ctxMain, "main"}, {ctxEvents, "events"}, {ctxMail, "mail"}, {ctxServer, "server"}} {
				if d.ctx&c.m != 0 {
					info.Contexts = append(info.Contexts, c.name)
				}
			}
		}
		out = append(out, info)
	}
	return out
}
