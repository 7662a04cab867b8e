package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mailgate/confparse"
	"mailgate/mail"
)

// checkCommand is `mailgate check`: every problem at once, mailgate's own
// warnings too, and optionally each server's effective settings.
func checkCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "report every configuration problem at once",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "c", Usage: "configuration `file`", Value: defaultConfFile},
			&cli.StringFlag{Name: "p", Usage: "prefix `path`", Value: defaultPrefix},
			&cli.StringFlag{Name: "g", Usage: "global `directives`"},
			&cli.StringFlag{Name: "format", Usage: "output format: text or json", Value: "text"},
			&cli.BoolFlag{Name: "effective", Usage: "show each server's merged settings and where each comes from"},
			&cli.BoolFlag{Name: "nginx", Usage: "list only the lines nginx 1.22.1 would refuse (mailgate-only directives and values), with nginx's error"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("%s check: unexpected argument %q", c.App.Name, c.Args().First()), 2)
			}
			format := c.String("format")
			if format != "text" && format != "json" {
				return cli.Exit(fmt.Sprintf("%s check: unknown format %q (want text or json)", c.App.Name, format), 2)
			}
			o := &options{
				prefix: c.String("p"), prefixSet: c.IsSet("p"),
				confFile: c.String("c"), confSet: c.IsSet("c"),
			}
			p := o.resolve()
			host, _ := os.Hostname()
			cfg, diags := confparse.Check(confparse.Options{
				Prefix:   p.prefix,
				ConfFile: p.confArg,
				Globals:  c.String("g"),
				Hostname: strings.ToLower(host),
			})
			if c.Bool("nginx") {
				diags = nginxRefusals(cfg, diags)
			} else if cfg != nil {
				diags = append(diags, probeFiles(cfg, defaultErrorLog)...)
				// -t binds every listening socket, and so does check.
				for _, err := range mail.ProbeBind(cfg) {
					diags = append(diags, confparse.Diag{Sev: confparse.SevEmerg, Msg: err.Error()})
				}
			}
			rep := buildReport(p.confFile, cfg, diags, c.Bool("effective"))
			rep.NginxMode = c.Bool("nginx")
			var err error
			if format == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				err = writeReportText(stdout, c.App.Name, rep)
			}
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if rep.Errors > 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// checkReport is the JSON document `mailgate check --format json` prints.
// Field names are stable; docs/cli.md describes them.
type checkReport struct {
	ConfigFile  string        `json:"config_file"`
	OK          bool          `json:"ok"`
	Errors      int           `json:"errors"`
	Warnings    int           `json:"warnings"`
	Diagnostics []checkDiag   `json:"diagnostics"`
	Servers     []checkServer `json:"servers,omitempty"`
	// NginxMode: check --nginx, where every diagnostic is a line nginx
	// 1.22.1 would refuse.
	NginxMode bool `json:"nginx,omitempty"`
}

type checkDiag struct {
	Severity     string `json:"severity"`
	Message      string `json:"message"`
	File         string `json:"file,omitempty"`
	Line         int    `json:"line,omitempty"`
	CommandLine  bool   `json:"command_line,omitempty"`
	Extra        string `json:"extra,omitempty"`
	MailgateOnly bool   `json:"mailgate_only"`
}

type checkServer struct {
	File     string         `json:"file"`
	Line     int            `json:"line"`
	Protocol string         `json:"protocol"`
	Listen   []string       `json:"listen"`
	Settings []checkSetting `json:"settings"`
}

type checkSetting struct {
	Directive string `json:"directive"`
	Value     string `json:"value"`
	Origin    string `json:"origin"` // "config" or "default"
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
}

func isError(s confparse.Severity) bool { return s <= confparse.SevError }

func buildReport(confFile string, cfg *confparse.Config, diags []confparse.Diag, effective bool) *checkReport {
	rep := &checkReport{ConfigFile: confFile, Diagnostics: []checkDiag{}}
	if cfg != nil && cfg.ConfFile != "" {
		rep.ConfigFile = cfg.ConfFile
	}
	for _, d := range diags {
		d = splitPos(d)
		if isError(d.Sev) {
			rep.Errors++
		} else if d.Sev == confparse.SevWarn {
			rep.Warnings++
		}
		rep.Diagnostics = append(rep.Diagnostics, checkDiag{
			Severity:     d.Sev.String(),
			Message:      d.Msg,
			File:         d.Pos.File,
			Line:         d.Pos.Line,
			CommandLine:  d.Pos.CmdLine,
			Extra:        d.Extra,
			MailgateOnly: d.MailgateOnly,
		})
	}
	rep.OK = rep.Errors == 0
	if effective && cfg != nil && cfg.Mail != nil {
		for _, s := range cfg.Mail.Servers {
			rep.Servers = append(rep.Servers, effectiveServer(s))
		}
	}
	return rep
}

func writeReportText(w io.Writer, prog string, rep *checkReport) error {
	var b strings.Builder
	for _, d := range rep.Diagnostics {
		switch {
		case d.CommandLine:
			b.WriteString("command line: ")
		case d.File != "":
			fmt.Fprintf(&b, "%s:%d: ", d.File, d.Line)
		default:
			fmt.Fprintf(&b, "%s: ", rep.ConfigFile)
		}
		fmt.Fprintf(&b, "[%s] %s", d.Severity, d.Message)
		if d.MailgateOnly {
			b.WriteString(" (mailgate)")
		}
		b.WriteByte('\n')
		if d.Extra != "" {
			for _, line := range strings.Split(d.Extra, "\n") {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	for _, s := range rep.Servers {
		fmt.Fprintf(&b, "\nserver at %s:%d (%s)\n", s.File, s.Line, orNone(s.Protocol))
		for _, st := range s.Settings {
			src := "default"
			if st.Origin == "config" {
				src = st.File + ":" + strconv.Itoa(st.Line)
			}
			fmt.Fprintf(&b, "    %-28s %-40s # %s\n", st.Directive, st.Value, src)
		}
	}
	if rep.NginxMode {
		if rep.OK {
			fmt.Fprintf(&b, "%s: nginx 1.22.1 accepts every line of %s that mailgate accepts\n", prog, rep.ConfigFile)
		} else {
			fmt.Fprintf(&b, "%s: nginx 1.22.1 would refuse %d line(s) of %s\n", prog, rep.Errors, rep.ConfigFile)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	verdict := "ok"
	if !rep.OK {
		verdict = "failed"
	}
	fmt.Fprintf(&b, "%s: configuration file %s check %s: %d error(s), %d warning(s)\n",
		prog, rep.ConfigFile, verdict, rep.Errors, rep.Warnings)
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "no protocol"
	}
	return s
}

// effectiveServer lists a server's merged settings with their sources.
func effectiveServer(s *confparse.Server) checkServer {
	cs := checkServer{File: s.Pos.File, Line: s.Pos.Line, Protocol: s.Protocol, Listen: []string{}}
	for _, l := range s.Listens {
		cs.Listen = append(cs.Listen, listenText(l))
	}
	for _, e := range settingTable {
		st := checkSetting{Directive: e.name, Value: e.value(s), Origin: "default"}
		if pos, ok := s.Sources[e.name]; ok && (pos.File != "" || pos.CmdLine) {
			st.Origin, st.File, st.Line = "config", pos.File, pos.Line
		}
		cs.Settings = append(cs.Settings, st)
	}
	return cs
}

func listenText(l *confparse.Listen) string {
	t := l.Text
	if l.SSL {
		t += " ssl"
	}
	if l.ProxyProtocol {
		t += " proxy_protocol"
	}
	return t
}

// settingTable renders every mail directive's effective value, in
// nginx's module order (core, ssl, pop3, imap, smtp, auth_http, proxy,
// realip).
var settingTable = []struct {
	name  string
	value func(*confparse.Server) string
}{
	{"protocol", func(s *confparse.Server) string { return s.Protocol }},
	{"server_name", func(s *confparse.Server) string { return s.Core.ServerName }},
	{"timeout", func(s *confparse.Server) string { return msDur(s.Core.Timeout) }},
	{"max_errors", func(s *confparse.Server) string { return strconv.Itoa(s.Core.MaxErrors) }},
	{"error_log", func(s *confparse.Server) string { return logTargets(s.Core.ErrorLogs) }},
	{"resolver", func(s *confparse.Server) string { return resolverText(s.Core.Resolver) }},
	{"resolver_timeout", func(s *confparse.Server) string { return msDur(s.Core.ResolverTimeout) }},
	{"ssl", func(s *confparse.Server) string { return onOff(s.SSL.SSLOn) }},
	{"starttls", func(s *confparse.Server) string {
		return [...]string{"off", "on", "only"}[s.SSL.StartTLS%3]
	}},
	{"ssl_certificate", func(s *confparse.Server) string { return strings.Join(s.SSL.Certificates, " ") }},
	{"ssl_certificate_key", func(s *confparse.Server) string { return strings.Join(s.SSL.CertificateKeys, " ") }},
	{"ssl_password_file", func(s *confparse.Server) string { return s.SSL.PasswordFile }},
	{"ssl_dhparam", func(s *confparse.Server) string { return s.SSL.DHParam }},
	{"ssl_ecdh_curve", func(s *confparse.Server) string { return s.SSL.ECDHCurve }},
	{"ssl_protocols", func(s *confparse.Server) string { return strings.Join(s.SSL.Protocols, " ") }},
	{"ssl_ciphers", func(s *confparse.Server) string { return s.SSL.Ciphers }},
	{"ssl_prefer_server_ciphers", func(s *confparse.Server) string { return onOff(s.SSL.PreferServerCiphers) }},
	{"ssl_session_cache", func(s *confparse.Server) string { return s.SSL.SessionCache }},
	{"ssl_session_tickets", func(s *confparse.Server) string { return onOff(s.SSL.SessionTickets) }},
	{"ssl_session_ticket_key", func(s *confparse.Server) string { return strings.Join(s.SSL.SessionTicketKeys, " ") }},
	{"ssl_session_timeout", func(s *confparse.Server) string { return msDur(s.SSL.SessionTimeout) }},
	{"ssl_verify_client", func(s *confparse.Server) string {
		return [...]string{"off", "on", "optional", "optional_no_ca"}[s.SSL.VerifyClient%4]
	}},
	{"ssl_verify_depth", func(s *confparse.Server) string { return strconv.Itoa(s.SSL.VerifyDepth) }},
	{"ssl_client_certificate", func(s *confparse.Server) string { return s.SSL.ClientCertificate }},
	{"ssl_trusted_certificate", func(s *confparse.Server) string { return s.SSL.TrustedCertificate }},
	{"ssl_crl", func(s *confparse.Server) string { return s.SSL.CRL }},
	{"ssl_conf_command", func(s *confparse.Server) string {
		var parts []string
		for _, kv := range s.SSL.ConfCommands {
			parts = append(parts, kv[0]+" "+kv[1])
		}
		return strings.Join(parts, "; ")
	}},
	{"pop3_auth", func(s *confparse.Server) string { return authText(s.POP3.Auth, pop3Methods) }},
	{"pop3_capabilities", func(s *confparse.Server) string { return joinWords(s.POP3.Capabilities) }},
	{"imap_auth", func(s *confparse.Server) string { return authText(s.IMAP.Auth, imapMethods) }},
	{"imap_capabilities", func(s *confparse.Server) string { return joinWords(s.IMAP.Capabilities) }},
	{"imap_client_buffer", func(s *confparse.Server) string { return sizeText(s.IMAP.ClientBuffer) }},
	{"smtp_auth", func(s *confparse.Server) string { return authText(s.SMTP.Auth, smtpMethods) }},
	{"smtp_capabilities", func(s *confparse.Server) string { return joinWords(s.SMTP.Capabilities) }},
	{"smtp_client_buffer", func(s *confparse.Server) string { return sizeText(s.SMTP.ClientBuffer) }},
	{"smtp_greeting_delay", func(s *confparse.Server) string { return msDur(s.SMTP.GreetingDelay) }},
	{"auth_http", func(s *confparse.Server) string { return s.AuthHTTP.URL }},
	{"auth_http_timeout", func(s *confparse.Server) string { return msDur(s.AuthHTTP.Timeout) }},
	{"auth_http_header", func(s *confparse.Server) string {
		var parts []string
		for _, kv := range s.AuthHTTP.Headers {
			parts = append(parts, kv[0]+": "+kv[1])
		}
		return strings.Join(parts, "; ")
	}},
	{"auth_http_pass_client_cert", func(s *confparse.Server) string { return onOff(s.AuthHTTP.PassClientCert) }},
	{"proxy", func(s *confparse.Server) string { return onOff(s.Proxy.On) }},
	{"proxy_buffer", func(s *confparse.Server) string { return sizeText(s.Proxy.Buffer) }},
	{"proxy_timeout", func(s *confparse.Server) string { return msDur(s.Proxy.Timeout) }},
	{"proxy_pass_error_message", func(s *confparse.Server) string { return onOff(s.Proxy.PassErrorMessage) }},
	{"xclient", func(s *confparse.Server) string { return onOff(s.Proxy.XClient) }},
	{"proxy_smtp_auth", func(s *confparse.Server) string { return onOff(s.Proxy.SMTPAuth) }},
	{"proxy_protocol", func(s *confparse.Server) string {
		return [...]string{"off", "on", "v2"}[s.Proxy.ProxyProtocol%3]
	}},
	{"set_real_ip_from", func(s *confparse.Server) string {
		var parts []string
		for _, p := range s.RealIP.From {
			parts = append(parts, p.String())
		}
		if s.RealIP.FromUnix {
			parts = append(parts, "unix:")
		}
		return strings.Join(parts, " ")
	}},
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// msDur renders a duration in nginx time syntax, largest exact unit.
func msDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// sizeText renders a size in nginx size syntax.
func sizeText(n int) string {
	switch {
	case n != 0 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "m"
	case n != 0 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "k"
	}
	return strconv.Itoa(n)
}

type methodName struct {
	bit  confparse.AuthMethods
	name string
}

var (
	pop3Methods = []methodName{{confparse.AuthPlain, "plain"}, {confparse.AuthAPOP, "apop"},
		{confparse.AuthCRAMMD5, "cram-md5"}, {confparse.AuthExternal, "external"}}
	imapMethods = []methodName{{confparse.AuthPlain, "plain"}, {confparse.AuthLogin, "login"},
		{confparse.AuthCRAMMD5, "cram-md5"}, {confparse.AuthExternal, "external"}}
	smtpMethods = []methodName{{confparse.AuthPlain, "plain"}, {confparse.AuthLogin, "login"},
		{confparse.AuthCRAMMD5, "cram-md5"}, {confparse.AuthExternal, "external"}, {confparse.AuthNone, "none"}}
)

func authText(m confparse.AuthMethods, names []methodName) string {
	var parts []string
	for _, n := range names {
		if m&n.bit != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, " ")
}

func logTargets(ts []confparse.LogTarget) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Path+" "+t.Level.String())
	}
	return strings.Join(parts, ", ")
}

func resolverText(r *confparse.Resolver) string {
	if r == nil {
		return "off"
	}
	var parts []string
	for _, a := range r.Addrs {
		parts = append(parts, a.String())
	}
	if r.Valid > 0 {
		parts = append(parts, "valid="+msDur(r.Valid))
	}
	if !r.IPv4 {
		parts = append(parts, "ipv4=off")
	}
	if !r.IPv6 {
		parts = append(parts, "ipv6=off")
	}
	return strings.Join(parts, " ")
}

// posSuffix matches a position that a message carries in its text
// (" in /abs/file:12") rather than in Diag.Pos.
var posSuffix = regexp.MustCompile(` in (/[^\x00]*):([0-9]+)$`)

// splitPos moves a position found at the end of Msg into Pos, so JSON
// consumers always get file and line as fields.
func splitPos(d confparse.Diag) confparse.Diag {
	if d.Pos.File != "" || d.Pos.CmdLine {
		return d
	}
	if strings.HasSuffix(d.Msg, " in command line") {
		d.Msg = strings.TrimSuffix(d.Msg, " in command line")
		d.Pos.CmdLine = true
		return d
	}
	if m := posSuffix.FindStringSubmatchIndex(d.Msg); m != nil {
		line, err := strconv.Atoi(d.Msg[m[4]:m[5]])
		if err == nil {
			d.Pos = confparse.Pos{File: d.Msg[m[2]:m[3]], Line: line}
			d.Msg = d.Msg[:m[0]]
		}
	}
	return d
}

// probeFiles reports the pid and error_log files that nginx -t (and a
// start) could not open, without creating or changing any file: an
// existing file is opened for appending, a missing one needs a writable
// directory.
func probeFiles(cfg *confparse.Config, defaultLog string) []confparse.Diag {
	var out []confparse.Diag
	for _, name := range filesToOpen(cfg, defaultLog) {
		if err := probeWritable(name); err != nil {
			out = append(out, confparse.Diag{
				Sev: confparse.SevEmerg,
				Msg: "open() \"" + name + "\" failed " + errnoText(err),
			})
		}
	}
	return out
}

func probeWritable(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(name)
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return syscall.ENOENT
	case !st.IsDir():
		return syscall.ENOTDIR
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return err
	}
	return nil
}

// joinWords renders a list in nginx syntax: words separated by spaces,
// a word that holds a space, quote, ';', '{', '}' or '#' in double quotes.
func joinWords(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\"';{}#\\") {
			w = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

// nginxRefusals is check --nginx's list: the configuration's own errors
// (nginx refuses those too), then every line mailgate accepts and nginx
// 1.22.1 would refuse, with nginx's message, in file order. A line that
// is an error anyway is listed once.
func nginxRefusals(cfg *confparse.Config, diags []confparse.Diag) []confparse.Diag {
	var out []confparse.Diag
	seen := map[confparse.Pos]bool{}
	for _, d := range diags {
		if isError(d.Sev) && !d.MailgateOnly {
			out = append(out, d)
			seen[splitPos(d).Pos] = true
		}
	}
	if cfg == nil {
		return out
	}
	for _, d := range cfg.NginxRefuses {
		if d.Pos.File != "" && seen[d.Pos] {
			continue
		}
		out = append(out, d)
	}
	return out
}
