package main

import (
	"fmt"
	"syscall"
)

// Build-time defaults. They are Debian's nginx defaults, so that mailgate
// dropped onto a Debian box reads the same files nginx would.
const (
	defaultPrefix   = "/usr/share/nginx/"
	defaultConfFile = "/etc/nginx/nginx.conf"
	// defaultErrorLog is the early error log when -e is not given. Debian
	// builds nginx with --error-log-path=stderr, and stderr is also the
	// natural choice for a Go daemon.
	defaultErrorLog = "stderr"
)

// options is nginx's command line after parsing.
type options struct {
	showVersion   bool // -v, -V, -h, -?
	showHelp      bool // -h, -?
	showConfigure bool // -V
	test          bool // -t, -T
	dump          bool // -T
	quiet         bool // -q

	signal   string // -s word
	prefix   string // -p, as given ("" when absent)
	errorLog string // -e, as given ("" when absent)
	confFile string // -c, as given ("" when absent)
	globals  string // -g ("" when absent)

	prefixSet, errorLogSet, confSet, globalsSet bool
}

// signals maps the -s words to the signals sent to the master process.
var signals = map[string]syscall.Signal{
	"stop":   syscall.SIGTERM,
	"quit":   syscall.SIGQUIT,
	"reopen": syscall.SIGUSR1,
	"reload": syscall.SIGHUP,
}

// flagError is an option error; its text is printed as "<prog>: <text>".
type flagError string

func (e flagError) Error() string { return string(e) }

// parseFlags reads nginx's command line (without argv[0]) the way nginx
// does: flags may be combined ("-tq"), a flag's argument may be attached
// ("-cfile") or be the next word, and the first problem stops parsing.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if len(arg) == 0 || arg[0] != '-' {
			return nil, flagError(fmt.Sprintf("invalid option: %q", arg))
		}
		rest := arg[1:]
	chars:
		for len(rest) > 0 {
			c := rest[0]
			rest = rest[1:]
			switch c {
			case '?', 'h':
				o.showVersion, o.showHelp = true, true
			case 'v':
				o.showVersion = true
			case 'V':
				o.showVersion, o.showConfigure = true, true
			case 't':
				o.test = true
			case 'T':
				o.test, o.dump = true, true
			case 'q':
				o.quiet = true
			case 'p', 'e', 'c', 'g', 's':
				var val string
				switch {
				case rest != "":
					val = rest
				case i+1 < len(args):
					i++
					val = args[i]
				default:
					return nil, flagError(fmt.Sprintf("option \"-%c\" requires %s", c, argName(c)))
				}
				switch c {
				case 'p':
					o.prefix, o.prefixSet = val, true
				case 'e':
					o.errorLog, o.errorLogSet = val, true
				case 'c':
					o.confFile, o.confSet = val, true
				case 'g':
					o.globals, o.globalsSet = val, true
				case 's':
					if _, ok := signals[val]; !ok {
						return nil, flagError(fmt.Sprintf("invalid option: \"-s %s\"", val))
					}
					o.signal = val
				}
				break chars
			default:
				return nil, flagError(fmt.Sprintf("invalid option: \"%c\"", c))
			}
		}
	}
	return o, nil
}

func argName(c byte) string {
	switch c {
	case 'p':
		return "directory name"
	case 'e', 'c':
		return "file name"
	}
	return "parameter"
}

// paths holds the resolved prefix, config file and early error log.
type paths struct {
	prefix   string // with a trailing '/'
	confFile string // absolute unless the prefix is relative
	confArg  string // -c as given (or the default), for confparse to resolve
	errorLog string // "stderr" or a file path
}

// resolve applies nginx's rules: -p gets a trailing '/', and a relative
// -c or -e is taken against the prefix, not the working directory.
func (o *options) resolve() paths {
	p := paths{prefix: defaultPrefix, confFile: defaultConfFile, confArg: defaultConfFile, errorLog: defaultErrorLog}
	if o.prefixSet {
		p.prefix = o.prefix
		if p.prefix != "" && p.prefix[len(p.prefix)-1] != '/' {
			p.prefix += "/"
		}
	}
	if o.confSet {
		p.confFile = fullName(p.prefix, o.confFile)
		p.confArg = o.confFile
	}
	if o.errorLogSet {
		if o.errorLog == "stderr" {
			p.errorLog = "stderr"
		} else {
			p.errorLog = fullName(p.prefix, o.errorLog)
		}
	}
	return p
}

// fullName joins a relative name to the prefix without cleaning it, as
// nginx does ("-c ./a.conf" stays "<prefix>./a.conf").
func fullName(prefix, name string) string {
	if name != "" && name[0] == '/' {
		return name
	}
	return prefix + name
}
