package imap

import (
	"bytes"

	"mailgate/mail"
)

// The IMAP command parser. It follows nginx's rules for the auth state
// (docs/imap.md, "Behaviour"), quirks included:
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
	verbID       // mailgate-only, imap_id on (id.go)
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
	{"ID", verbID},
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
	// idFields: an ID command's parameter list (nil for NIL or "()").
	idFields []mail.IDField
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
	psID        // mailgate-only: an ID parameter list, up to its LF
	psIDLiteral // a literal inside it
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

// argRange is an argument: buf[start:end], or owned when quoted-string
// escapes had to be removed.
type argRange struct {
	start, end int
	owned      []byte
}

// parsePass parses one command (or SASL continuation line) from the start
// of buf. It is resumable: after outNeedMore, run may be called again with
// the same bytes plus more, and it goes on where it stopped, so a client
// that sends a byte at a time costs linear, not quadratic, time. It
// reports the tag as soon as its space has been read, the synchronizing
// literals whose "{n}\r\n" has been read (so the caller can answer each
// once), and the outcome.
type parsePass struct {
	// inputs
	cont   bool
	quoted bool // nginx's sticky quoted flag at the start of the command
	id     bool // imap_id on: ID is a verb
	// base is how many bytes of nginx's command buffer come before buf
	// (earlier pipelined commands); nginx's "+}" check counts from the
	// buffer's start.
	base int

	// progress, kept between calls
	started   bool
	i         int // next byte to look at
	st        pstate
	q         bool // the quoted flag as parsing goes
	backslash bool
	argStart  int
	verbStart int
	litLen    uint64
	noSync    bool
	ranges    []argRange
	badAt     int // >= 0: invalid at this byte, looking for its LF
	tagEnd    int // > 0: buf[:tagEnd] is the tag with its space
	first     byte
	// ID: where its parameters start, where the current line of them
	// starts (after a literal), and the quoted-string state.
	idStart, idLine int
	idQ, idEsc      bool

	// outputs
	tag      []byte // nil: no complete tag seen
	cmd      command
	n        int  // bytes used (outDone, outInvalid)
	quit     bool // outInvalid: close after the reply ("+}" line)
	syncLits int  // synchronizing literals announced so far
	scanned  int  // bytes looked at over all calls (the tests check it is linear)
}

// resumes reports whether buf can continue this pass: the engine hands
// over the same bytes again, with more at the end.
func (pp *parsePass) resumes(buf []byte) bool {
	return pp.started && len(buf) >= pp.i && (pp.i == 0 || buf[0] == pp.first)
}

func (pp *parsePass) run(buf []byte) parseOutcome {
	if !pp.started {
		pp.started = true
		pp.q = pp.quoted
		pp.badAt = -1
		pp.st = psTag
		if pp.cont {
			// nginx parses SASL lines in its argument state: the line's
			// first byte starts an argument whatever it is.
			pp.st = psArg
			pp.cmd.verb = verbContinue
		}
	}
	if len(buf) > 0 {
		pp.first = buf[0]
	}
	if pp.badAt >= 0 {
		return pp.skipInvalid(buf)
	}

	i := pp.i
	for ; i < len(buf); i++ {
		pp.scanned++
		c := buf[i]
		switch pp.st {
		case psTag:
			switch {
			case c == ' ':
				pp.tagEnd = i + 1
				pp.tag = buf[:i+1]
				pp.st = psSpacesBeforeVerb
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
				pp.verbStart = i
				pp.st = psVerb
			}

		case psVerb:
			if c == ' ' || c == '\r' || c == '\n' {
				v := lookupVerb(buf[pp.verbStart:i])
				if v == verbNone || v == verbID && !pp.id {
					goto invalid
				}
				pp.cmd.verb = v
				if v == verbID {
					if c != ' ' {
						goto invalid
					}
					pp.idStart, pp.idLine = i+1, i+1
					pp.st = psID
					continue
				}
				switch c {
				case ' ':
					pp.st = psSpacesBeforeArg
				case '\r':
					pp.st = psAlmostDone
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
				pp.st = psAlmostDone
			case '\n':
				goto done
			case '"':
				if len(pp.ranges) >= maxArgs {
					goto invalid
				}
				pp.q = true
				pp.argStart = i + 1
				pp.st = psArg
			case '{':
				if len(pp.ranges) >= maxArgs {
					goto invalid
				}
				pp.litLen = 0
				pp.st = psLiteralLen
			default:
				if len(pp.ranges) >= maxArgs {
					goto invalid
				}
				pp.argStart = i
				pp.st = psArg
			}

		case psArg:
			if c == ' ' && pp.q {
				continue
			}
			switch c {
			case '"':
				if !pp.q {
					continue
				}
				pp.q = false
				fallthrough
			case ' ', '\r', '\n':
				a := argRange{start: pp.argStart, end: i}
				if pp.backslash {
					a.owned = unescape(buf[pp.argStart:i])
					pp.backslash = false
				}
				pp.ranges = append(pp.ranges, a)
				switch c {
				case '\r':
					pp.st = psAlmostDone
				case '\n':
					goto done
				default:
					pp.st = psSpacesBeforeArg
				}
			case '\\':
				if pp.q {
					pp.backslash = true
					pp.st = psBackslash
				}
			}

		case psBackslash:
			if c == '\r' || c == '\n' {
				goto invalid
			}
			pp.st = psArg

		case psLiteralLen:
			switch {
			case c >= '0' && c <= '9':
				d := uint64(c - '0')
				if pp.litLen > (^uint64(0)-d)/10 {
					goto invalid // newer nginx checks for overflow
				}
				pp.litLen = pp.litLen*10 + d
			case c == '}':
				pp.noSync = false
				pp.st = psLiteralEnd
			case c == '+':
				pp.st = psLiteralPlus
			default:
				goto invalid
			}

		case psLiteralPlus:
			if c != '}' {
				goto invalid
			}
			pp.noSync = true
			pp.st = psLiteralEnd

		case psLiteralEnd:
			switch c {
			case '\r':
			case '\n':
				if !pp.noSync {
					pp.syncLits++
				}
				pp.argStart = i + 1
				pp.st = psLiteralData
			default:
				goto invalid
			}

		case psLiteralData:
			// {0} still takes one byte, as nginx does.
			need := pp.litLen
			if need == 0 {
				need = 1
			}
			// Compare with what is left, never argStart+need: a length
			// near 2^64 wraps the sum around to an end before the start.
			if need > uint64(len(buf)-pp.argStart) {
				i = len(buf)
				goto needMore
			}
			end := pp.argStart + int(need)
			i = end - 1
			pp.ranges = append(pp.ranges, argRange{start: pp.argStart, end: end})
			pp.st = psAfterLiteral

		case psAfterLiteral:
			switch c {
			case ' ':
				pp.st = psSpacesBeforeArg
			case '\r':
				pp.st = psAlmostDone
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

		case psID:
			switch {
			case pp.idEsc:
				pp.idEsc = false
				if c == '\r' || c == '\n' {
					goto invalid
				}
			case pp.idQ:
				switch c {
				case '\\':
					pp.idEsc = true
				case '"':
					pp.idQ = false
				case '\r', '\n':
					goto invalid
				}
			case c == '"':
				pp.idQ = true
			case c == '\n':
				n, sync, ok := idLiteralBefore(buf[pp.idLine:i])
				if !ok {
					return pp.finishID(buf, i)
				}
				if sync {
					pp.syncLits++
				}
				if n == 0 {
					// An empty literal: the next byte is already the
					// list's again (psIDLiteral would look at it twice).
					pp.idLine = i + 1
					break
				}
				pp.litLen = uint64(n)
				pp.argStart = i + 1
				pp.st = psIDLiteral
			}

		case psIDLiteral:
			if pp.litLen > uint64(len(buf)-pp.argStart) {
				i = len(buf)
				goto needMore
			}
			i = pp.argStart + int(pp.litLen) - 1
			pp.idLine = i + 1
			pp.st = psID
		}
	}

needMore:
	pp.i = i
	return outNeedMore

done:
	pp.cmd.args = pp.cmd.args[:0]
	for _, a := range pp.ranges {
		if a.owned != nil {
			pp.cmd.args = append(pp.cmd.args, a.owned)
		} else {
			pp.cmd.args = append(pp.cmd.args, buf[a.start:a.end])
		}
	}
	pp.quoted = pp.q
	pp.n = i + 1
	pp.i = pp.n
	return outDone

invalid:
	pp.badAt = i
	pp.i = i
	return pp.skipInvalid(buf)
}

// finishID ends an ID command at the LF at lf: its parameter list is
// parsed strictly (id.go); a list that breaks RFC 2971 is an invalid
// command.
func (pp *parsePass) finishID(buf []byte, lf int) parseOutcome {
	pp.n = lf + 1
	pp.i = pp.n
	pp.quoted = pp.q
	fields, err := parseIDList(buf[pp.idStart:lf])
	if err != nil {
		pp.ranges = pp.ranges[:0]
		return outInvalid
	}
	pp.cmd.args = pp.cmd.args[:0]
	pp.cmd.idFields = fields
	return outDone
}

// skipInvalid looks for the LF that ends an invalid command.
func (pp *parsePass) skipInvalid(buf []byte) parseOutcome {
	pp.quoted = false
	pp.ranges = pp.ranges[:0]
	j := bytes.IndexByte(buf[pp.i:], '\n')
	if j < 0 {
		pp.i = len(buf)
		return outNeedMore
	}
	lf := pp.i + j
	pp.n = lf + 1
	pp.i = pp.n
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
