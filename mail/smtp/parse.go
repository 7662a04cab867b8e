package smtp

// The SMTP command parser. It follows nginx's rules (spec §1.1, §4.2):
//
//   - a command word of exactly 4 ASCII letters, or 8 for STARTTLS, in any
//     case, ended by SP, CR or LF;
//   - up to 11 space-separated arguments (runs of spaces separate, trailing
//     spaces are dropped);
//   - the line ends in CRLF or a bare LF; a CR not followed by LF makes the
//     line invalid;
//   - an invalid line is skipped through its LF and answered once.
//
// After an AUTH command that asked for more (a SASL continuation), the
// next line is not a command: it is read straight as arguments, the first
// of which is the base64 response.
//
// Parse is stateless: it looks at the unconsumed bytes from their start
// each time, so a command split over several reads is simply parsed again
// once more bytes have arrived.

import (
	"bytes"

	"mailgate/mail"
)

// Verb is a known SMTP command word.
type Verb uint8

// The command words nginx's SMTP parser knows. DATA is not one of them.
const (
	VerbNone Verb = iota // a SASL continuation line
	VerbHELO
	VerbEHLO
	VerbQUIT
	VerbAUTH
	VerbNOOP
	VerbMAIL
	VerbRSET
	VerbRCPT
	VerbVRFY
	VerbEXPN
	VerbHELP
	VerbSTARTTLS
)

var verbNames = [...]string{
	VerbNone: "", VerbHELO: "HELO", VerbEHLO: "EHLO", VerbQUIT: "QUIT",
	VerbAUTH: "AUTH", VerbNOOP: "NOOP", VerbMAIL: "MAIL", VerbRSET: "RSET",
	VerbRCPT: "RCPT", VerbVRFY: "VRFY", VerbEXPN: "EXPN", VerbHELP: "HELP",
	VerbSTARTTLS: "STARTTLS",
}

func (v Verb) String() string {
	if int(v) < len(verbNames) {
		return verbNames[v]
	}
	return "?"
}

// maxArgs is nginx's SMTP argument limit.
const maxArgs = 11

// Command is one parsed SMTP line. Its byte slices are copies, so it stays
// valid after the engine reuses its buffer.
type Command struct {
	Verb Verb
	Args [][]byte
	// Line is the command as typed, from the command word through the end
	// of the last argument (no trailing spaces, no CRLF). MAIL and RCPT
	// store it for the `smtp_auth none` path.
	Line []byte
}

// parseLine parses one line at the start of buf. cont selects the SASL
// continuation mode. It returns the command and the bytes used, or
// mail.ErrNeedMore, or mail.ErrInvalid with n = bytes through the LF.
func parseLine(buf []byte, cont bool) (*Command, int, error) {
	const (
		swCommand = iota
		swSpacesBeforeArgument
		swArgument
		swAlmostDone
	)

	cmd := &Command{}
	state := swCommand
	argStart := 0
	if cont {
		state = swArgument
	}

	for p := 0; p < len(buf); p++ {
		ch := buf[p]
		switch state {
		case swCommand:
			if ch == ' ' || ch == '\r' || ch == '\n' {
				cmd.Verb = lookupVerb(buf[:p])
				if cmd.Verb == VerbNone {
					return skipInvalid(buf, p)
				}
				cmd.Line = buf[:p]
				switch ch {
				case ' ':
					state = swSpacesBeforeArgument
				case '\r':
					state = swAlmostDone
				case '\n':
					return cmd.clone(), p + 1, nil
				}
				continue
			}
			if !isLetter(ch) {
				return skipInvalid(buf, p)
			}

		case swSpacesBeforeArgument:
			switch ch {
			case ' ':
			case '\r':
				state = swAlmostDone
			case '\n':
				return cmd.clone(), p + 1, nil
			default:
				if len(cmd.Args) >= maxArgs {
					return skipInvalid(buf, p)
				}
				state = swArgument
				argStart = p
			}

		case swArgument:
			switch ch {
			case ' ', '\r', '\n':
				cmd.Args = append(cmd.Args, buf[argStart:p])
				if !cont {
					cmd.Line = buf[:p]
				}
				switch ch {
				case ' ':
					state = swSpacesBeforeArgument
				case '\r':
					state = swAlmostDone
				case '\n':
					return cmd.clone(), p + 1, nil
				}
			}

		case swAlmostDone:
			if ch == '\n' {
				return cmd.clone(), p + 1, nil
			}
			return skipInvalid(buf, p)
		}
	}
	return nil, 0, mail.ErrNeedMore
}

// clone copies the command out of the engine's buffer.
func (c *Command) clone() *Command {
	out := &Command{Verb: c.Verb}
	if c.Line != nil {
		out.Line = bytes.Clone(c.Line)
	}
	if len(c.Args) > 0 {
		out.Args = make([][]byte, len(c.Args))
		for i, a := range c.Args {
			out.Args[i] = append([]byte{}, a...)
		}
	}
	return out
}

// skipInvalid skips an invalid line through its LF, or asks for more.
func skipInvalid(buf []byte, p int) (*Command, int, error) {
	if i := bytes.IndexByte(buf[p:], '\n'); i >= 0 {
		return nil, p + i + 1, mail.ErrInvalid
	}
	return nil, 0, mail.ErrNeedMore
}

func isLetter(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// lookupVerb matches a command word in any case; VerbNone if unknown.
func lookupVerb(w []byte) Verb {
	if len(w) != 4 && len(w) != 8 {
		return VerbNone
	}
	var up [8]byte
	for i, c := range w {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	word := string(up[:len(w)])
	for v := VerbHELO; v <= VerbSTARTTLS; v++ {
		if verbNames[v] == word {
			return v
		}
	}
	return VerbNone
}
