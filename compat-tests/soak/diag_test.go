package soak

// Diagnostics of a running proxy and its logs: descriptors by kind, the
// peers of its TCP sockets, and error.log, Dovecot and Postfix logs
// counted by message.

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// countTable renders counts sorted by key, one "  count key" line each.
func countTable(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %6d %s\n", counts[k], k)
	}
	return b.String()
}

// openSockets describes pid's TCP sockets for a failure message: each
// socket's local and remote port, state, and the name of whatever
// listens on the remote port (names: port → what).
func openSockets(pid int, names map[int]string) string {
	inodes := map[string]int{}
	counts := map[string]int{}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, ent := range ents {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, ent.Name()))
		if err != nil {
			continue
		}
		if strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")]++
		} else if !strings.HasPrefix(l, "pipe:") {
			counts["file "+l]++
		}
	}
	states := map[string]string{"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
		"0A": "LISTEN", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "0B": "CLOSING", "02": "SYN_SENT"}
	var data []byte
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(f)
		data = append(data, b...)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || inodes[f[9]] == 0 {
			continue
		}
		n := inodes[f[9]]
		delete(inodes, f[9])
		port := func(a string) int {
			_, h, _ := strings.Cut(a, ":")
			n, _ := strconv.ParseInt(h, 16, 32)
			return int(n)
		}
		lp, rp := port(f[1]), port(f[2])
		what := names[rp]
		if what == "" {
			what = names[lp]
			if what != "" {
				what = "client of " + what
			}
		}
		counts[fmt.Sprintf("tcp %s %s", states[f[3]], what)] += n
	}
	for range inodes {
		counts["socket, not TCP (unix, netlink...)"]++
	}
	return countTable(counts)
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// portNames names the ports of everything in e.
func (e *soakEnv) portNames() map[int]string {
	m := map[int]string{portOf(e.dc.POP3Addr): "dovecot pop3", portOf(e.dc.IMAPAddr): "dovecot imap",
		portOf(e.pf.Addr): "postfix", portOf(e.as.Addr()): "auth_http"}
	for k, p := range e.faults {
		m[portOf(p.Addr())] = "fault proxy " + k
	}
	for _, proto := range protocols {
		m[portOf(e.mg.Addr(proto))] = "mailgate " + proto
	}
	return m
}

// fdCount is a process's descriptors by kind.
type fdCount struct{ sockets, pipes, other int }

func (c fdCount) total() int { return c.sockets + c.pipes + c.other }

func (c fdCount) String() string {
	return fmt.Sprintf("%d sockets, %d pipes, %d other", c.sockets, c.pipes, c.other)
}

func countFDs(pid int) fdCount {
	var c fdCount
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, ent := range ents {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, ent.Name()))
		switch {
		case err != nil:
		case strings.HasPrefix(l, "socket:"):
			c.sockets++
		case strings.HasPrefix(l, "pipe:"):
			c.pipes++
		default:
			c.other++
		}
	}
	return c
}

var (
	logMsgRe = regexp.MustCompile(`\[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client: |$)`)
	addrRe   = regexp.MustCompile(`[0-9][0-9.:]*`)
)

// logSummary counts error.log lines by level and message (without the
// client and server details, quoted strings and numbers).
func logSummary(log string) string {
	counts := map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		if m := logMsgRe.FindStringSubmatch(l); m != nil {
			// Quoted parts (logins, upstream garbage that may hold quotes
			// and line ends) are blanked from the first quote on.
			msg, _, quoted := strings.Cut(strings.TrimSpace(m[2]), `"`)
			if quoted {
				msg += `"…"`
			}
			counts["["+m[1]+"] "+addrRe.ReplaceAllString(msg, "N")]++
		}
	}
	return countTable(counts)
}

var upstreamMsgRe = regexp.MustCompile(`(?i)(warning|error|fatal|panic)[:(].*`)

// upstreamSummary counts Dovecot's or Postfix's warning and error lines
// with numbers and addresses blanked.
func upstreamSummary(log string) string {
	counts := map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		if m := upstreamMsgRe.FindString(l); m != "" {
			if len(m) > 150 {
				m = m[:150]
			}
			counts[addrRe.ReplaceAllString(m, "N")]++
		}
	}
	return countTable(counts)
}

// grepAll returns the lines of log that contain s.
func grepAll(log, s string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// grepLines is the first max lines of log that contain s, joined.
func grepLines(log, s string, max int) string {
	lines := grepAll(log, s)
	return strings.Join(lines[:min(max, len(lines))], "\n")
}
