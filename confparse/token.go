package confparse

// The tokenizer follows nginx's configuration grammar (ngx_conf_file.c's
// token reader), re-implemented here. gonginx is not used for the tree
// because every one of its known traps (stray "}", unquoting, backticks,
// "\;", block positions, lost server parameters) changes the token stream
// itself, so a tree built from gonginx's tokens would have to be patched
// back with our own tokens anyway. gonginx_test.go shows each trap on
// gonginx and our handling of the same input.

import "fmt"

// confBuffer is nginx's NGX_CONF_BUFFER: a token longer than this is an
// error ("too long parameter").
const confBuffer = 4096

// node is one directive: its words (name first, unquoted), the position of
// its terminating ';' or '{', and its children when it opened a block.
type node struct {
	words    []string
	pos      Pos
	block    bool
	children []*node
	end      Pos // where the block's "}" was read
	// off and endOff are the directive's bytes in its file: from its
	// first word (an opening quote included) to just after its ';' or
	// its block's '}'.
	off, endOff int
	// syntax, when set, marks the place where the file stopped parsing:
	// the interpreter reports it when it reaches this node.
	syntax *Diag
}

func (n *node) name() string { return n.words[0] }
func (n *node) args() []string {
	return n.words[1:]
}

type tokResult int

const (
	tokOK         tokResult = iota // ';'
	tokBlockStart                  // '{'
	tokBlockDone                   // '}'
	tokEOF
	tokError
)

type lexer struct {
	data     []byte
	i        int
	line     int
	file     string
	cmdline  bool
	words    []string
	err      *Diag
	blockEnd Pos
	first    int // offset of the current directive's first word
}

func (lx *lexer) pos(line int) Pos {
	if lx.cmdline {
		return Pos{CmdLine: true}
	}
	return Pos{File: lx.file, Line: line}
}

func (lx *lexer) fail(line int, format string, a ...any) tokResult {
	lx.err = &Diag{Sev: SevEmerg, Msg: fmt.Sprintf(format, a...), Pos: lx.pos(line)}
	return tokError
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// unescape applies nginx's escape rules to a raw token.
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for j := 0; j < len(raw); {
		if raw[j] == '\\' && j+1 < len(raw) {
			switch raw[j+1] {
			case '"', '\'', '\\':
				out = append(out, raw[j+1])
				j += 2
				continue
			case 't':
				out = append(out, '\t')
				j += 2
				continue
			case 'r':
				out = append(out, '\r')
				j += 2
				continue
			case 'n':
				out = append(out, '\n')
				j += 2
				continue
			}
		}
		out = append(out, raw[j])
		j++
	}
	return string(out)
}

// next reads one directive's words, like ngx_conf_read_token.
func (lx *lexer) next() tokResult {
	lx.words = lx.words[:0]
	var (
		start     = lx.i
		startLine = lx.line
		lastSpace = true
		needSpace = false
		sharp     = false
		quoted    = false
		dQuoted   = false
		sQuoted   = false
		variable  = false
		found     = false
		data      = lx.data
	)
	for {
		if lx.i >= len(data) {
			if len(lx.words) > 0 || !lastSpace {
				if lx.cmdline {
					return lx.fail(lx.line, `unexpected end of parameter, expecting ";"`)
				}
				return lx.fail(lx.line, `unexpected end of file, expecting ";" or "}"`)
			}
			return tokEOF
		}
		if lx.i-start >= confBuffer {
			if dQuoted {
				return lx.fail(startLine, `too long parameter, probably missing terminating """ character`)
			}
			if sQuoted {
				return lx.fail(startLine, `too long parameter, probably missing terminating "'" character`)
			}
			return lx.fail(startLine, `too long parameter "%s..." started`, string(data[start:start+10]))
		}
		ch := data[lx.i]
		lx.i++
		if ch == '\n' {
			lx.line++
			if sharp {
				sharp = false
			}
		}
		if sharp {
			continue
		}
		if quoted {
			quoted = false
			continue
		}
		if needSpace {
			if isSpace(ch) {
				lastSpace = true
				needSpace = false
				continue
			}
			if ch == ';' {
				return tokOK
			}
			if ch == '{' {
				return tokBlockStart
			}
			if ch == ')' {
				lastSpace = true
				needSpace = false
			} else {
				return lx.fail(lx.line, `unexpected "%s"`, []byte{ch})
			}
		}
		if lastSpace {
			start = lx.i - 1
			startLine = lx.line
			if isSpace(ch) {
				continue
			}
			if len(lx.words) == 0 && ch != ';' && ch != '{' && ch != '}' && ch != '#' {
				lx.first = start
			}
			switch ch {
			case ';', '{':
				if len(lx.words) == 0 {
					return lx.fail(lx.line, `unexpected "%s"`, []byte{ch})
				}
				if ch == '{' {
					return tokBlockStart
				}
				return tokOK
			case '}':
				if len(lx.words) != 0 {
					return lx.fail(lx.line, `unexpected "}"`)
				}
				return tokBlockDone
			case '#':
				sharp = true
				continue
			case '\\':
				quoted = true
				lastSpace = false
				continue
			case '"':
				start++
				dQuoted = true
				lastSpace = false
				continue
			case '\'':
				start++
				sQuoted = true
				lastSpace = false
				continue
			case '$':
				variable = true
				lastSpace = false
				continue
			default:
				lastSpace = false
			}
		} else {
			if ch == '{' && variable {
				continue
			}
			variable = false
			if ch == '\\' {
				quoted = true
				continue
			}
			if ch == '$' {
				variable = true
				continue
			}
			if dQuoted {
				if ch == '"' {
					dQuoted = false
					needSpace = true
					found = true
				}
			} else if sQuoted {
				if ch == '\'' {
					sQuoted = false
					needSpace = true
					found = true
				}
			} else if isSpace(ch) || ch == ';' || ch == '{' {
				lastSpace = true
				found = true
			}
			if found {
				lx.words = append(lx.words, unescape(data[start:lx.i-1]))
				if ch == ';' {
					return tokOK
				}
				if ch == '{' {
					return tokBlockStart
				}
				found = false
			}
		}
	}
}

// parseData turns a whole file (or the -g text) into directive nodes. On a
// syntax error the returned list ends with a node carrying the error, in
// the innermost block that was open, and the remaining input is dropped.
func parseData(data []byte, file string, cmdline bool) []*node {
	lx := &lexer{data: data, line: 1, file: file, cmdline: cmdline}
	nodes, _ := lx.parseBlock(false, 0)
	return nodes
}

// maxDepth bounds block nesting so hostile input can't exhaust the stack.
const maxDepth = 200

func (lx *lexer) parseBlock(inBlock bool, depth int) ([]*node, bool) {
	var nodes []*node
	errNode := func() ([]*node, bool) {
		return append(nodes, &node{words: []string{""}, syntax: lx.err, pos: lx.err.Pos}), true
	}
	for {
		rc := lx.next()
		switch rc {
		case tokError:
			return errNode()
		case tokBlockDone:
			if !inBlock {
				lx.fail(lx.line, `unexpected "}"`)
				return errNode()
			}
			lx.blockEnd = lx.pos(lx.line)
			return nodes, false
		case tokEOF:
			if inBlock {
				lx.fail(lx.line, `unexpected end of file, expecting "}"`)
				return errNode()
			}
			return nodes, false
		}
		n := &node{words: append([]string(nil), lx.words...), pos: lx.pos(lx.line), off: lx.first, endOff: lx.i}
		if rc == tokBlockStart {
			if lx.cmdline {
				lx.fail(lx.line, "block directives are not supported in -g option")
				return errNode()
			}
			n.block = true
			if depth >= maxDepth {
				lx.fail(lx.line, "too deeply nested blocks")
				return errNode()
			}
			children, stop := lx.parseBlock(true, depth+1)
			n.children = children
			n.end = lx.blockEnd
			n.endOff = lx.i
			nodes = append(nodes, n)
			if stop {
				return nodes, true
			}
			continue
		}
		nodes = append(nodes, n)
	}
}
