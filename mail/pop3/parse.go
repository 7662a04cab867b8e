package pop3

import "mailgate/mail"

// verb is a POP3 command nginx knows.
type verb int

const (
	verbNone verb = iota
	verbUSER
	verbPASS
	verbAPOP
	verbQUIT
	verbCAPA
	verbAUTH
	verbNOOP
	verbSTLS
	// verbContinue is a SASL continuation line.
	verbContinue
)

var verbs = map[string]verb{
	"USER": verbUSER, "PASS": verbPASS, "APOP": verbAPOP, "QUIT": verbQUIT,
	"CAPA": verbCAPA, "AUTH": verbAUTH, "NOOP": verbNOOP, "STLS": verbSTLS,
}

// command is one parsed line. args point into the engine's buffer; the
// handler copies what it keeps.
type command struct {
	verb verb
	args [][]byte
}

const maxArgs = 3

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// parse reads one command from buf with nginx's POP3 grammar: a 4-letter
// command (any case) ended by SP, CR or LF; arguments separated by spaces
// (USER and PASS keep inner and trailing spaces in their one argument), at
// most 3; CRLF or a bare LF ends the line, a CR not followed by LF is
// invalid. cont parses a SASL continuation line: the whole line is
// arguments. An invalid line is skipped through its LF; until the LF has
// arrived the result is ErrNeedMore.
func parse(buf []byte, cont bool) (*command, int, error) {
	const (
		sStart = iota
		sCommand
		sSpaces
		sArg
		sAlmostDone
	)
	cmd := &command{}
	st := sStart
	argStart := 0
	if cont {
		st = sArg
		cmd.verb = verbContinue
	}
	i := 0
	for ; i < len(buf); i++ {
		ch := buf[i]
		switch st {
		case sStart:
			st = sCommand
			fallthrough
		case sCommand:
			if ch == ' ' || ch == '\r' || ch == '\n' {
				if i != 4 {
					return skipInvalid(buf, i)
				}
				w := string([]byte{upper(buf[0]), upper(buf[1]), upper(buf[2]), upper(buf[3])})
				v, ok := verbs[w]
				if !ok {
					return skipInvalid(buf, i)
				}
				cmd.verb = v
				switch ch {
				case ' ':
					st = sSpaces
				case '\r':
					st = sAlmostDone
				case '\n':
					return cmd, i + 1, nil
				}
				continue
			}
			if !isLetter(ch) {
				return skipInvalid(buf, i)
			}
		case sSpaces:
			switch ch {
			case ' ':
			case '\r':
				st = sAlmostDone
			case '\n':
				return cmd, i + 1, nil
			default:
				if len(cmd.args) >= maxArgs {
					return skipInvalid(buf, i)
				}
				st = sArg
				argStart = i
			}
		case sArg:
			switch ch {
			case ' ':
				if cmd.verb == verbUSER || cmd.verb == verbPASS {
					continue
				}
				cmd.args = append(cmd.args, buf[argStart:i])
				st = sSpaces
			case '\r':
				cmd.args = append(cmd.args, buf[argStart:i])
				st = sAlmostDone
			case '\n':
				cmd.args = append(cmd.args, buf[argStart:i])
				return cmd, i + 1, nil
			}
		case sAlmostDone:
			if ch == '\n' {
				return cmd, i + 1, nil
			}
			return skipInvalid(buf, i)
		}
	}
	return nil, 0, mail.ErrNeedMore
}

// skipInvalid consumes an invalid line through its LF (from i on).
func skipInvalid(buf []byte, i int) (*command, int, error) {
	for ; i < len(buf); i++ {
		if buf[i] == '\n' {
			return nil, i + 1, mail.ErrInvalid
		}
	}
	return nil, 0, mail.ErrNeedMore
}
