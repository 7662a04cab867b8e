package imap

import "bytes"

// The IMAP command parser. It follows nginx's rules for the auth state
// (spec section 3.2), quirks included:
//
//   - tag: 1-32 bytes of A-Z a-z 0-9 - . _ ended by SP; the reply tag is the
//     tag with that space;
//   - verb: letters only, any case, one of the six nginx knows;
//   - at most three arguments: atoms (any bytes but SP/CR/LF), quoted
//     strings (backslash escapes, spaces kept, an unterminated quote ends
//     at CR/LF and leaves the "quoted" flag set for the next commands),
//     synchronizing literals {n} (answered "+ OK") and non-synchronizing
//     literals {n+};
//   - {0} takes one byte of the next line as a one-byte literal;
//   - after a literal only SP, CR or LF may follow (newer nginx; 1.22.1
//     skipped any byte there);
//   - an invalid command is skipped through its LF; if that line ends in
//     "+}" the connection is closed after the reply, so the literal's bytes
//     are never read as commands.
//
// The parser never writes into the buffer it is given: the engine may hand
// it the same bytes again once more input has arrived, and every pass must
// see the same thing.

type verb int

const (
	verbNone verb = iota
	verbNoop
	verbLogin
	verbLogout
	verbStartTLS
	verbCapability
	verbAuthenticate
	verbContinue // a line of a SASL exchange
)

var verbs = [...]struct {
	name string
	v    verb
}{
	{"NOOP", verbNoop},
	{"LOGIN", verbLogin},
	{"LOGOUT", verbLogout},
	{"STARTTLS", verbStartTLS},
	{"CAPABILITY", verbCapability},
	{"AUTHENTICATE", verbAuthenticate},
}

func (v verb) String() string {
	for _, e := range verbs {
		if e.v == v {
			return e.name
		}
	}
	if v == verbContinue {
		return "continuation"
	}
	return "none"
}

func lookupVerb(w []byte) verb {
	for _, e := range verbs {
		if len(w) == len(e.name) && bytes.EqualFold(w, []byte(e.name)) {
			return e.v
		}
	}
	return verbNone
}

// command is one parsed IMAP command (or SASL continuation line). Args
// point into the engine's buffer or into fresh memory for unescaped quoted
// strings; Exec copies what it keeps.
type command struct {
	verb verb
	args [][]byte
}

const (
	maxTag  = 32
	maxArgs = 3
)

type pstate int

const (
	psTag pstate = iota
	psSpacesBeforeVerb
	psVerb
	psSpacesBeforeArg
	psArg
	psBackslash
	psLiteralLen
	psLiteralPlus
	psLiteralEnd
	psLiteralData
	psAfterLiteral
	psAlmostDone
)

func isTagChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_'
}

func isLetter(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// unescape removes quoted-string backslashes: "\x" becomes "x".
func unescape(a []byte) []byte {
	out := make([]byte, 0, len(a))
	for i := 0; i < len(a); i++ {
		if a[i] == '\\' && i+1 < len(a) {
			i++
		}
		out = append(out, a[i])
	}
	return out
}

// parseOutcome is what one pass over the buffer found.
type parseOutcome int

const (
	outNeedMore parseOutcome = iota
	outDone
	outInvalid
)

// parsePass is one pass of the parser over buf, from the start of a command
// (or of a SASL continuation line when cont is set). It reports the tag as
// soon as its space has been read, the sync literals whose "{n}\r\n" has
// been read (so the caller can answer each once), and the outcome.
type parsePass struct {
	// inputs
	cont   bool
	quoted bool // nginx's sticky quoted flag at the start of the command
	// base is how many bytes of nginx's command buffer come before buf
	// (earlier pipelined commands); nginx's "+}" check counts from the
	// buffer's start.
	base int

	// outputs
	tag      []byte // nil: no complete tag seen
	cmd      command
	n        int  // bytes used (outDone, outInvalid)
	quit     bool // outInvalid: close after the reply ("+}" line)
	syncLits int  // synchronizing literals announced so far
}

func (pp *parsePass) run(buf []byte) parseOutcome {
	var (
		st        = psTag
		quoted    = pp.quoted
		backslash bool
		argStart  int
		verbStart int
		litLen    uint64
		noSync    bool
		args      = pp.cmd.args[:0]
	)
	if pp.cont {
		// nginx parses SASL lines in its argument state: the line's first
		// byte starts an argument whatever it is.
		st = psArg
		pp.cmd.verb = verbContinue
	}

	i := 0
	for ; i < len(buf); i++ {
		c := buf[i]
		switch st {
		case psTag:
			switch {
			case c == ' ':
				pp.tag = buf[:i+1]
				st = psSpacesBeforeVerb
			case c == '\r' || c == '\n':
				goto invalid
			case !isTagChar(c) || i >= maxTag:
				goto invalid
			}

		case psSpacesBeforeVerb:
			switch c {
			case ' ':
			case '\r', '\n':
				goto invalid
			default:
				verbStart = i
				st = psVerb
			}

		case psVerb:
			if c == ' ' || c == '\r' || c == '\n' {
				v := lookupVerb(buf[verbStart:i])
				if v == verbNone {
					goto invalid
				}
				pp.cmd.verb = v
				switch c {
				case ' ':
					st = psSpacesBeforeArg
				case '\r':
					st = psAlmostDone
				default:
					goto done
				}
				continue
			}
			if !isLetter(c) {
				goto invalid
			}

		case psSpacesBeforeArg:
			switch c {
			case ' ':
			case '\r':
				st = psAlmostDone
			case '\n':
				goto done
			case '"':
				if len(args) >= maxArgs {
					goto invalid
				}
				quoted = true
				argStart = i + 1
				st = psArg
			case '{':
				if len(args) >= maxArgs {
					goto invalid
				}
				litLen = 0
				st = psLiteralLen
			default:
				if len(args) >= maxArgs {
					goto invalid
				}
				argStart = i
				st = psArg
			}

		case psArg:
			if c == ' ' && quoted {
				continue
			}
			switch c {
			case '"':
				if !quoted {
					continue
				}
				quoted = false
				fallthrough
			case ' ', '\r', '\n':
				a := buf[argStart:i]
				if backslash {
					a = unescape(a)
					backslash = false
				}
				args = append(args, a)
				switch c {
				case '\r':
					st = psAlmostDone
				case '\n':
					goto done
				default:
					st = psSpacesBeforeArg
				}
			case '\\':
				if quoted {
					backslash = true
					st = psBackslash
				}
			}

		case psBackslash:
			if c == '\r' || c == '\n' {
				goto invalid
			}
			st = psArg

		case psLiteralLen:
			switch {
			case c >= '0' && c <= '9':
				d := uint64(c - '0')
				if litLen > (^uint64(0)-d)/10 {
					goto invalid // newer nginx checks for overflow
				}
				litLen = litLen*10 + d
			case c == '}':
				noSync = false
				st = psLiteralEnd
			case c == '+':
				st = psLiteralPlus
			default:
				goto invalid
			}

		case psLiteralPlus:
			if c != '}' {
				goto invalid
			}
			noSync = true
			st = psLiteralEnd

		case psLiteralEnd:
			switch c {
			case '\r':
			case '\n':
				if !noSync {
					pp.syncLits++
				}
				argStart = i + 1
				st = psLiteralData
			default:
				goto invalid
			}

		case psLiteralData:
			// {0} still takes one byte, as nginx does.
			need := litLen
			if need == 0 {
				need = 1
			}
			if uint64(len(buf)-i) < need {
				i = len(buf)
				goto needMore
			}
			i += int(need) - 1
			args = append(args, buf[argStart:i+1])
			st = psAfterLiteral

		case psAfterLiteral:
			switch c {
			case ' ':
				st = psSpacesBeforeArg
			case '\r':
				st = psAlmostDone
			case '\n':
				goto done
			default:
				goto invalid
			}

		case psAlmostDone:
			if c != '\n' {
				goto invalid
			}
			goto done
		}
	}

needMore:
	pp.cmd.args = args
	return outNeedMore

done:
	pp.cmd.args = args
	pp.quoted = quoted
	pp.n = i + 1
	return outDone

invalid:
	pp.quoted = false
	pp.cmd.args = args[:0]
	// Skip the rest of the invalid command through its LF.
	j := bytes.IndexByte(buf[i:], '\n')
	if j < 0 {
		return outNeedMore
	}
	lf := i + j
	pp.n = lf + 1
	// A line ending in "+}" announced a non-synchronizing literal whose
	// bytes would follow: nginx closes rather than read them as commands.
	// nginx looks only when the LF is more than 4 bytes into its buffer
	// (which keeps it from reading before the buffer's start).
	if pp.base+lf > 4 {
		// Bytes before buf end an earlier line with LF, so they can be
		// neither '}' nor '+': looking at buf alone is enough.
		k := lf - 1
		if k >= 0 && buf[k] == '\r' {
			k--
		}
		if k >= 1 && buf[k] == '}' && buf[k-1] == '+' {
			pp.quit = true
		}
	}
	return outInvalid
}
