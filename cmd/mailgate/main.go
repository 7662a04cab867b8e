// Command mailgate is a drop-in replacement for the nginx mail proxy.
//
// It takes nginx's command line (-?hvVtTq, -s, -p, -e, -c, -g) and prints
// nginx's texts, with the name it was started as in place of "nginx", so a
// symlink called nginx behaves like nginx. Subcommands (check) are
// mailgate's own and run through urfave/cli.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"mailgate/mail/errlog"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run is main without the process exit, for tests.
func run(argv []string, stdout, stderr io.Writer) int {
	prog := "mailgate"
	if len(argv) > 0 && argv[0] != "" {
		prog = filepath.Base(argv[0])
	}
	args := argv[1:]
	if len(args) > 0 && (args[0] == "help" || args[0] == "--help" && prog != "nginx") {
		return runHelp(prog, argv, stdout, stderr)
	}
	if len(args) > 0 && isSubcommand(args[0]) {
		return runApp(prog, argv, stdout, stderr)
	}
	return runNginx(prog, args, stdout, stderr)
}

// isSubcommand tells mailgate's own subcommands from nginx's command line.
// Anything else (flags, no arguments, stray words) is nginx's business,
// and nginx rejects stray words with "invalid option".
func isSubcommand(word string) bool {
	return word == "check" || word == "migrate"
}

// runHelp prints the one help page: nginx's flags and mailgate's
// subcommands, as -h does but on stdout. "help check" is the check
// subcommand's own page. Started as nginx, "--help" stays nginx's invalid
// option.
func runHelp(prog string, argv []string, stdout, stderr io.Writer) int {
	args := argv[1:]
	if args[0] == "help" && len(args) > 1 {
		if args[1] == "check" && len(args) == 2 {
			return runApp(prog, []string{argv[0], "check", "--help"}, stdout, stderr)
		}
		if len(args) > 2 || args[1] != "help" {
			fmt.Fprintf(stderr, "%s: no help for %q; \"%s help\" lists the flags and commands\n", prog, strings.Join(args[1:], " "), prog)
			return 2
		}
	}
	if len(args) > 1 && args[0] == "--help" {
		fmt.Fprintf(stderr, "%s: --help takes no arguments\n", prog)
		return 2
	}
	writeVersion(stdout, prog)
	writeUsage(stdout, prog)
	return 0
}

// runApp runs the urfave/cli application for the subcommands.
func runApp(prog string, argv []string, stdout, stderr io.Writer) int {
	code := 0
	app := &cli.App{
		Name:    prog,
		Usage:   "nginx-compatible mail proxy",
		Version: version,
		// -v/-V belong to the nginx command line; the app only serves
		// subcommands.
		HideVersion: true,
		// "help" is runHelp's page, not urfave's.
		HideHelpCommand: true,
		Writer:          stdout,
		ErrWriter:       stderr,
		ExitErrHandler: func(_ *cli.Context, err error) {
			if err == nil {
				return
			}
			if ec, ok := err.(cli.ExitCoder); ok {
				if msg := ec.Error(); msg != "" {
					fmt.Fprintln(stderr, msg)
				}
				code = ec.ExitCode()
				return
			}
			// Anything that is not a cli.Exit from an action is a
			// usage error (unknown flag, bad value).
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			code = 2
		},
		Commands: []*cli.Command{checkCommand(stdout, stderr), migrateCommand(stdout, stderr)},
	}
	if err := app.Run(argv); err != nil && code == 0 {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		code = 2
	}
	return code
}

// runNginx handles nginx's own command line.
func runNginx(prog string, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	if o.showVersion {
		writeVersion(stderr, prog)
		if o.showHelp {
			writeUsage(stderr, prog)
		}
		if o.showConfigure {
			writeConfigure(stderr)
		}
		if !o.test {
			return 0
		}
	}
	p := o.resolve()
	min := errlog.Notice
	if o.test {
		min = errlog.Info
	}
	l := newEarlyLog(prog, p.errorLog, stderr, min)
	defer l.Close()
	switch {
	case o.test:
		return testConfig(prog, o, p, l, stdout, stderr)
	case o.signal != "":
		return sendSignal(o, p, l)
	}
	return serve(prog, o, p, l)
}
