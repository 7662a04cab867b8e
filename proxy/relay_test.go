package proxy

import (
	"mailgate/mail/park"
	"runtime"

	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns the two ends of one loopback TCP connection.
func tcpPair(t testing.TB) (dialed, accepted *net.TCPConn) {
	t.Helper()
	l := listenLocal(t)
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	d, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d.(*net.TCPConn), a.(*net.TCPConn)
}

// session wires user ⇄ [client conn | Relay | upstream conn] ⇄ server.
type session struct {
	user, server     net.Conn // the test's ends
	client, upstream net.Conn // Relay's ends
	res              chan RelayResult
	started          time.Time
}

// newSession builds a relayed session; kind "tcp" gives plain TCP on both
// sides (splice path), "pipe" a net.Pipe client (buffered path).
func newSession(t testing.TB, kind string, o RelayOptions) *session {
	t.Helper()
	s := &session{res: make(chan RelayResult, 1)}
	switch kind {
	case "tcp":
		s.user, s.client = tcpPair(t)
	case "tcp-small":
		// A small send buffer towards the client so that sends block
		// often. (A small receive buffer on the user's side would bring
		// zero-window probes, 200ms apart, into play.)
		s.user, s.client = tcpPair(t)
		s.client.(*net.TCPConn).SetWriteBuffer(16 << 10)
	case "tcp-parked":
		// Plain TCP with a parker: every wait longer than relayParkAfter
		// (lowered for the tests) parks the direction.
		s.user, s.client = tcpPair(t)
		o.Parker = testParker(t)
	case "pipe":
		s.user, s.client = net.Pipe()
		t.Cleanup(func() { s.user.Close() })
	default:
		t.Fatal(kind)
	}
	s.upstream, s.server = tcpPair(t)
	s.started = time.Now()
	go func() { s.res <- Relay(s.client, s.upstream, o) }()
	return s
}

func (s *session) result(t testing.TB, within time.Duration) RelayResult {
	t.Helper()
	select {
	case r := <-s.res:
		return r
	case <-time.After(within):
		t.Fatalf("relay still running after %v", within)
		return RelayResult{}
	}
}

func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

var kinds = []string{"tcp", "pipe", "tcp-parked"}

func init() { relayParkAfter = 30 * time.Millisecond }

func testParker(t testing.TB) *park.Parker {
	t.Helper()
	p, err := park.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestRelayBothWaysThenUpstreamCloses(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s := newSession(t, kind, RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: 5 * time.Second})
			go s.user.Write([]byte("STAT\r\n"))
			if got := readN(t, s.server, 6); string(got) != "STAT\r\n" {
				t.Fatalf("upstream got %q", got)
			}
			s.server.Write([]byte("+OK 2 320\r\n"))
			if got := readN(t, s.user, 11); string(got) != "+OK 2 320\r\n" {
				t.Fatalf("client got %q", got)
			}
			s.server.Close()
			r := s.result(t, 2*time.Second)
			if !r.LogDone || r.Log != "" {
				t.Errorf("result %+v", r)
			}
			if r.BytesUp != 6 || r.BytesDown != 11 {
				t.Errorf("bytes up %d down %d, want 6 and 11", r.BytesUp, r.BytesDown)
			}
			// The client connection is closed: the user sees EOF.
			s.user.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := s.user.Read(make([]byte, 1)); err == nil {
				t.Errorf("client still open (read %d)", n)
			}
		})
	}
}

// Large transfers both ways keep every byte, with a 128-byte client buffer.
func TestRelayIntegrity(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s := newSession(t, kind, RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: 10 * time.Second})
			up := make([]byte, 300_000)
			down := make([]byte, 3_000_000)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range up {
				up[i] = byte(rng.Uint32())
			}
			for i := range down {
				down[i] = byte(rng.Uint32())
			}
			go s.user.Write(up)
			go s.server.Write(down)
			gotUp := readN(t, s.server, len(up))
			gotDown := readN(t, s.user, len(down))
			if sha256.Sum256(gotUp) != sha256.Sum256(up) || sha256.Sum256(gotDown) != sha256.Sum256(down) {
				t.Fatal("data corrupted")
			}
			s.server.Close()
			r := s.result(t, 2*time.Second)
			if r.BytesUp != int64(len(up)) || r.BytesDown != int64(len(down)) {
				t.Errorf("bytes %d/%d", r.BytesUp, r.BytesDown)
			}
		})
	}
}

// proxy_timeout counts client activity only: a stream of upstream lines to
// a fast client does not keep the session alive (seen on 1.22.1).
func TestRelayTimeoutNotRearmedByUpstream(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			s := newSession(t, kind, RelayOptions{ClientBuffer: 4096, UpstreamBuffer: 4096, Timeout: timeout})
			go io.Copy(io.Discard, s.user)
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						if _, err := s.server.Write([]byte("* 1 EXISTS\r\n")); err != nil {
							return
						}
					}
				}
			}()
			defer close(stop)
			r := s.result(t, 3*time.Second)
			el := time.Since(s.started)
			if r.Log != "client timed out (110: Connection timed out)" || r.Level != LevelInfo || r.Action != "proxying" || r.LogDone {
				t.Errorf("result %+v", r)
			}
			if el < timeout || el > timeout+1500*time.Millisecond { // upper bound loose: loaded CI
				t.Errorf("timed out after %v, want about %v", el, timeout)
			}
			if r.BytesDown == 0 {
				t.Error("no upstream traffic reached the client")
			}
		})
	}
}

// Client commands re-arm proxy_timeout; the session times out one timeout
// after the last one.
func TestRelayTimeoutRearmedByClient(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			const timeout = 250 * time.Millisecond
			s := newSession(t, kind, RelayOptions{ClientBuffer: 4096, UpstreamBuffer: 4096, Timeout: timeout})
			go io.Copy(io.Discard, s.server)
			var last time.Time
			for range 8 {
				if _, err := s.user.Write([]byte("a NOOP\r\n")); err != nil {
					t.Fatal(err)
				}
				last = time.Now()
				time.Sleep(100 * time.Millisecond)
			}
			r := s.result(t, 3*time.Second)
			since := time.Since(last)
			if r.Log != "client timed out (110: Connection timed out)" {
				t.Fatalf("result %+v", r)
			}
			if time.Since(s.started) < 800*time.Millisecond {
				t.Errorf("session ended after %v despite client activity", time.Since(s.started))
			}
			if since < timeout || since > timeout+1500*time.Millisecond { // upper bound loose: loaded CI
				t.Errorf("timed out %v after the last command, want about %v", since, timeout)
			}
		})
	}
}

// A slow client draining a big download keeps the session alive: each
// client write completing after a blocked send re-arms the timer.
func TestRelaySlowClientDownloadNotCut(t *testing.T) {
	const timeout = 400 * time.Millisecond
	// With big socket buffers nginx, too, sees few write events and cuts
	// such a session.
	s := newSession(t, "tcp-small", RelayOptions{ClientBuffer: 4096, UpstreamBuffer: 4096, Timeout: timeout})
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	go func() {
		s.server.Write(data)
		s.server.Close()
	}()
	got := 0
	buf := make([]byte, 32<<10)
	for got < len(data) {
		s.user.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := s.user.Read(buf)
		got += n
		if err != nil {
			t.Fatalf("after %d bytes: %v; relay %+v", got, err, s.result(t, time.Second))
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(s.started)
	r := s.result(t, 2*time.Second)
	if r.Log != "" || !r.LogDone {
		t.Errorf("result %+v", r)
	}
	if el < 2*timeout {
		t.Errorf("download took only %v; the test did not exercise blocked sends", el)
	}
}

// A client that reads nothing is cut when proxy_timeout expires even with
// a send blocked towards it.
func TestRelayDeadClientTimesOut(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			const timeout = 200 * time.Millisecond
			s := newSession(t, kind, RelayOptions{ClientBuffer: 4096, UpstreamBuffer: 4096, Timeout: timeout})
			go s.server.Write(make([]byte, 8<<20))
			r := s.result(t, 3*time.Second)
			if r.Log != "client timed out (110: Connection timed out)" {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// An upstream that does not read does not stop the client-side timer.
func TestRelayBlockedUpstreamTimesOut(t *testing.T) {
	const timeout = 200 * time.Millisecond
	s := newSession(t, "tcp", RelayOptions{ClientBuffer: 4096, UpstreamBuffer: 4096, Timeout: timeout})
	go s.user.Write(make([]byte, 8<<20))
	r := s.result(t, 3*time.Second)
	if r.Log != "client timed out (110: Connection timed out)" {
		t.Errorf("result %+v", r)
	}
}

// A client that half-closes after QUIT still gets the upstream's answer
// (nginx drops it; docs/relay.md).
func TestRelayHalfCloseDeliversLastReply(t *testing.T) {
	s := newSession(t, "tcp", RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: 5 * time.Second})
	s.user.Write([]byte("QUIT\r\n"))
	s.user.(*net.TCPConn).CloseWrite()
	if got := readN(t, s.server, 6); string(got) != "QUIT\r\n" {
		t.Fatalf("upstream got %q", got)
	}
	time.Sleep(50 * time.Millisecond)
	s.server.Write([]byte("+OK bye\r\n"))
	s.server.Close()
	s.user.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(s.user)
	if err != nil || string(got) != "+OK bye\r\n" {
		t.Fatalf("client got %q, %v", got, err)
	}
	r := s.result(t, 2*time.Second)
	if !r.LogDone || r.Log != "" {
		t.Errorf("result %+v", r)
	}
}

// After a half-close an idle upstream is dropped after the grace period.
func TestRelayHalfCloseIdleUpstream(t *testing.T) {
	for _, kind := range []string{"tcp"} {
		t.Run(kind, func(t *testing.T) {
			const timeout = 200 * time.Millisecond // grace = min(timeout, HalfCloseGrace)
			s := newSession(t, kind, RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: timeout})
			s.user.(*net.TCPConn).CloseWrite()
			r := s.result(t, 2*time.Second)
			el := time.Since(s.started)
			if !r.LogDone || strings.HasPrefix(r.Log, "client timed out") {
				t.Errorf("result %+v", r)
			}
			if el < timeout {
				t.Errorf("ended after %v, before the grace", el)
			}
			// The upstream was closed, not half-closed.
			s.server.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := s.server.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("upstream read: %v, want EOF", err)
			}
		})
	}
}

func TestRelayResets(t *testing.T) {
	tests := []struct {
		name       string
		resetUser  bool
		wantLog    string
		wantLevel  string
		wantAction string
	}{
		{"upstream reset", false, "recv() failed (104: Connection reset by peer)", "error", ActionReadingUpstream},
		{"client reset", true, "recv() failed (104: Connection reset by peer)", "info", ActionReadingClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, "tcp", RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: 5 * time.Second})
			victim := s.server.(*net.TCPConn)
			if tc.resetUser {
				victim = s.user.(*net.TCPConn)
			}
			victim.SetLinger(0)
			victim.Close()
			r := s.result(t, 2*time.Second)
			if r.Log != tc.wantLog || r.Level.String() != tc.wantLevel || r.Action != tc.wantAction || !r.LogDone {
				t.Errorf("result %+v", r)
			}
			if strings.Contains(r.Log, "use of closed") {
				t.Errorf("log %q", r.Log)
			}
		})
	}
}

func TestRelayShutdown(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			s := newSession(t, kind, RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: time.Hour, Shutdown: ctx})
			time.Sleep(20 * time.Millisecond)
			cancel()
			r := s.result(t, 2*time.Second)
			if r.Log != "shutdown timeout" || r.Level != LevelInfo || r.Action != "proxying" || r.LogDone {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// Closing a connection from outside ends the relay quietly.
func TestRelayClosedByCaller(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s := newSession(t, kind, RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: time.Hour})
			time.Sleep(20 * time.Millisecond)
			s.client.Close()
			r := s.result(t, 2*time.Second)
			if r.Log != "" {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// panicReader is a client connection whose Read panics once the session
// has started: the relay's client → upstream goroutine must contain it.
type panicReader struct{ net.Conn }

func (panicReader) Read([]byte) (int, error) {
	var p *struct{ n int }
	return p.n, nil // nil pointer dereference
}

func TestRelayContainsAPanic(t *testing.T) {
	user, client := net.Pipe()
	defer user.Close()
	upstream, server := tcpPair(t)
	res := make(chan RelayResult, 1)
	go func() { res <- Relay(panicReader{client}, upstream, RelayOptions{Timeout: 5 * time.Second}) }()
	var r RelayResult
	select {
	case r = <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running after a panic in one direction")
	}
	if !r.Panicked || r.Level != LevelAlert || !strings.HasPrefix(r.Log, "panic: runtime error: invalid memory address or nil pointer dereference (proxy.panicReader.Read relay_test.go:") {
		t.Fatalf("result %+v", r)
	}
	// Both connections are closed.
	server.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := server.Read(make([]byte, 1)); err == nil {
		t.Fatal("upstream still open")
	}
}

// waitParkedN waits until n directions are parked on p.
func waitParkedN(t *testing.T, p *park.Parker, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for p.Parked() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d directions parked, want %d", p.Parked(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An idle relayed session parks both directions, holds no goroutine, and
// relays as before when either side speaks.
func TestRelayParksIdleDirections(t *testing.T) {
	p := testParker(t)
	s := newSession(t, "tcp", RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: 10 * time.Second, Parker: p})
	waitParkedN(t, p, 2)
	g := runtime.NumGoroutine()
	s.user.Write([]byte("a1 NOOP\r\n"))
	if got := readN(t, s.server, 9); string(got) != "a1 NOOP\r\n" {
		t.Fatalf("upstream got %q", got)
	}
	s.server.Write([]byte("a1 OK\r\n"))
	if got := readN(t, s.user, 7); string(got) != "a1 OK\r\n" {
		t.Fatalf("client got %q", got)
	}
	waitParkedN(t, p, 2)
	// The goroutines that parked may still be returning: give them time.
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > g; {
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines once parked again, %d before", runtime.NumGoroutine(), g)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.server.Close()
	if r := s.result(t, 2*time.Second); !r.LogDone || r.Log != "" || r.BytesUp != 9 || r.BytesDown != 7 {
		t.Errorf("result %+v", r)
	}
}

// proxy_timeout ends a parked session at its time.
func TestRelayTimeoutWhileParked(t *testing.T) {
	p := testParker(t)
	const timeout = 300 * time.Millisecond
	s := newSession(t, "tcp", RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: timeout, Parker: p})
	waitParkedN(t, p, 2)
	r := s.result(t, 3*time.Second)
	if r.Log != "client timed out (110: Connection timed out)" {
		t.Errorf("result %+v", r)
	}
	if el := time.Since(s.started); el < timeout || el > timeout+2*time.Second {
		t.Errorf("timed out after %v, want %v", el, timeout)
	}
	if p.Parked() != 0 {
		t.Errorf("%d directions still parked", p.Parked())
	}
}

// A client half-close wakes the parked upstream wait, which then takes the
// grace period and ends.
func TestRelayHalfCloseWhileParked(t *testing.T) {
	p := testParker(t)
	s := newSession(t, "tcp", RelayOptions{ClientBuffer: 128, UpstreamBuffer: 4096, Timeout: 200 * time.Millisecond, Parker: p})
	waitParkedN(t, p, 2)
	s.user.(*net.TCPConn).CloseWrite()
	r := s.result(t, 2*time.Second)
	if !r.LogDone || !r.ClientEOF || r.Log != "" {
		t.Errorf("result %+v", r)
	}
}

// Closing the connections from outside (the admin API) and waking the
// relay ends it; so does the shutdown context.
func TestRelayClosedOrShutDownWhileParked(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		p := testParker(t)
		user, client := tcpPair(t)
		upstream, _ := tcpPair(t)
		_ = user
		x := NewRelayer(client, upstream, RelayOptions{Timeout: 10 * time.Second, Parker: p})
		res := make(chan RelayResult, 1)
		go x.Run(func(r RelayResult) { res <- r })
		waitParkedN(t, p, 2)
		client.Close()
		upstream.Close()
		x.Wake()
		select {
		case <-res:
		case <-time.After(2 * time.Second):
			t.Fatal("the relay did not end")
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		p := testParker(t)
		ctx, cancel := context.WithCancel(context.Background())
		s := newSession(t, "tcp", RelayOptions{Timeout: 10 * time.Second, Parker: p, Shutdown: ctx})
		waitParkedN(t, p, 2)
		cancel()
		if r := s.result(t, 2*time.Second); r.Log != "shutdown timeout" {
			t.Errorf("result %+v", r)
		}
	})
}
