package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"mailgate/confparse"
)

// version is mailgate's own version; -ldflags "-X main.version=..." sets it.
var version = "0.1.0"

// nginxCompat is the nginx release whose mail configuration files,
// command line and messages mailgate reproduces.
const nginxCompat = "1.22.1"

// writeVersion prints the -v line. mailgate does not pretend to be nginx:
// the product after "version:" is always mailgate.
func writeVersion(w io.Writer, prog string) {
	fmt.Fprintf(w, "%s version: mailgate/%s\n", prog, version)
}

// writeConfigure prints the extra -V lines.
func writeConfigure(w io.Writer) {
	fmt.Fprintf(w, "built with %s (%s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "compatible with nginx/%s mail configuration files\n", nginxCompat)
	fmt.Fprintf(w, "configure arguments: --prefix=%s --conf-path=%s --error-log-path=%s --pid-path=%s\n",
		strings.TrimSuffix(defaultPrefix, "/"), defaultConfFile, defaultErrorLog, confparse.DefaultPid)
}

// writeUsage prints the -h text, laid out like nginx's with prog in place
// of "nginx". When started under another name than nginx it also lists
// mailgate's subcommands.
func writeUsage(w io.Writer, prog string) {
	head := "Usage: " + prog + " "
	pad := strings.Repeat(" ", len(head))
	fmt.Fprintf(w, "%s[-?hvVtTq] [-s signal] [-p prefix]\n", head)
	fmt.Fprintf(w, "%s[-e filename] [-c filename] [-g directives]\n\n", pad)
	fmt.Fprintf(w, "Options:\n"+
		"  -?,-h         : this help\n"+
		"  -v            : show version and exit\n"+
		"  -V            : show version and configure options then exit\n"+
		"  -t            : test configuration and exit\n"+
		"  -T            : test configuration, dump it and exit\n"+
		"  -q            : suppress non-error messages during configuration testing\n"+
		"  -s signal     : send signal to a master process: stop, quit, reopen, reload\n"+
		"  -p prefix     : set prefix path (default: %s)\n"+
		"  -e filename   : set error log file (default: %s)\n"+
		"  -c filename   : set configuration file (default: %s)\n"+
		"  -g directives : set global directives out of configuration file\n\n",
		defaultPrefix, defaultErrorLog, defaultConfFile)
	if prog != "nginx" {
		fmt.Fprintf(w, "Commands:\n"+
			"  %[1]s check [-c file] [-p prefix] [-g directives] [--format text|json] [--effective] [--nginx]\n"+
			"                : report every configuration problem at once\n"+
			"  %[1]s migrate [-c file] [-p prefix] (--out dir | --diff)\n"+
			"                : move mail{} out of an nginx.conf into mailgate.conf\n"+
			"  %[1]s help [check]\n"+
			"                : this help (also --help), or check's options\n\n", prog)
	}
}
