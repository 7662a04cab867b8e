// Package confparse reads nginx.conf files with nginx's own semantics and
// produces one typed, merged configuration for the mail proxy.
//
// It has its own tokenizer (token.go re-implements nginx's token reader;
// gonginx appears only in gonginx_test.go, which shows its traps next to
// this package's handling of the same input) and owns includes, unquoting, positions, the directive table
// (names, contexts, arity, defaults, merge rules) and nginx's validation
// messages.
//
// This file is the contract the other packages (mail, auth, proxy, cmd) read.
// Everything in it is the *merged* result: a Server already carries the values
// it inherited from mail{} or the built-in defaults.
package confparse

import (
	"net/netip"
	"strconv"
	"time"

	"mailgate/mail/errlog"
)

// Pos is where a directive was read. nginx reports the line on which the
// terminating ';' or '{' was read, and the absolute file name.
// A zero Pos with CmdLine set means the -g command line.
type Pos struct {
	File    string
	Line    int
	CmdLine bool
}

// String renders the position the way nginx appends it to messages:
// "FILE:LINE" or "command line".
func (p Pos) String() string {
	if p.CmdLine {
		return "command line"
	}
	if p.File == "" {
		return ""
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Config is a whole loaded nginx.conf.
type Config struct {
	Prefix   string // with a trailing '/'
	ConfFile string // absolute path of the main file
	ConfDir  string // directory of ConfFile, for include and ssl_* paths
	Files    []File // every file read, in parse order, each once (for -T)
	Core     Core   // main-context settings that matter to mailgate
	Mail     *Mail  // nil when there is no mail{} block
	Notices  []Diag // warnings and notices produced while loading
	// LogFiles is every error_log target that is a file (main, mail{},
	// server{} and -g alike), once each, in the order nginx registers
	// them; nginx -t opens them all, even those of a mail{} without
	// servers or overridden by every server.
	LogFiles []string
	// NginxRefuses is every line nginx 1.22.1 would refuse although
	// mailgate accepts it: mailgate-only directives, and values of newer
	// nginx releases. Msg is nginx 1.22.1's error. `mailgate check
	// --nginx` prints them.
	NginxRefuses []Diag
	// AccessLogFiles is every access_log file, once each (mailgate-only,
	// accesslog.go); every AccessLog of a file points to its entry.
	AccessLogFiles []*AccessLogFile
	// Trace is every directive read, in nginx's reading order, includes
	// expanded (the include lines themselves left out); only with
	// Options.Trace. Tools compare two configurations with it.
	Trace []TraceEntry
}

// TraceEntry is one directive as read.
type TraceEntry struct {
	Context string   // enclosing block names, outermost first, space-separated ("" for main, "mail server")
	Words   []string // name and arguments, unquoted
	Block   bool     // it opened a block
	Pos     Pos
}

// File is one configuration file as read from disk, for -T.
type File struct {
	Path string
	Data []byte
}

// Severity of a diagnostic or a log target: nginx's log levels, the same
// type the error_log formatter filters by.
type Severity = errlog.Level

const (
	SevEmerg  = errlog.Emerg
	SevAlert  = errlog.Alert
	SevCrit   = errlog.Crit
	SevError  = errlog.Error
	SevWarn   = errlog.Warn
	SevNotice = errlog.Notice
	SevInfo   = errlog.Info
	SevDebug  = errlog.Debug
)

// Diag is one message about the configuration: an nginx-identical message
// (Msg, without " in FILE:LINE") plus where it applies. Extra carries
// mailgate-only explanations for `mailgate check` (never printed by -t).
type Diag struct {
	Sev   Severity
	Msg   string
	Pos   Pos
	Extra string
	// MailgateOnly marks diagnostics nginx itself would never print
	// (check's extra warnings). -t must not print them.
	MailgateOnly bool
	// AfterSyntax marks errors nginx finds only after the whole file has
	// been parsed, in the core modules' final checks, so that -t prints
	// "syntax is ok" before them: `no "events" section in configuration`
	// and "N worker_connections are not enough for M listening sockets".
	AfterSyntax bool
}

// Core holds the main-context directives mailgate acts on. The rest of the
// core directives are accepted and ignored.
type Core struct {
	Pid                   string      // absolute path; default DefaultPid
	ErrorLogs             []LogTarget // main-level error_log (empty: the default)
	Daemon                bool        // default true
	MasterProcess         bool        // default true
	WorkerProcesses       int         // -1 for auto
	WorkerConnections     int         // events{}; default 512
	WorkerShutdownTimeout time.Duration
	WorkerRlimitNofile    int
	User                  string
	Group                 string
	Admin                 Admin // mailgate-only: admin_listen, admin_pprof (admin.go)
}

// LogTarget is one error_log: a file (absolute path), "stderr", or a
// "syslog:..."/"memory:..." target kept as written.
type LogTarget struct {
	Path  string
	Level Severity // default SevError
	Pos   Pos
	// Syslog is set for a "syslog:..." target: its parsed parameters.
	Syslog *SyslogTarget
}

// SyslogTarget is an error_log syslog: target's parameters, with nginx's
// defaults filled in.
type SyslogTarget struct {
	Network    string // "udp", or "unixgram" for server=unix:PATH
	Addr       string // "ip:port" (default port 514) or the socket path
	Facility   string // default "local7"
	Severity   string // default "info"
	Tag        string // default "nginx"
	NoHostname bool
}

// Mail is the merged mail{} block.
type Mail struct {
	Pos     Pos       // line of "mail {"
	Servers []*Server // in file order
	// Listens is every listen entry of every server in file order, after
	// expansion of port ranges and host names. Binding groups them as nginx
	// does (see mail.Server).
	Listens []*Listen
}

// Protocol names, as sent in Auth-Protocol.
const (
	ProtoPOP3 = "pop3"
	ProtoIMAP = "imap"
	ProtoSMTP = "smtp"
)

// Server is one mail server{} block with every value merged.
type Server struct {
	Pos      Pos // line of "server {"
	Protocol string
	Listens  []*Listen

	Core     CoreConf
	SSL      SSLConf
	POP3     POP3Conf
	IMAP     IMAPConf
	SMTP     SMTPConf
	AuthHTTP AuthHTTPConf
	Proxy    ProxyConf
	RealIP   RealIPConf

	// AccessLogs are the mailgate-only access_log lines in effect (the
	// server's own, else mail{}'s); nil: off (accesslog.go).
	AccessLogs []*AccessLog

	// Sources says where each effective value came from, by directive
	// name: the server's own line, the mail-level line, or absent for a
	// built-in default. Used by `mailgate check --effective`.
	Sources map[string]Pos
}

// Listen is one resolved listen entry (one address:port).
type Listen struct {
	Server *Server
	Pos    Pos

	Network string         // "tcp" or "unix"
	Addr    netip.AddrPort // tcp; a wildcard is 0.0.0.0 or ::
	Path    string         // unix
	// Text is how nginx names this entry in logs ("server: ..."):
	// "127.0.0.1:18143", "0.0.0.0:110", "[::1]:143", "unix:/path".
	Text string

	SSL           bool
	ProxyProtocol bool
	Bind          bool // explicit bind, or implied by a socket option
	Backlog       int  // default 511
	RcvBuf        int  // 0: unset
	SndBuf        int  // 0: unset
	IPv6Only      bool // default true
	Multipath     bool
	KeepAlive     KeepAlive
}

// KeepAlive is so_keepalive=on|off|idle:intvl:cnt. Zero durations/counts
// keep the OS default.
type KeepAlive struct {
	Set      bool
	On       bool
	Idle     time.Duration
	Interval time.Duration
	Count    int
}

// CoreConf is ngx_mail_core_module's server settings.
type CoreConf struct {
	Timeout         time.Duration // default 60s
	ServerName      string        // default: hostname, lowercased
	ErrorLogs       []LogTarget   // empty: fall back to the main-level logs
	Resolver        *Resolver     // nil: off
	ResolverTimeout time.Duration // default 30s
	MaxErrors       int           // default 5
}

// Resolver is the resolver directive (used by SMTP only).
type Resolver struct {
	Addrs []netip.AddrPort // port 53 unless given
	Valid time.Duration    // 0: honour TTLs
	IPv4  bool             // default true
	IPv6  bool             // default true
	Pos   Pos
}

// StartTLS is the starttls directive's value.
type StartTLS int

const (
	StartTLSOff StartTLS = iota
	StartTLSOn
	StartTLSOnly
)

// VerifyClient is ssl_verify_client's value.
type VerifyClient int

const (
	VerifyOff VerifyClient = iota
	VerifyOn
	VerifyOptional
	VerifyOptionalNoCA
)

// SSLConf is ngx_mail_ssl_module's server settings. File paths are
// absolute (resolved against the config directory).
type SSLConf struct {
	SSLOn                  bool // deprecated "ssl on" (1.22.1)
	StartTLS               StartTLS
	Certificates           []string
	CertificateKeys        []string
	PasswordFile           string
	DHParam                string
	ECDHCurve              string   // default "auto"
	Protocols              []string // e.g. "TLSv1.2","TLSv1.3"; default TLSv1.2 TLSv1.3 (newer nginx)
	Ciphers                string   // default "HIGH:!aNULL:!MD5"
	PreferServerCiphers    bool
	SessionCache           string // as written; default "none"
	SessionTickets         bool   // default true
	SessionTicketKeys      []string
	SessionTimeout         time.Duration // default 5m
	VerifyClient           VerifyClient
	VerifyDepth            int // default 1
	ClientCertificate      string
	TrustedCertificate     string
	CRL                    string
	ConfCommands           [][2]string
	CertificateCompression bool
	SNI                    SNIConf // mailgate-only (sni.go)
}

// AuthMethods is a bitmask of SASL/login methods, for pop3_auth, imap_auth
// and smtp_auth.
type AuthMethods uint8

const (
	AuthPlain AuthMethods = 1 << iota
	AuthLogin
	AuthAPOP
	AuthCRAMMD5
	AuthExternal
	AuthNone
	// mailgate-only values (oauthbearer, xoauth2): nginx refuses them with
	// `invalid value`; `mailgate check` lists them.
	AuthOAuthBearer
	AuthXOAuth2
)

// AuthMailgateOnly are the bits of the mailgate-only *_auth values.
const AuthMailgateOnly = AuthOAuthBearer | AuthXOAuth2

// POP3Conf is ngx_mail_pop3_module's settings.
type POP3Conf struct {
	Auth         AuthMethods // default AuthPlain (which also enables LOGIN)
	Capabilities []string    // default TOP USER UIDL
}

// IMAPConf is ngx_mail_imap_module's settings.
type IMAPConf struct {
	Auth         AuthMethods // default AuthPlain
	Capabilities []string    // default IMAP4 IMAP4rev1 UIDPLUS
	ClientBuffer int         // default 4096 (page size)

	// mailgate-only (imapid.go, docs/imap.md "ID"): ID answers ID before
	// login with IDFields (nil: NIL); ForwardID sends the upstream an ID
	// with the client's fields and addresses before the login.
	ID        bool
	IDFields  [][2]string
	ForwardID bool
}

// SMTPConf is ngx_mail_smtp_module's settings.
type SMTPConf struct {
	Auth          AuthMethods // default AuthPlain|AuthLogin
	Capabilities  []string    // default empty
	ClientBuffer  int         // default 4096
	GreetingDelay time.Duration
}

// AuthHTTPConf is ngx_mail_auth_http_module's settings.
type AuthHTTPConf struct {
	URL     string // as written in the directive, for messages
	Network string // "tcp" or "unix"
	Addr    string // dial address: "ip:port" or a socket path
	// Peer is how nginx names the auth server in log lines
	// ("auth http server 127.0.0.1:9901 ..."): "ip:port" or "unix:PATH".
	Peer           string
	Host           string        // Host header: URL host without port; "localhost" for unix
	URI            string        // default "/"
	Timeout        time.Duration // default 60s
	Headers        [][2]string   // auth_http_header name/value, in order
	PassClientCert bool
	Pos            Pos
	TLS            bool // https:// (mailgate-only, needs auth_http_ssl_*)
	// Resolve (mailgate-only auth_http_resolve): an Auth-Server host name
	// is resolved through resolver instead of refused.
	Resolve bool

	// mailgate-only extensions (see docs/auth_http.md); zero values keep
	// nginx's behaviour.
	AuthHTTPExt
}

// AuthHTTPTarget is one auth server: auth_http's or an auth_http_backup's.
type AuthHTTPTarget struct {
	URL, Network, Addr, Peer, Host, URI string
	TLS                                 bool // https:// (needs auth_http_ssl)
}

// AuthHTTPExt holds the mailgate-only auth_http directives.
type AuthHTTPExt struct {
	// Keepalive is the idle-connection pool size per auth server
	// (auth_http_keepalive N); 0 is nginx's one connection per request.
	Keepalive        int
	KeepaliveTimeout time.Duration // default 60s
	// Backups are the auth_http_backup servers, tried in order after
	// auth_http; FailTimeout is how long a failed server is skipped.
	Backups     []AuthHTTPTarget
	FailTimeout time.Duration // default 10s

	// Cache is "" (off), "memory" or "redis".
	Cache          string
	CacheSize      int    // memory: bytes (default 1m)
	CacheAddr      string // redis: host:port
	CacheDB        int    // redis: database number
	CacheValid     time.Duration
	CacheValidFail time.Duration // 0: failures are not cached
	CacheSecret    string        // "": a random secret per process

	// Throttle: failed logins allowed per minute per client address and
	// per login (0: no limit), and the delay before the failure reply.
	ThrottleIP, ThrottleLogin int
	ThrottleWait              time.Duration

	// SSL: auth_http over https.
	SSL AuthHTTPSSL
}

// AuthHTTPSSL is the TLS client setting for https:// auth servers.
type AuthHTTPSSL struct {
	Enabled            bool   // auth_http_ssl on
	Verify             bool   // auth_http_ssl_verify (default on)
	TrustedCertificate string // auth_http_ssl_trusted_certificate
	Name               string // auth_http_ssl_name ("" : the URL host)
	Certificate, Key   string // client certificate
}

// ProxyProtocolVersion is the proxy_protocol directive's value.
type ProxyProtocolVersion int

const (
	ProxyProtocolOff ProxyProtocolVersion = iota
	ProxyProtocolV1
	ProxyProtocolV2
)

// ProxyConf is ngx_mail_proxy_module's settings.
type ProxyConf struct {
	On               bool          // accepted, never read (as in nginx)
	Buffer           int           // default 4096
	Timeout          time.Duration // default 24h
	PassErrorMessage bool
	XClient          bool // default true
	SMTPAuth         bool
	ProxyProtocol    ProxyProtocolVersion
	TLS              UpstreamTLSConf // mailgate-only proxy_ssl_*, proxy_starttls (upstream_tls.go)
}

// RealIPConf is ngx_mail_realip_module's settings.
type RealIPConf struct {
	From     []netip.Prefix
	FromUnix bool
}

// UsesTLS reports whether the server speaks TLS at all: a "listen ...
// ssl", "ssl on" or a starttls other than off. nginx loads certificates
// only for such servers.
func (s *Server) UsesTLS() bool {
	if s.SSL.SSLOn || s.SSL.StartTLS != StartTLSOff {
		return true
	}
	for _, l := range s.Listens {
		if l.SSL {
			return true
		}
	}
	return false
}
