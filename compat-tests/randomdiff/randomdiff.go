// Package randomdiff runs seeded random sessions through nginx and
// mailgate and compares them like harness.Suite.Run, excusing a
// difference only by the declared rules the generator flagged for the
// session, in their exact form. The POP3 and SMTP random tests generate
// their sessions and share this driver and its timing rules.
package randomdiff

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailgate/compat-tests/harness"
)

// EnvInt is $name as a positive number, else def.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Rule is a declared difference (newer nginx, a deliberate
// improvement) in the exact form it takes: Norm rewrites both rendered
// transcripts so that only that difference disappears. A random session
// whose transcripts differ is excused only if they are identical after the
// rules the generator flagged for it.
type Rule struct {
	Reason string
	Norm   harness.Normalizer
}

// Case is one generated session.
type Case struct {
	Scenario harness.Scenario
	// Rules are the declared differences this session may show.
	Rules []Rule
	// Secrets must never appear in mailgate's error.log: the passwords
	// sent and the base64 credentials holding them.
	Secrets []string
	// Chunks are the packets sent, for a reproducer.
	Chunks []string
	// Whole, if set, excuses any difference of the session (a declared
	// difference that changes everything after it).
	Whole string
}

var loginField = regexp.MustCompile(`(?m), login: "[^\n]*?"(, |$)`)

// Run runs every case against nginx and mailgate and compares the
// transcripts like Suite.Run, excusing only the declared rules flagged for
// a case, in their exact form. It also asserts that no secret reached
// mailgate's error.log (every level the config logs).
func Run(t *testing.T, s *harness.Suite, cases []Case) {
	var total, identical, declared, failures int
	for _, rc := range cases {
		t.Run(rc.Scenario.Name, func(t *testing.T) {
			total++
			outcome := "failure"
			defer func() {
				switch {
				case t.Failed():
					failures++
				case outcome == "identical":
					identical++
				case outcome == "declared":
					declared++
				default:
					failures++
				}
			}()
			ng := s.RunOne(t, harness.Nginx, rc.Scenario)
			mg := s.RunOne(t, harness.Mailgate, rc.Scenario)
			// The login is logged (", login: ..."), as nginx does; a
			// client that sends credentials where a login goes (an
			// EXTERNAL or LOGIN user name) has them logged as its login.
			log := loginField.ReplaceAllString(mg.Proxy.ErrorLog(), "")
			for _, sec := range rc.Secrets {
				if strings.Contains(log, sec) {
					t.Errorf("mailgate's error.log contains the secret %q:\n%s", sec, log)
				}
			}
			norms := append(append(harness.DefaultNormalizers(), s.Normalize...), rc.Scenario.Normalize...)
			d := harness.Diff(ng, mg, true, norms...)
			if d == "" {
				outcome = "identical"
			} else {
				// Name the one rule that explains the difference, else all.
				var reasons []string
				explained := false
				for _, r := range rc.Rules {
					if harness.Diff(ng, mg, true, append(norms[:len(norms):len(norms)], r.Norm)...) == "" {
						reasons, explained = []string{r.Reason}, true
						break
					}
				}
				for _, r := range rc.Rules {
					norms = append(norms, r.Norm)
					if !explained {
						reasons = append(reasons, r.Reason)
					}
				}
				if rc.Whole != "" {
					outcome = "declared"
					t.Logf("declared difference (%s):\n%s", rc.Whole, d)
				} else if explained || len(reasons) > 0 && harness.Diff(ng, mg, true, norms...) == "" {
					outcome = "declared"
					t.Logf("declared difference (%s):\n%s", strings.Join(reasons, "; "), d)
				} else if LostToReset(normRender(ng, norms), normRender(mg, norms)) {
					outcome = "declared"
					t.Logf("declared difference (%s):\n%s", ResetRace, d)
				} else {
					t.Errorf("nginx and mailgate differ:\n%s", d)
				}
			}
			if testing.Verbose() || t.Failed() {
				t.Logf("nginx transcript:\n%s", ng.Render(true))
				if t.Failed() {
					t.Logf("mailgate transcript:\n%s", mg.Render(true))
					t.Logf("packets sent: %q", rc.Chunks)
				}
			}
		})
	}
	line := fmt.Sprintf("%s compat: %d scenarios, %d identical, %d declared differences, %d failures",
		s.Name, total, identical, declared, failures)
	t.Log(line)
	fmt.Println(line)
	if f := os.Getenv("HARNESS_SUMMARY"); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(fh, line)
			fh.Close()
		}
	}
}

// ResetRace: a proxy that closes on a client with unread bytes resets the
// connection, and the reset can drop replies still in flight to the
// client (a loopback race, the same for both proxies).
const ResetRace = "the proxy closed a connection with unread client bytes; the reset dropped replies in flight (a race of the kernel, either proxy): one side's replies after the first difference are a prefix of the other's"

// normRender is the transcript as Diff compares it.
func normRender(tr *harness.Transcript, norms []harness.Normalizer) string {
	s := tr.Render(true)
	for _, n := range norms {
		s = n(s)
	}
	return s
}

// LostToReset reports whether the rendered transcripts a and b differ
// only by replies one of them lost to a reset: everything but the client
// section is equal, both connections were closed by the proxy, the client
// sent the same bytes, and from the first differing line on the replies
// of one are a prefix of the other's.
func LostToReset(a, b string) bool {
	ca, ra := splitClient(a)
	cb, rb := splitClient(b)
	if ra != rb || !strings.Contains(ca, "\n[closed]\n") || !strings.Contains(cb, "\n[closed]\n") {
		return false
	}
	la, lb := strings.SplitAfter(ca, "\n"), strings.SplitAfter(cb, "\n")
	i := 0
	for i < len(la) && i < len(lb) && la[i] == lb[i] {
		i++
	}
	sa, oa := splitReplies(la[i:])
	sb, ob := splitReplies(lb[i:])
	if oa != ob {
		return false
	}
	return strings.HasPrefix(sa, sb) || strings.HasPrefix(sb, sa)
}

// splitClient cuts a rendered transcript into its client section and the
// rest.
func splitClient(s string) (client, rest string) {
	if i := strings.Index(s, "\n== "); i >= 0 {
		return s[:i+1], s[i+1:]
	}
	return s, ""
}

// splitReplies separates received lines ("S: ") from the other client
// lines, leaving out the "[closed]" marker whose place depends on timing.
func splitReplies(lines []string) (replies, other string) {
	var r, o strings.Builder
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "S: "):
			r.WriteString(strings.TrimSuffix(l[3:], "\n"))
		case l == "[closed]\n":
		default:
			o.WriteString(l)
		}
	}
	return r.String(), o.String()
}

// QuietAfter is how long the client listens after sending packet: an
// Auth-Wait answer holds the reply for a second, so a packet that ends a
// command waits that out when the session has such a login.
func QuietAfter(packet string, wait bool) time.Duration {
	if wait && strings.Contains(packet, "\n") {
		return 1300 * time.Millisecond
	}
	return 80 * time.Millisecond
}

// relayTiming: when a proxy passes bytes on in pieces, where the
// upstream's replies fall between them is timing. The rule compares what
// went each way, not the interleaving.
var RelayTiming = Rule{Reason: "the upstream's replies fell between the proxy's pieces at other times (timing, not bytes): each direction's bytes are equal", Norm: NormUpstreamDirections}

// NormUpstreamDirections renders each upstream connection as all bytes
// sent to the upstream, then all bytes received from it, then the markers.
func NormUpstreamDirections(s string) string {
	lines := strings.SplitAfter(s, "\n")
	var out strings.Builder
	for i := 0; i < len(lines); {
		if !strings.HasPrefix(lines[i], "== upstream ") {
			out.WriteString(lines[i])
			i++
			continue
		}
		out.WriteString(lines[i])
		i++
		var up, down, other strings.Builder
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "== "); i++ {
			l := lines[i]
			switch {
			case strings.HasPrefix(l, ">: "):
				up.WriteString(strings.TrimSuffix(l[3:], "\n"))
			case strings.HasPrefix(l, "<: "):
				down.WriteString(strings.TrimSuffix(l[3:], "\n"))
			default:
				other.WriteString(l)
			}
		}
		for _, d := range []struct{ p, text string }{{">: ", up.String()}, {"<: ", down.String()}} {
			for _, piece := range strings.SplitAfter(d.text, `\n`) {
				if piece != "" {
					out.WriteString(d.p + piece + "\n")
				}
			}
		}
		out.WriteString(other.String())
	}
	return out.String()
}

// ExactFill is the declared difference of TestIMAPCompat's "pipelined
// commands filling the buffer exactly": docs/engine.md.
const ExactFill = "nginx stops answering when a read fills its buffer exactly with whole commands while more bytes wait (edge-triggered epoll) until more bytes arrive; mailgate goes on"

// FillsExactly models nginx's fixed command buffer of size bufSize over the
// packets: each read takes what fits, the buffer starts over once every
// byte in it is used (it ends in LF), and a full buffer ending in a
// partial line ends the session (too long). It reports whether a read
// fills the buffer exactly with whole lines while bytes are still
// waiting: the read nginx never returns to.
func FillsExactly(chunks []string, bufSize int) bool {
	used := 0
	pending := ""
	for _, c := range chunks {
		pending += c
		for len(pending) > 0 {
			take := min(bufSize-used, len(pending))
			last := pending[take-1]
			pending = pending[take:]
			used += take
			if used == bufSize && last != '\n' {
				return false
			}
			if used == bufSize && len(pending) > 0 {
				return true
			}
			if last == '\n' {
				used = 0
			}
		}
	}
	return false
}
