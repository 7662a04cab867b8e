package confparse

import (
	"slices"
	"strings"
	"sync"
)

// The directive table's def strings are the one source of the built-in
// defaults: check --effective shows them, and the merge code reads them
// through builtin, which parses each one with its directive's own
// handler, as if it had been written in the file.

var (
	builtinOnce sync.Once
	builtinVals map[string]any
)

// builtin is the default value of the mail directive name, as its handler
// stores it (an int, a bool, a *bitmaskVal, a []string...), or nil when
// the directive has none.
func builtin(name string) any {
	builtinOnce.Do(func() { builtinVals = parseDefaults() })
	return builtinVals[name]
}

// parseDefaults runs every mail directive's handler on its def string. A
// def its own handler refuses is a bug in the table: it panics, and
// TestDefaultsParse says which.
func parseDefaults() map[string]any {
	// A loader of its own: what a handler warns about (ssl's deprecation)
	// goes nowhere.
	l := &loader{cfg: &Config{}}
	lv := &level{ctx: ctxMail, vals: map[string]*setting{}}
	for _, d := range table {
		if d.def == "" || d.ctx&(ctxMail|ctxServer) == 0 {
			continue
		}
		if _, done := lv.vals[d.name]; done {
			continue
		}
		n := &node{words: append([]string{d.name}, strings.Fields(d.def)...)}
		if err := d.set(l, lv, n); err != nil {
			panic("confparse: the default of " + d.name + " (" + d.def + "): " + err.Error())
		}
	}
	vals := make(map[string]any, len(lv.vals))
	for name, st := range lv.vals {
		vals[name] = st.v
	}
	return vals
}

// effOrDefault is eff, falling back to the built-in default (a copy,
// where the value is a slice a server could change).
func (l *loader) effOrDefault(s *Server, sv *level, name string) any {
	if v := l.eff(s, sv, name); v != nil {
		return v
	}
	v := builtin(name)
	if a, ok := v.([]string); ok {
		return slices.Clone(a)
	}
	return v
}
