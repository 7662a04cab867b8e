package mailtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail"
)

// SessionFuzzer drives whole sessions through the real engine for a fuzz
// target: the client's bytes cut into reads where the fuzzer says, the
// auth_http server's answers and the upstream's lines also taken from the
// fuzz input. Each input runs twice, once in one read and once split,
// over socket pairs (so that timing cannot change what the engine reads),
// and the fuzzer checks that
//
//   - nothing panics (the engine would contain it: PanicsRecovered must
//     not move);
//   - the session ends once the client has sent everything and closed its
//     side (no hang);
//   - no goroutine is left behind once the session, the auth exchange and
//     the upstream have ended;
//   - a session allocates a bounded amount of memory;
//   - the client receives the same bytes whatever the split, except where
//     nginx's own answer depends on how the bytes arrived (SplitDependent).
type SessionFuzzer struct {
	env *Env
	// parked is the same server with parking after a microsecond: every
	// wait for the client over TCP parks the session (mail/park).
	parked *Env
	auth   *AuthServer
	up     atomic.Pointer[Upstream]
	// SplitDependent reports whether a difference between the one-read
	// and the split run is one nginx has too (its buffer is rewound only
	// when every byte in it is used, so a "too long command" depends on
	// where reads ended; SMTP's pipelining check looks at what a read
	// brought). It gets the input, both transcripts and both error logs.
	SplitDependent func(in Input, whole, split, wholeLog, splitLog string) bool
}

// NewSessionFuzzer builds the server for mailBody (a mail{} body whose
// auth_http is "{{auth}}"), with the protocol modules given.
func NewSessionFuzzer(t testing.TB, protocols map[string]mail.Protocol, mailBody string) *SessionFuzzer {
	t.Helper()
	f := &SessionFuzzer{auth: StartAuthServer(t)}
	cfg := Config(t, strings.ReplaceAll(mailBody, "{{auth}}", f.auth.URL()))
	o := Options{
		Protocols: protocols,
		DialUpstream: func(ctx context.Context, a netip.AddrPort, pp int) (net.Conn, error) {
			return f.up.Load().Dial(ctx, a, pp)
		},
	}
	f.env = Start(t, cfg, o)
	o.ParkAfter = time.Microsecond
	f.parked = Start(t, cfg, o) // its parker is made at once (ParkAfter set)
	f.SplitDependent = DefaultSplitDependent
	return f
}

// DefaultSplitDependent declares nginx's split-dependent answers: a "too
// long command" (logged) in either run.
func DefaultSplitDependent(_ Input, whole, split, wholeLog, splitLog string) bool {
	return strings.Contains(wholeLog, "too long command") || strings.Contains(splitLog, "too long command")
}

// Input is one fuzz case.
type Input struct {
	Client   []byte // what the client sends, then it closes its side
	Splits   []byte // read sizes: each byte b is a read of b%64+1 bytes, cycling
	Auth     []byte // auth_http answers, separated by NUL bytes
	Upstream []byte // upstream lines (greeting, then one per line read), NUL-separated; the last part is the tail
}

const (
	sessionDeadline = 10 * time.Second
	// maxSessionAlloc bounds what one session may allocate, beyond a
	// multiple of its input: buffers are fixed by the configuration.
	maxSessionAlloc = 4 << 20
)

// Run runs one input, whole and split, on the first listen entry's
// server, and fails t on any broken rule.
func (f *SessionFuzzer) Run(t *testing.T, in Input) { f.RunOn(t, 0, in) }

// RunOn is Run on the server of listen entry number listen.
func (f *SessionFuzzer) RunOn(t *testing.T, listen int, in Input) {
	if len(in.Client) > 1<<16 || len(in.Auth) > 1<<14 || len(in.Upstream) > 1<<14 {
		return
	}
	auth := bytes.Split(in.Auth, []byte{0})
	parts := strings.Split(string(in.Upstream), "\x00")
	up := func() *Upstream {
		return &Upstream{Replies: parts[:len(parts)-1], Tail: parts[len(parts)-1]}
	}

	panics := mail.PanicsRecovered()
	before := runtime.NumGoroutine()
	wholeOut, wholeLog := f.session(t, listen, in.Client, nil, auth, up())
	// Measured on the second run, after whatever the first did once
	// per process (lazy initialisation in the runtime and libraries).
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	splitOut, splitLog := f.session(t, listen, in.Client, in.Splits, auth, up())
	runtime.ReadMemStats(&ms1)
	if d := ms1.TotalAlloc - ms0.TotalAlloc; d > maxSessionAlloc+64*uint64(len(in.Client)+len(in.Auth)+len(in.Upstream)) {
		t.Fatalf("one session allocated %d bytes", d)
	}

	// The same input over TCP, cut into writes as the reads were cut,
	// with every wait parking the session: its transcript may differ
	// (on TCP the engine looks for the client's close before each
	// pipelined command, as nginx does), but it must end, contain no
	// panic and leave nothing parked.
	parkedLog := f.parkedSession(t, listen, in.Client, in.Splits, auth, up())

	if n := mail.PanicsRecovered() - panics; n != 0 {
		t.Fatalf("%d panics contained:\n%s%s%s", n, wholeLog, splitLog, parkedLog)
	}
	wholeOut, splitOut = NormalizeSalts(wholeOut), NormalizeSalts(splitOut)
	if wholeOut != splitOut && !f.SplitDependent(in, wholeOut, splitOut, wholeLog, splitLog) {
		t.Fatalf("replies depend on the read split %v:\none read: %q\nsplit:    %q\nlogs:\n%s--\n%s", in.Splits, wholeOut, splitOut, wholeLog, splitLog)
	}
	// Every goroutine of the two sessions has ended.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after the sessions:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// session runs one session and returns what the client received and what
// the session logged.
func (f *SessionFuzzer) session(t *testing.T, listen int, client, splits []byte, auth [][]byte, up *Upstream) (string, string) {
	f.auth.Script(nil, auth...)
	f.up.Store(up)
	f.env.Log.Reset()
	cc, sc := Pair(t, Unix)
	if len(splits) > 0 {
		sc = &splitReader{Conn: sc, sizes: splits}
	}
	c := f.env.Serve(cc, sc, listen)
	defer c.Close()
	// One write: every byte is in the socket before the engine's first
	// read returns, and the reads end where splitReader says, whatever
	// the timing.
	go func() {
		if _, err := c.Conn.Write(client); err == nil {
			c.Conn.(*net.UnixConn).CloseWrite() //nolint:errcheck
		}
	}()
	out := c.ReadAll(sessionDeadline)
	select {
	case <-c.Done():
	case <-time.After(sessionDeadline):
		buf := make([]byte, 1<<16)
		t.Fatalf("the session did not end after the client closed its side; client got %q\n%s", out, buf[:runtime.Stack(buf, true)])
	}
	up.Wait()
	return out, f.env.Log.String()
}

// parkedSession runs one session on the parking server over TCP, the
// client's bytes written in the cuts splits gives, and returns its log.
func (f *SessionFuzzer) parkedSession(t *testing.T, listen int, client, splits []byte, auth [][]byte, up *Upstream) string {
	f.auth.Script(nil, auth...)
	f.up.Store(up)
	f.parked.Log.Reset()
	cc, sc := Pair(t, TCP)
	c := f.parked.Serve(cc, sc, listen)
	defer c.Close()
	go func() {
		rest := client
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(splits) > 0 {
				n = min(n, int(splits[i%len(splits)])%64+1)
			}
			if _, err := c.Conn.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
			runtime.Gosched() // let the engine catch up and wait, and park
		}
		c.Conn.(*net.TCPConn).CloseWrite() //nolint:errcheck
	}()
	out := c.ReadAll(sessionDeadline)
	select {
	case <-c.Done():
	case <-time.After(sessionDeadline):
		buf := make([]byte, 1<<16)
		t.Fatalf("the parked session did not end after the client closed its side; client got %q\n%s", out, buf[:runtime.Stack(buf, true)])
	}
	up.Wait()
	if n := f.parked.Server.Parked(); n != 0 {
		t.Fatalf("%d connections still parked after the session ended", n)
	}
	return f.parked.Log.String()
}

// Listen is the first listen entry's server block, for callers that need
// its settings.
func (f *SessionFuzzer) Listen() *confparse.Listen { return f.env.Config.Mail.Listens[0] }

var (
	saltText = regexp.MustCompile(`<[0-9]+\.[0-9]+@[^>]*>`)
	// A CRAM-MD5 challenge: "+ " (POP3, IMAP) or "334 " (SMTP), then
	// base64 of a salt.
	challengeLine = regexp.MustCompile(`(?m)^(\+|334) ([A-Za-z0-9+/]+=*)\r$`)
)

// NormalizeSalts replaces the random APOP/CRAM-MD5 salts in a transcript,
// in clear and in base64, with "<SALT>", so that two runs compare.
func NormalizeSalts(s string) string {
	s = challengeLine.ReplaceAllStringFunc(s, func(line string) string {
		m := challengeLine.FindStringSubmatch(line)
		if b, err := base64.StdEncoding.DecodeString(m[2]); err == nil && saltText.Match(b) {
			return m[1] + " <SALT>\r"
		}
		return line
	})
	return saltText.ReplaceAllString(s, "<SALT>")
}

// splitReader cuts the reads of the connection it wraps: read i returns at
// most sizes[i%len(sizes)]%64+1 bytes, where a network would have cut
// the stream. A short read from the socket continues the same cut.
type splitReader struct {
	net.Conn
	sizes []byte
	i     int
	left  int // bytes left in the current cut; 0: take the next size
}

func (r *splitReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		r.left = int(r.sizes[r.i%len(r.sizes)])%64 + 1
		r.i++
	}
	if len(p) > r.left {
		p = p[:r.left]
	}
	n, err := r.Conn.Read(p)
	r.left -= n
	return n, err
}
