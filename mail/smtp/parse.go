package smtp

// The SMTP command parser. It follows nginx's rules (docs/smtp.md, "Parser"):
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

// verb is a known SMTP command word.
type verb uint8

// The command words nginx's SMTP parser knows. DATA is not one of them.
const (
	// verbContinue is a SASL continuation line; as lookupVerb's answer,
	// a word that is no command.
	verbContinue verb = iota
	verbHELO
	verbEHLO
	verbQUIT
	verbAUTH
	verbNOOP
	verbMAIL
	verbRSET
	verbRCPT
	verbVRFY
	verbEXPN
	verbHELP
	verbSTARTTLS
)

var verbNames = [...]string{
	verbContinue: "", verbHELO: "HELO", verbEHLO: "EHLO", verbQUIT: "QUIT",
	verbAUTH: "AUTH", verbNOOP: "NOOP", verbMAIL: "MAIL", verbRSET: "RSET",
	verbRCPT: "RCPT", verbVRFY: "VRFY", verbEXPN: "EXPN", verbHELP: "HELP",
	verbSTARTTLS: "STARTTLS",
}

func (v verb) String() string {
	if int(v) < len(verbNames) {
		return verbNames[v]
	}
	return "?"
}

// maxArgs is nginx's SMTP argument limit.
const maxArgs = 11

// command is one parsed SMTP line. Its byte slices are copies, so it stays
// valid after the engine reuses its buffer.
type command struct {
	verb verb
	Args [][]byte
	// Line is the command as typed, from the command word through the end
	// of the last argument (no trailing spaces, no CRLF). MAIL and RCPT
	// store it for the `smtp_auth none` path.
	Line []byte
}

// parseLine parses one line at the start of buf. cont selects the SASL
// continuation mode. It returns the command and the bytes used, or
// mail.ErrNeedMore, or mail.ErrInvalid with n = bytes through the LF.
func parseLine(buf []byte, cont bool) (*command, int, error) {
	const (
		swCommand = iota
		swSpacesBeforeArgument
		swArgument
		swAlmostDone
	)

	cmd := &command{}
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
				cmd.verb = lookupVerb(buf[:p])
				if cmd.verb == verbContinue {
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
func (c *command) clone() *command {
	out := &command{verb: c.verb}
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
func skipInvalid(buf []byte, p int) (*command, int, error) {
	if i := bytes.IndexByte(buf[p:], '\n'); i >= 0 {
		return nil, p + i + 1, mail.ErrInvalid
	}
	return nil, 0, mail.ErrNeedMore
}

func isLetter(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// lookupVerb matches a command word in any case; verbContinue (the zero
// verb) if it is none.
func lookupVerb(w []byte) verb {
	if len(w) != 4 && len(w) != 8 {
		return verbContinue
	}
	var up [8]byte
	for i, c := range w {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	word := string(up[:len(w)])
	for v := verbHELO; v <= verbSTARTTLS; v++ {
		if verbNames[v] == word {
			return v
		}
	}
	return verbContinue
}
