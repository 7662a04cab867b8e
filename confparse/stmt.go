package confparse

// Stmt is one directive of a configuration file as written, for tools
// that edit configuration text in place (mailgate migrate): nginx's own
// token reader gives the words and the byte range, so comments, blank
// lines and indentation outside the range are untouched by an edit.
type Stmt struct {
	Words []string // name and arguments, unquoted
	Line  int      // nginx's line for it: where its ';' or '{' was read
	// Start and End are the directive's bytes in the file: from its first
	// word (an opening quote included) to just after its ';' or its
	// block's '}'.
	Start, End int
	Block      bool
	Children   []*Stmt
}

// ParseText reads a file's directives with nginx's grammar without
// interpreting them. A syntax error is returned as nginx words it.
func ParseText(data []byte, file string) ([]*Stmt, error) {
	var conv func(ns []*node) ([]*Stmt, error)
	conv = func(ns []*node) ([]*Stmt, error) {
		var out []*Stmt
		for _, n := range ns {
			if n.syntax != nil {
				return nil, &Error{*n.syntax}
			}
			s := &Stmt{Words: n.words, Line: n.pos.Line, Start: n.off, End: n.endOff, Block: n.block}
			if n.block {
				c, err := conv(n.children)
				if err != nil {
					return nil, err
				}
				s.Children = c
			}
			out = append(out, s)
		}
		return out, nil
	}
	return conv(parseData(data, file, false))
}

// Glob expands an include pattern as nginx does (glob(3): sorted, hidden
// files only for a pattern starting with a dot).
func Glob(pattern string) ([]string, error) { return nginxGlob(pattern) }
