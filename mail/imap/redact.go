package imap

import "bytes"

// RedactLog implements mail.LogRedactor: the command buffer as it may
// appear in the "client sent too long command" log line. nginx logs the
// buffer as it is; mailgate keeps credentials out of its logs. The buffer
// may hold earlier pipelined commands and, during AUTHENTICATE, the whole
// exchange (see KeepBuffer). Redacted are: the arguments of LOGIN, the
// arguments after the mechanism of AUTHENTICATE, the lines of a SASL
// exchange (every line after an AUTHENTICATE that is not a plain command),
// and literal data inside those. Commands are found the way nginx reads
// them, literals included, so a literal holding CR LF cannot leak.
func (h *handler) RedactLog(buf []byte) []byte {
	out := make([]byte, 0, len(buf))
	sasl := false
	for len(buf) > 0 {
		n := commandEnd(buf)
		cmd := buf[:n]
		buf = buf[n:]
		unfinished := len(buf) == 0 && cmd[len(cmd)-1] != '\n'
		tagLen, verbStart, verbEnd, restStart := splitCommand(cmd)
		v := verbNone
		if tagLen > 0 {
			v = lookupVerb(cmd[verbStart:verbEnd])
		}
		switch {
		case v == verbLogin:
			out = appendRedacted(out, cmd, restStart)
			sasl = false
		case v == verbAuthenticate:
			keep := restStart
			if keep < len(cmd) {
				if i := bytes.IndexAny(cmd[keep:], " \r\n"); i >= 0 {
					keep += i
				} else {
					keep = len(cmd)
				}
			}
			out = appendRedacted(out, cmd, keep)
			sasl = true
		case v != verbNone:
			out = append(out, cmd...)
			sasl = false
		case sasl || (unfinished && h.cont):
			out = appendRedacted(out, cmd, 0)
		default:
			out = append(out, cmd...)
		}
	}
	return out
}

// appendRedacted appends cmd[:keep] and "***" for the rest (if there is
// any besides the line end), then the line end.
func appendRedacted(out, cmd []byte, keep int) []byte {
	end := len(cmd)
	for end > 0 && (cmd[end-1] == '\n' || cmd[end-1] == '\r') {
		end--
	}
	if keep >= end {
		return append(out, cmd...)
	}
	out = append(out, cmd[:keep]...)
	out = append(out, "***"...)
	return append(out, cmd[end:]...)
}

// splitCommand finds "tag SP+ verb SP* rest" in cmd; tagLen is 0 when
// there is no tag followed by a space.
func splitCommand(cmd []byte) (tagLen, verbStart, verbEnd, restStart int) {
	sp := bytes.IndexByte(cmd, ' ')
	if sp < 0 || bytes.IndexAny(cmd[:sp], "\r\n") >= 0 {
		return 0, 0, 0, 0
	}
	i := sp
	for i < len(cmd) && cmd[i] == ' ' {
		i++
	}
	verbStart = i
	for i < len(cmd) && isLetter(cmd[i]) {
		i++
	}
	verbEnd = i
	for i < len(cmd) && cmd[i] == ' ' {
		i++
	}
	return sp + 1, verbStart, verbEnd, i
}

// commandEnd is the length of the first command in buf: through the LF
// that ends it, stepping over literal data ("{n}" or "{n+}" at a line end
// announces n bytes, and {0} one, as nginx reads them). It is len(buf)
// when the command is unfinished.
func commandEnd(buf []byte) int {
	i := 0
	for i < len(buf) {
		lf := bytes.IndexByte(buf[i:], '\n')
		if lf < 0 {
			return len(buf)
		}
		lf += i
		n, ok := literalBefore(buf[i:lf])
		if !ok {
			return lf + 1
		}
		if n == 0 {
			n = 1
		}
		if uint64(len(buf)-(lf+1)) < n {
			return len(buf)
		}
		i = lf + 1 + int(n)
	}
	return len(buf)
}

// literalBefore reports a literal announcement ending line (CR allowed).
func literalBefore(line []byte) (uint64, bool) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("+"))
	open := bytes.LastIndexByte(line, '{')
	if open < 0 || open == len(line)-1 {
		return 0, false
	}
	var n uint64
	for _, c := range line[open+1:] {
		if c < '0' || c > '9' || n > (^uint64(0)-9)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
