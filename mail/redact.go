package mail

import (
	"bytes"
	"unicode/utf8"
)

// LineKind says how a line-based protocol's command line is logged in the
// "client sent too long command" line, by its first word.
type LineKind int

const (
	// LineUnknown: not a command; a SASL response while an AUTH exchange
	// is open, else logged as it is.
	LineUnknown LineKind = iota
	// LinePlain: a command without secrets, logged as it is.
	LinePlain
	// LineSecret: a command whose arguments are a secret (POP3 PASS):
	// only the command word is kept.
	LineSecret
	// LineAuth: AUTH: the command word and the mechanism are kept, an
	// initial response is hidden, and every non-command line after it, up
	// to the next command, is taken for an exchange response and hidden.
	LineAuth
)

// RedactLines is the LogRedactor rule for POP3 and SMTP: buf as it may be
// logged, with every secret replaced by "***". classify names a line's
// kind by its first word; inExchange says the handler is waiting for a SASL
// response, which makes an unfinished last line secret. IMAP, with tags and
// literals, has its own rule (mail/imap).
func RedactLines(buf []byte, classify func(word []byte) LineKind, inExchange bool) []byte {
	out := make([]byte, 0, len(buf))
	exchange := false
	for len(buf) > 0 {
		line := buf
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line = buf[:i+1]
		}
		buf = buf[len(line):]
		unfinished := len(buf) == 0 && line[len(line)-1] != '\n'
		body := bytes.TrimRight(line, "\r\n")
		word, rest := splitWord(body)
		switch classify(word) {
		case LinePlain:
			out = append(out, line...)
			exchange = false
		case LineSecret:
			out = redactFrom(out, line, len(body)-len(rest))
			exchange = false
		case LineAuth:
			_, after := splitWord(rest)
			out = redactFrom(out, line, len(body)-len(after))
			exchange = true
		default:
			if exchange || (unfinished && inExchange) || saslLike(body) {
				out = redactFrom(out, line, 0)
			} else {
				out = append(out, line...)
			}
		}
	}
	return out
}

// saslLike reports whether a line that is not a command looks like a
// base64 SASL response: a token of base64 symbols whose decoding (of
// its whole 4-symbol groups, so a cut-off response counts too) is text or
// holds a NUL, as credentials do; what follows the symbols (padding, a
// stray CR, a NUL, more words) does not matter. Such a line is hidden even
// when no AUTH precedes it in the buffer: the AUTH may have come in an
// earlier buffer or been refused, and the client sent its credentials
// anyway.
func saslLike(body []byte) bool {
	// The response is the run of base64 symbols and padding at the
	// start; a stray CR, a NUL or a space may follow it.
	n := 0
	for n < len(body) && isBase64Symbol(body[n]) {
		n++
	}
	pad := n
	for pad < len(body) && body[pad] == '=' {
		pad++
	}
	// Eight symbols with the padding at least: the shortest PLAIN
	// response ("\0u\0p"), and no four-letter command word.
	if pad < 8 {
		return false
	}
	dec, ok := DecodeBase64(body[:n-n%4])
	if !ok || len(dec) == 0 || !utf8.Valid(dec) {
		return false
	}
	for _, c := range dec {
		if c != 0 && c != '\t' && (c < 0x20 || c == 0x7f) {
			return false
		}
	}
	return true
}

// splitWord returns the first space-separated word of b (leading spaces
// skipped) and what follows it, from the separating space on.
func splitWord(b []byte) (word, rest []byte) {
	b = bytes.TrimLeft(b, " ")
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i], b[i:]
	}
	return b, nil
}

// redactFrom appends line with everything from keep to its line end
// replaced by "***"; a line with nothing there is appended as it is.
func redactFrom(out, line []byte, keep int) []byte {
	body := bytes.TrimRight(line, "\r\n")
	for keep < len(body) && body[keep] == ' ' {
		keep++
	}
	if keep >= len(body) {
		return append(out, line...)
	}
	out = append(out, body[:keep]...)
	out = append(out, "***"...)
	return append(out, line[len(body):]...)
}
