package confparse

import (
	"fmt"
	"slices"
	"strings"

	"mailgate/mail/errlog"
)

var syslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp",
	"clock", "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2", "local3",
	"local4", "local5", "local6", "local7"}

// parseSyslog validates an error_log "syslog:" target as nginx's
// ngx_syslog_process_conf does and returns its settings, or nginx's
// error message.
func parseSyslog(spec string) (*SyslogTarget, string) {
	st := &SyslogTarget{Facility: "local7", Severity: "info", Tag: "nginx"}
	var haveServer, haveFacility, haveSeverity, haveTag bool
	for _, p := range strings.Split(spec, ",") {
		switch {
		case strings.HasPrefix(p, "server="):
			if haveServer {
				return nil, `duplicate syslog "server"`
			}
			haveServer = true
			u, e := parseURL(p[7:], urlOpts{defaultPort: 514})
			if e != "" {
				return nil, fmt.Sprintf(`%s in syslog server "%s"`, e, p[7:])
			}
			if u.unix {
				st.Network, st.Addr = "unixgram", u.path
			} else {
				st.Network, st.Addr = "udp", u.addrs[0].String()
			}
		case strings.HasPrefix(p, "facility="):
			if haveFacility {
				return nil, `duplicate syslog "facility"`
			}
			haveFacility = true
			v := p[9:]
			if !slices.Contains(syslogFacilities, v) {
				return nil, fmt.Sprintf(`unknown syslog facility "%s"`, v)
			}
			st.Facility = v
		case strings.HasPrefix(p, "severity="):
			if haveSeverity {
				return nil, `duplicate syslog "severity"`
			}
			haveSeverity = true
			v := p[9:]
			if _, ok := errlog.ParseLevel(v); !ok {
				return nil, fmt.Sprintf(`unknown syslog severity "%s"`, v)
			}
			st.Severity = v
		case strings.HasPrefix(p, "tag="):
			if haveTag {
				return nil, `duplicate syslog "tag"`
			}
			haveTag = true
			v := p[4:]
			if len(v) > 32 {
				return nil, "syslog tag length exceeds 32"
			}
			for _, c := range []byte(v) {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
					return nil, `syslog "tag" only allows alphanumeric characters and underscore`
				}
			}
			st.Tag = v
		case p == "nohostname":
			st.NoHostname = true
		default:
			// printed as a C string, up to a NUL byte
			return nil, fmt.Sprintf(`unknown syslog parameter "%s"`, cstr(p))
		}
	}
	if !haveServer {
		return nil, "no syslog server specified"
	}
	return st, ""
}
