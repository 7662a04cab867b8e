package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mailgate/confparse"
)

// mailgate migrate splits one nginx configuration into two: the nginx
// half keeps everything but mail{} and the mail module's load_module line,
// the mailgate half gets mail{} with the main-context directives mailgate
// uses. See docs/migrate.md.
//
// The files are edited as text: each directive's byte range comes from
// confparse's tokenizer (nginx's grammar), and only those ranges are cut,
// so every comment, blank line and indentation elsewhere stays as written.
// gonginx's dumper was measured for this and rejected: it reindents every
// line, drops blank lines, moves a comment that ends a block out of the
// block, and lists an http{} block's server{} children after its other
// directives (which changes nginx's default server when an inline server
// follows an include of sites-enabled). Then both halves are loaded back
// (confparse, with the new text as an overlay) and compared, directive by
// directive, with the source; nginx -t checks the nginx half when nginx is
// installed. Nothing is written unless every check passes.

func migrateCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "migrate",
		Usage:     "split an nginx.conf into an nginx configuration without mail{} and a mailgate configuration with it",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "c", Usage: "nginx configuration `file`", Value: defaultConfFile},
			&cli.StringFlag{Name: "p", Usage: "prefix `path`", Value: defaultPrefix},
			&cli.StringFlag{Name: "out", Usage: "write the new files under `DIR` (laid out like the configuration's directory)"},
			&cli.BoolFlag{Name: "diff", Usage: "show the change as a unified diff; write nothing"},
			&cli.StringFlag{Name: "name", Usage: "file `name` of the mailgate configuration, next to the nginx one", Value: "mailgate.conf"},
			&cli.StringFlag{Name: "pid", Usage: "mailgate's pid `file`", Value: "/run/mailgate/mailgate.pid"},
			&cli.StringFlag{Name: "error-log", Usage: "mailgate's main error_log `file`", Value: "/var/log/mailgate/error.log"},
			&cli.StringFlag{Name: "nginx", Usage: "nginx `binary` for nginx -t on the nginx half (\"\": look for nginx in PATH and /usr/sbin; \"none\": skip)"},
		},
		Action: func(c *cli.Context) error {
			prog := c.App.Name + " migrate"
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("%s: unexpected argument %q", prog, c.Args().First()), 2)
			}
			if c.String("out") == "" && !c.Bool("diff") {
				return cli.Exit(prog+": give --out DIR, or --diff to see the change", 2)
			}
			if strings.ContainsAny(c.String("name"), "/") || c.String("name") == "" {
				return cli.Exit(prog+": --name is a file name, not a path", 2)
			}
			o := &options{
				prefix: c.String("p"), prefixSet: c.IsSet("p"),
				confFile: c.String("c"), confSet: c.IsSet("c"),
			}
			p := o.resolve()
			m := &migration{
				prefix:   p.prefix,
				confArg:  p.confArg,
				name:     c.String("name"),
				pid:      c.String("pid"),
				errorLog: c.String("error-log"),
				nginxBin: c.String("nginx"),
			}
			if err := m.run(); err != nil {
				return cli.Exit(prog+": "+err.Error(), 1)
			}
			if c.Bool("diff") {
				if err := m.writeDiff(stdout); err != nil {
					return cli.Exit(prog+": "+err.Error(), 1)
				}
				return nil
			}
			if err := m.write(c.String("out"), stdout); err != nil {
				return cli.Exit(prog+": "+err.Error(), 1)
			}
			return nil
		},
	}
}

// migration is one run of mailgate migrate.
type migration struct {
	prefix, confArg string
	name            string // mailgate configuration's file name
	pid, errorLog   string
	nginxBin        string

	src      *confparse.Config
	confDir  string // with a trailing '/'
	mainFile string

	texts map[string][]byte            // source files read
	stmts map[string][]*confparse.Stmt // their directives

	out       map[string][]byte // new content by absolute path
	mailgate  string            // absolute path of the mailgate half
	events    string            // the events{} block as written, when found in a file read
	notes     []string
	nginxUsed string // the nginx binary that checked the nginx half
}

// mailMarker replaces the mail{} block in the nginx half, and
// loadModuleMarker the mail module's load_module line.
const (
	mailMarker       = "# mail {} is served by mailgate now: see %s (written by mailgate migrate)\n"
	loadModuleMarker = "# the mail module is no longer loaded: mailgate serves mail {} (mailgate migrate)\n"
	includeMarker    = "# include %s: mail {} is served by mailgate now, see %s (mailgate migrate)\n"
)

func (m *migration) run() error {
	host, _ := os.Hostname()
	src, err := confparse.Load(confparse.Options{Prefix: m.prefix, ConfFile: m.confArg, Hostname: strings.ToLower(host), Trace: true})
	if err != nil {
		return fmt.Errorf("the configuration does not load, fix it first: %v", err)
	}
	if src.Mail == nil {
		return fmt.Errorf("%s has no mail{} block: nothing to move", src.ConfFile)
	}
	m.src = src
	m.mainFile = src.ConfFile
	m.confDir = src.ConfDir
	m.mailgate = m.confDir + m.name
	m.texts = map[string][]byte{}
	m.stmts = map[string][]*confparse.Stmt{}
	m.out = map[string][]byte{}
	for _, f := range src.Files {
		m.texts[f.Path] = f.Data
	}
	if _, ok := m.texts[m.mailgate]; ok {
		return fmt.Errorf("%s is part of the configuration already; choose another --name", m.mailgate)
	}
	if _, err := os.Lstat(m.mailgate); err == nil {
		m.notes = append(m.notes, fmt.Sprintf("%s exists and will be replaced when the new files are installed", m.mailgate))
	}
	parts, err := m.process(m.mainFile, 0)
	if err != nil {
		return err
	}
	m.out[m.mailgate] = m.mailgateText(parts)
	if err := m.verify(); err != nil {
		return fmt.Errorf("the split did not verify, nothing written: %v", err)
	}
	return nil
}

// file returns a source file's text and directives.
func (m *migration) file(path string) ([]byte, []*confparse.Stmt, error) {
	if s, ok := m.stmts[path]; ok {
		return m.texts[path], s, nil
	}
	data, ok := m.texts[path]
	if !ok {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, nil, err
		}
		m.texts[path] = data
	}
	// Only files confparse accepted get here: the whole configuration
	// loaded, so this cannot fail on a file it read.
	s, err := confparse.ParseText(data, path)
	if err != nil {
		return nil, nil, err
	}
	m.stmts[path] = s
	return data, s, nil
}

// includeMatches resolves an include's argument as nginx does.
func (m *migration) includeMatches(arg string) []string {
	full := arg
	if i := strings.IndexByte(full, 0); i >= 0 {
		full = full[:i]
	}
	if !filepath.IsAbs(full) {
		full = m.confDir + full
	}
	if !isGlob(full) {
		return []string{full}
	}
	ms, _ := confparse.Glob(full)
	return ms
}

func isGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

func isMailLoadModule(s *confparse.Stmt) bool {
	return !s.Block && s.Words[0] == "load_module" && len(s.Words) == 2 &&
		filepath.Base(strings.SplitN(s.Words[1], "\x00", 2)[0]) == "ngx_mail_module.so"
}

// kind says what a file holds at the main level, includes followed.
type kind struct {
	mail, other bool // a mail{} or the mail module's load_module / anything else
	loadModule  bool // the mail module's load_module somewhere
}

func (m *migration) classify(path string, depth int) (kind, error) {
	var k kind
	if depth > 20 {
		return k, fmt.Errorf("includes nested too deeply at %s", path)
	}
	_, stmts, err := m.file(path)
	if err != nil {
		return k, err
	}
	for _, s := range stmts {
		switch {
		case s.Block && s.Words[0] == "mail":
			k.mail = true
		case isMailLoadModule(s):
			k.mail, k.loadModule = true, true
		case !s.Block && s.Words[0] == "include" && len(s.Words) == 2:
			for _, inc := range m.includeMatches(s.Words[1]) {
				ik, err := m.classify(inc, depth+1)
				if err != nil {
					return k, err
				}
				k.mail = k.mail || ik.mail
				k.other = k.other || ik.other
				k.loadModule = k.loadModule || ik.loadModule
			}
		default:
			k.other = true
		}
	}
	return k, nil
}

// process rewrites one main-context file for the nginx half (into m.out
// when it changes) and returns what the mailgate half takes from it.
func (m *migration) process(path string, depth int) ([]string, error) {
	data, stmts, err := m.file(path)
	if err != nil {
		return nil, err
	}
	var cuts []cut
	var parts []string
	rel := m.relName(path)
	for _, s := range stmts {
		switch {
		case s.Block && s.Words[0] == "mail":
			c := extend(data, s, true, false)
			c.repl = fmt.Sprintf(mailMarker, m.name)
			cuts = append(cuts, c)
			parts = append(parts, fmt.Sprintf("# mail{} from %s:%d\n%s", rel, s.Line, strings.TrimRight(string(data[c.start:c.end]), "\n")+"\n"))
		case isMailLoadModule(s):
			c := extend(data, s, true, false)
			c.repl = loadModuleMarker
			cuts = append(cuts, c)
			if depth == 0 {
				m.notes = append(m.notes, fmt.Sprintf("%s:%d: load_module of the mail module removed from the nginx half (mailgate has it built in)", rel, s.Line))
			}
		case s.Block && s.Words[0] == "events" && m.events == "":
			c := extend(data, s, true, false)
			m.events = strings.TrimRight(string(data[c.start:c.end]), "\n") + "\n"
		case !s.Block && s.Words[0] == "include" && len(s.Words) == 2:
			matches := m.includeMatches(s.Words[1])
			kinds := make([]kind, len(matches))
			anyMail, allMailOnly, pure := false, len(matches) > 0, true
			for i, inc := range matches {
				if kinds[i], err = m.classify(inc, depth+1); err != nil {
					return nil, err
				}
				anyMail = anyMail || kinds[i].mail
				allMailOnly = allMailOnly && kinds[i].mail && !kinds[i].other
				pure = pure && !kinds[i].loadModule
			}
			if !anyMail {
				continue
			}
			if !isGlob(s.Words[1]) && allMailOnly {
				// A file of mail alone: the nginx half drops the include,
				// the mailgate half includes the same file, unchanged.
				c := extend(data, s, true, false)
				c.repl = fmt.Sprintf(includeMarker, s.Words[1], m.name)
				cuts = append(cuts, c)
				if pure {
					text := strings.TrimRight(string(data[c.start:c.end]), "\n")
					if c.start != s.Start && !strings.HasPrefix(strings.TrimLeft(string(data[c.start:s.Start]), " \t"), "#") {
						text = string(data[s.Start:s.End]) // not on a line of its own
					}
					parts = append(parts, fmt.Sprintf("# from %s:%d\n%s\n", rel, s.Line, strings.TrimLeft(text, " \t")))
					continue
				}
				for _, inc := range matches {
					p, err := m.process(inc, depth+1)
					if err != nil {
						return nil, err
					}
					// that file is not read by the nginx half any more
					delete(m.out, inc)
					parts = append(parts, p...)
				}
				continue
			}
			// A glob, or a file that also holds other directives: the
			// include stays, and each file with mail is split.
			for i, inc := range matches {
				if !kinds[i].mail {
					continue
				}
				if !strings.HasPrefix(inc, m.confDir) {
					return nil, fmt.Errorf("%s (included at %s:%d) holds mail directives but is outside %s; move its mail part into the configuration directory first", inc, rel, s.Line, m.confDir)
				}
				p, err := m.process(inc, depth+1)
				if err != nil {
					return nil, err
				}
				parts = append(parts, p...)
				if kinds[i].loadModule && !kinds[i].other {
					if fi, err := os.Lstat(inc); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
						m.notes = append(m.notes, fmt.Sprintf("%s is a symbolic link that loads the mail module (e.g. Debian's libnginx-mod-mail); removing the link does what the rewritten file does", inc))
					}
				}
			}
		}
	}
	if len(cuts) > 0 {
		m.out[path] = applyCuts(data, cuts)
	}
	return parts, nil
}

// relName names a file for comments: relative to the configuration
// directory when inside it.
func (m *migration) relName(path string) string {
	if strings.HasPrefix(path, m.confDir) {
		return strings.TrimPrefix(path, m.confDir)
	}
	return path
}

// mainKeep are the main-context directives the mailgate half copies:
// those mailgate acts on (docs/cli.md). pid and error_log are its own;
// user, worker_processes and the other process tuning directives have no
// effect in mailgate and stay with nginx; daemon is left to the command
// line (the systemd unit gives -g 'daemon off;', which a copied daemon
// line would make a duplicate).
var mainKeep = map[string]bool{"worker_shutdown_timeout": true, "worker_rlimit_nofile": true}

func (m *migration) mailgateText(parts []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# mailgate configuration, written by \"mailgate migrate\" from %s\n", m.mainFile)
	fmt.Fprintf(&b, "# on %s. It holds the mail{} block; the nginx configuration\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "# beside it keeps everything else. Test it with: mailgate -t -c %s\n\n", m.mailgate)
	fmt.Fprintf(&b, "pid %s;\n", joinWords([]string{m.pid}))
	level := ""
	if len(m.src.Core.ErrorLogs) > 0 && m.src.Core.ErrorLogs[0].Level != confparse.SevError {
		level = " " + m.src.Core.ErrorLogs[0].Level.String()
	}
	fmt.Fprintf(&b, "error_log %s%s;\n", joinWords([]string{m.errorLog}), level)
	skipped := map[string]bool{}
	for _, e := range m.src.Trace {
		if e.Context != "" || e.Block {
			continue
		}
		switch {
		case mainKeep[e.Words[0]]:
			fmt.Fprintf(&b, "%s;\n", joinWords(e.Words))
		case e.Words[0] == "user", e.Words[0] == "worker_processes", e.Words[0] == "daemon":
			skipped[e.Words[0]] = true
		}
	}
	if skipped["user"] {
		m.notes = append(m.notes, fmt.Sprintf(`"user" is not copied to %s: mailgate does not switch users; start it as the unprivileged user (examples/systemd/mailgate.service)`, m.name))
	}
	if skipped["daemon"] {
		m.notes = append(m.notes, fmt.Sprintf(`"daemon" is not copied to %s: give -g 'daemon off;' on the command line to run in the foreground (as examples/systemd/mailgate.service does)`, m.name))
	}
	if skipped["worker_processes"] {
		m.notes = append(m.notes, fmt.Sprintf(`"worker_processes" is not copied to %s: mailgate is one process`, m.name))
	}
	b.WriteString("\n")
	if m.events != "" {
		b.WriteString(m.events)
	} else {
		// events{} came from a place the split does not copy text from;
		// its directives are rebuilt from what was read.
		b.WriteString("events {\n")
		for _, e := range m.src.Trace {
			if e.Context == "events" {
				fmt.Fprintf(&b, "    %s;\n", joinWords(e.Words))
			}
		}
		b.WriteString("}\n")
	}
	for _, p := range parts {
		b.WriteString("\n" + p)
	}
	return []byte(b.String())
}

// cut is a byte range of a file to remove, replaced by repl.
type cut struct {
	start, end int
	repl       string
}

// extend widens a directive's range to whole lines when it stands on its
// own lines: the indentation before it, a comment after it on its last
// line, the line feed, and (with comments) the comment lines right above
// it. With collapse, one of two blank lines left around the cut goes too
// (for a cut that leaves nothing in its place).
func extend(data []byte, s *confparse.Stmt, comments, collapse bool) cut {
	start, end := s.Start, s.End
	ls := bytes.LastIndexByte(data[:start], '\n') + 1
	if strings.TrimLeft(string(data[ls:start]), " \t") != "" {
		return cut{start: start, end: end}
	}
	start = ls
	if comments {
		for start > 0 {
			prev := bytes.LastIndexByte(data[:start-1], '\n') + 1
			line := strings.TrimLeft(string(data[prev:start-1]), " \t")
			if !strings.HasPrefix(line, "#") {
				break
			}
			start = prev
		}
	}
	le := bytes.IndexByte(data[end:], '\n')
	rest := data[end:]
	if le >= 0 {
		rest = data[end : end+le]
	}
	if t := strings.TrimLeft(string(rest), " \t\r"); t == "" || t[0] == '#' {
		if le >= 0 {
			end += le + 1
		} else {
			end = len(data)
		}
	}
	blankBefore := start == 0 || (start >= 2 && data[start-2] == '\n') || (start == 1 && data[0] == '\n')
	if collapse && blankBefore && end < len(data) && data[end] == '\n' {
		end++
	}
	return cut{start: start, end: end}
}

func applyCuts(data []byte, cuts []cut) []byte {
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].start < cuts[j].start })
	var b bytes.Buffer
	at := 0
	for _, c := range cuts {
		if c.start < at { // overlapping (cannot happen between directives)
			c.start = at
		}
		if c.end < at {
			continue
		}
		b.Write(data[at:c.start])
		b.WriteString(c.repl)
		at = c.end
	}
	b.Write(data[at:])
	return b.Bytes()
}

// ---- verification ----

// isMailEntry: the mail{} block or anything inside it.
func isMailEntry(e confparse.TraceEntry) bool {
	return e.Context == "mail" || strings.HasPrefix(e.Context, "mail ") || (e.Context == "" && e.Words[0] == "mail")
}

func isMailLoadEntry(e confparse.TraceEntry) bool {
	return e.Context == "" && !e.Block && isMailLoadModule(&confparse.Stmt{Words: e.Words})
}

func isEventsEntry(e confparse.TraceEntry) bool {
	return e.Context == "events" || (e.Context == "" && e.Words[0] == "events")
}

func traceLine(e confparse.TraceEntry) string {
	ctx := e.Context
	if ctx == "" {
		ctx = "main"
	}
	s := ctx + ": " + joinWords(e.Words)
	if e.Block {
		s += " {"
	}
	return s
}

// sameTrace compares two directive lists, naming the first difference
// with the positions of both sides.
func sameTrace(what string, want, got []confparse.TraceEntry) error {
	for i := 0; i < len(want) || i < len(got); i++ {
		switch {
		case i >= len(got):
			return fmt.Errorf("%s lacks %q (%s)", what, traceLine(want[i]), want[i].Pos)
		case i >= len(want):
			return fmt.Errorf("%s has an extra %q (%s)", what, traceLine(got[i]), got[i].Pos)
		case traceLine(want[i]) != traceLine(got[i]):
			return fmt.Errorf("%s reads %q (%s) where the source reads %q (%s)", what, traceLine(got[i]), got[i].Pos, traceLine(want[i]), want[i].Pos)
		}
	}
	return nil
}

func filterTrace(t []confparse.TraceEntry, keep func(confparse.TraceEntry) bool) []confparse.TraceEntry {
	var out []confparse.TraceEntry
	for _, e := range t {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// verify loads both halves from the new text (confparse, overlay) and
// compares them with the source directive by directive, compares every
// mail server's effective settings, then runs nginx -t on the nginx half.
func (m *migration) verify() error {
	load := func(conf string) (*confparse.Config, error) {
		return confparse.Load(confparse.Options{Prefix: m.prefix, ConfFile: conf, Hostname: "migrate.invalid", Trace: true, Overlay: m.out})
	}
	// The source again, with the same host name as the halves (the
	// server_name default).
	src, err := confparse.Load(confparse.Options{Prefix: m.prefix, ConfFile: m.mainFile, Hostname: "migrate.invalid", Trace: true})
	if err != nil {
		return err
	}
	ng, err := load(m.mainFile)
	if err != nil {
		return fmt.Errorf("nginx half: %v", err)
	}
	if ng.Mail != nil {
		return fmt.Errorf("nginx half still has mail{} (%s)", ng.Mail.Pos)
	}
	serves := false
	for _, e := range ng.Trace {
		if e.Context == "" && e.Block && (e.Words[0] == "http" || e.Words[0] == "stream") {
			serves = true
		}
	}
	if !serves {
		m.notes = append(m.notes, "the nginx half has no http{} or stream{} block: once mailgate serves mail, nginx can be stopped")
	}
	if err := sameTrace("the nginx half", filterTrace(src.Trace, func(e confparse.TraceEntry) bool {
		return !isMailEntry(e) && !isMailLoadEntry(e)
	}), ng.Trace); err != nil {
		return err
	}
	mg, err := load(m.mailgate)
	if err != nil {
		return fmt.Errorf("mailgate half: %v", err)
	}
	if err := sameTrace("the mailgate half's mail{}", filterTrace(src.Trace, isMailEntry), filterTrace(mg.Trace, isMailEntry)); err != nil {
		return err
	}
	if err := sameTrace("the mailgate half's events{}", filterTrace(src.Trace, isEventsEntry), filterTrace(mg.Trace, isEventsEntry)); err != nil {
		return err
	}
	keep := func(e confparse.TraceEntry) bool { return e.Context == "" && !e.Block && mainKeep[e.Words[0]] }
	if err := sameTrace("the mailgate half's main context", filterTrace(src.Trace, keep), filterTrace(mg.Trace, keep)); err != nil {
		return err
	}
	if len(mg.Mail.Servers) != len(src.Mail.Servers) {
		return fmt.Errorf("mailgate half has %d mail servers, the source %d", len(mg.Mail.Servers), len(src.Mail.Servers))
	}
	for i, s := range src.Mail.Servers {
		a, b := effectiveServer(s), effectiveServer(mg.Mail.Servers[i])
		if strings.Join(a.Listen, " ") != strings.Join(b.Listen, " ") || a.Protocol != b.Protocol {
			return fmt.Errorf("server at %s:%d: listen/protocol differ in the mailgate half", a.File, a.Line)
		}
		for j := range a.Settings {
			x, y := a.Settings[j], b.Settings[j]
			if x.Directive != y.Directive || x.Value != y.Value || x.Origin != y.Origin {
				return fmt.Errorf("server at %s:%d: %s is %q (%s) in the source, %q (%s) in the mailgate half", a.File, a.Line, x.Directive, x.Value, x.Origin, y.Value, y.Origin)
			}
		}
	}
	return m.nginxTest(ng)
}

// findNginx returns the nginx binary to test with, or "".
func (m *migration) findNginx() string {
	switch m.nginxBin {
	case "none":
		return ""
	case "":
		if p, err := exec.LookPath("nginx"); err == nil {
			return p
		}
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx"
		}
		return ""
	}
	return m.nginxBin
}

// nginxTest runs nginx -T on the nginx half in a copy of the
// configuration directory with the new files in place: nginx must accept
// it and must have read exactly the files, with exactly the content, that
// mailgate's reader read for ng (-T dumps each file read). Files included
// by an absolute path are read where they are, as they will be.
func (m *migration) nginxTest(ng *confparse.Config) error {
	bin := m.findNginx()
	if bin == "" {
		m.notes = append(m.notes, "nginx not found: the nginx half was checked by mailgate's reader only; run nginx -t on it after installing")
		return nil
	}
	stage, err := os.MkdirTemp("", "mailgate-migrate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := copyTree(m.confDir, stage); err != nil {
		return fmt.Errorf("copying %s for nginx -t: %v", m.confDir, err)
	}
	for path, data := range m.out {
		if path == m.mailgate {
			continue
		}
		dst := filepath.Join(stage, m.relName(path))
		os.Remove(dst) // may be a symbolic link
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	conf := filepath.Join(stage, m.relName(m.mainFile))
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-T", "-q", "-p", m.prefix, "-c", conf)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		text := strings.ReplaceAll(stderr.String(), stage+"/", m.confDir)
		return fmt.Errorf("nginx -t refuses the nginx half:\n%s", strings.TrimRight(text, "\n"))
	}
	var want bytes.Buffer
	for _, f := range ng.Files {
		path := f.Path
		if strings.HasPrefix(path, m.confDir) {
			path = filepath.Join(stage, m.relName(path))
		}
		fmt.Fprintf(&want, "# configuration file %s:\n%s\n", path, f.Data)
	}
	if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		var read []string
		for _, l := range strings.Split(stdout.String(), "\n") {
			if strings.HasPrefix(l, "# configuration file ") {
				read = append(read, strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(l, "# configuration file "), ":"), stage+"/", m.confDir))
			}
		}
		var mine []string
		for _, f := range ng.Files {
			mine = append(mine, f.Path)
		}
		return fmt.Errorf("nginx -T read other files or text than mailgate's reader: nginx read %s; mailgate read %s",
			strings.Join(read, ", "), strings.Join(mine, ", "))
	}
	m.nginxUsed = bin
	return nil
}

// copyTree copies a directory (regular files and symbolic links; other
// files are skipped).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
}

// ---- output ----

func (m *migration) paths() []string {
	var ps []string
	for p := range m.out {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		// the main file first, the mailgate half last
		rank := func(p string) int {
			switch p {
			case m.mainFile:
				return 0
			case m.mailgate:
				return 2
			}
			return 1
		}
		if rank(ps[i]) != rank(ps[j]) {
			return rank(ps[i]) < rank(ps[j])
		}
		return ps[i] < ps[j]
	})
	return ps
}

func (m *migration) write(dir string, w io.Writer) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if abs+"/" == m.confDir || strings.HasPrefix(m.confDir, abs+"/") {
		return errors.New("--out must not be the configuration directory or one of its parents: the source stays as it is")
	}
	for _, p := range m.paths() {
		if !strings.HasPrefix(p, m.confDir) {
			return fmt.Errorf("%s is outside %s", p, m.confDir)
		}
		dst := filepath.Join(abs, m.relName(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, m.out[p], 0o644); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s (for %s)\n", dst, p)
	}
	m.writeSummary(w)
	return nil
}

func (m *migration) writeSummary(w io.Writer) {
	fmt.Fprintf(w, "checked: both halves load and read the same directives as %s", m.mainFile)
	if m.nginxUsed != "" {
		fmt.Fprintf(w, "; %s -T accepts the nginx half and reads the same files", m.nginxUsed)
	}
	fmt.Fprintln(w)
	for _, n := range m.notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func (m *migration) writeDiff(w io.Writer) error {
	for _, p := range m.paths() {
		old := m.texts[p]
		from := "a" + p
		if p == m.mailgate {
			old, from = nil, "/dev/null"
		}
		io.WriteString(w, unifiedDiff(from, "b"+p, string(old), string(m.out[p])))
	}
	m.writeSummary(w)
	return nil
}
