package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/errlog"
)

// loadConfig reads the configuration the way nginx's startup does: the
// first error stops it. The notices gathered so far are returned along
// with the error when confparse provides a partial Config.
func loadConfig(p paths, globals string) (*confparse.Config, error) {
	host, _ := os.Hostname()
	return confparse.Load(confparse.Options{
		Prefix:   p.prefix,
		ConfFile: p.confArg,
		Globals:  globals,
		Hostname: strings.ToLower(host),
	})
}

// diagText renders a diagnostic as nginx prints it.
func diagText(d confparse.Diag) string {
	if pos := d.Pos.String(); pos != "" {
		return d.Msg + " in " + pos
	}
	return d.Msg
}

// logNotices prints the warnings nginx would print while loading.
func logNotices(l *earlyLog, cfg *confparse.Config) {
	if cfg == nil {
		return
	}
	for _, d := range cfg.Notices {
		if d.MailgateOnly {
			continue
		}
		l.Logf(d.Sev, "%s", diagText(d))
	}
}

// logLoadError prints the error that stopped loading.
func logLoadError(l *earlyLog, err error) {
	var ce *confparse.Error
	if errors.As(err, &ce) {
		l.Logf(ce.Sev, "%s", ce.Error())
		return
	}
	l.Logf(errlog.Emerg, "%s", err.Error())
}

// afterSyntax reports whether nginx finds this error only after it has
// printed "syntax is ok": the checks the core and events modules run once
// the whole file is parsed.
func afterSyntax(err error) bool {
	var ce *confparse.Error
	return errors.As(err, &ce) && ce.AfterSyntax
}

// splitNotices separates the warnings nginx prints while it reads the
// files from those of its final checks, which come after "syntax is ok".
func splitNotices(cfg *confparse.Config) (during, after *confparse.Config) {
	if cfg == nil {
		return nil, nil
	}
	during, after = &confparse.Config{}, &confparse.Config{}
	for _, d := range cfg.Notices {
		if d.AfterSyntax {
			after.Notices = append(after.Notices, d)
		} else {
			during.Notices = append(during.Notices, d)
		}
	}
	return during, after
}

// testConfig implements -t and -T: load, report, create the pid file and
// the log files as nginx -t does, and on success dump the files for -T.
func testConfig(prog string, o *options, p paths, l *earlyLog, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(p, o.globals)
	during, after := splitNotices(cfg)
	logNotices(l, during)
	confFile := p.confFile
	if cfg != nil && cfg.ConfFile != "" {
		confFile = cfg.ConfFile
	}
	failed := func() int {
		fmt.Fprintf(stderr, "%s: configuration file %s test failed\n", prog, confFile)
		return 1
	}
	if err != nil {
		if afterSyntax(err) {
			if !o.quiet {
				fmt.Fprintf(stderr, "%s: the configuration file %s syntax is ok\n", prog, confFile)
			}
			logNotices(l, after)
		}
		logLoadError(l, err)
		return failed()
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "%s: the configuration file %s syntax is ok\n", prog, confFile)
	}
	logNotices(l, after)
	// nginx -t opens the pid file without truncating it (creating it
	// empty when missing) and opens every error log file.
	for _, name := range filesToOpen(cfg, p.errorLog) {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			l.Logf(errlog.Emerg, "open() \"%s\" failed %s", name, errnoText(err))
			return failed()
		}
		f.Close()
	}
	// Then it binds every listening socket and closes it again.
	if err := mail.TestBind(cfg); err != nil {
		l.Logf(errlog.Emerg, "%s", err.Error())
		return failed()
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "%s: configuration file %s test is successful\n", prog, confFile)
	}
	if o.dump {
		for _, f := range cfg.Files {
			fmt.Fprintf(stdout, "# configuration file %s:\n", f.Path)
			stdout.Write(f.Data)
			io.WriteString(stdout, "\n")
		}
	}
	return 0
}

// filesToOpen lists the pid file and every error log file nginx -t
// opens, in its order (pid first), each once: every file target of an
// error_log anywhere (Config.LogFiles, even one no server uses). Without
// a main-level error_log the default log (-e, or the build default) is
// the main log, and nginx opens it last.
func filesToOpen(cfg *confparse.Config, defaultLog string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, name)
	}
	add(cfg.Core.Pid)
	for _, name := range cfg.LogFiles {
		add(name)
	}
	for _, f := range cfg.AccessLogFiles { // mailgate-only access_log
		add(f.Path)
	}
	if len(cfg.Core.ErrorLogs) == 0 && isLogFile(defaultLog) {
		add(defaultLog)
	}
	return out
}

// isLogFile reports whether an error_log target is a plain file.
func isLogFile(path string) bool {
	return path != "" && path != "stderr" &&
		!strings.HasPrefix(path, "syslog:") && !strings.HasPrefix(path, "memory:")
}
