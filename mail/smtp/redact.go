package smtp

import "mailgate/mail"

// RedactLog implements mail.LogRedactor: nginx logs the command buffer as
// it is in "client sent too long command"; mailgate hides an AUTH initial
// response and the SASL responses after it (see mail.RedactLines).
func (h *handler) RedactLog(buf []byte) []byte {
	return mail.RedactLines(buf, lineKind, h.state != stateStart)
}

var _ mail.LogRedactor = (*handler)(nil)

// lineKind classifies an SMTP line for RedactLog by its command word.
func lineKind(word []byte) mail.LineKind {
	switch lookupVerb(word) {
	case verbAUTH:
		return mail.LineAuth
	case verbContinue:
		return mail.LineUnknown
	}
	return mail.LinePlain
}
