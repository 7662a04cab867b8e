package mail

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"mailgate/auth"
)

// parkedCount is the number of sessions parked on env's server.
func parkedCount(env *testEnv) int {
	p := env.srv.parker.Load()
	if p == nil {
		return 0
	}
	return p.Parked()
}

// waitParked waits until n sessions are parked.
func waitParked(t *testing.T, env *testEnv, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for parkedCount(env) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions parked, want %d", parkedCount(env), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// greeted connects and reads the greeting.
func greeted(t *testing.T, env *testEnv) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	if l, _ := r.ReadString('\n'); l != "+OK ready\r\n" {
		t.Fatalf("greeting %q", l)
	}
	return c, r
}

// A quiet client is parked without a goroutine, and its session goes on
// exactly as before when it speaks: pipelined commands, a login, a relay.
func TestParkedSessionResumes(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 10*time.Second, okAuth(&env))
	c, r := greeted(t, env)
	waitParked(t, env, 1)
	io.WriteString(c, "NOOP\r\n") //nolint:errcheck
	if l, _ := r.ReadString('\n'); l != "+OK\r\n" {
		t.Fatalf("NOOP after parking: %q", l)
	}
	waitParked(t, env, 1)                         // parked again once quiet
	io.WriteString(c, "NOOP\r\nLOGIN u good\r\n") //nolint:errcheck
	if l, _ := r.ReadString('\n'); l != "+OK\r\n" {
		t.Fatalf("pipelined NOOP after parking: %q", l)
	}
	if l, _ := r.ReadString('\n'); l != "+OK logged in\r\n" {
		t.Fatalf("login after parking: %q", l)
	}
	if n := parkedCount(env); n != 0 {
		t.Errorf("%d sessions parked after the login", n)
	}
}

// Parked sessions hold no goroutine.
func TestParkedSessionsHoldNoGoroutine(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 10*time.Second, okAuth(&env))
	const n = 50
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i], _ = greeted(t, env)
	}
	waitParked(t, env, n)
	// The goroutines that parked may still be returning: give them time.
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine()-before > 5; {
		if time.Now().After(deadline) {
			t.Errorf("%d more goroutines with %d parked sessions", runtime.NumGoroutine()-before, n)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that stays quiet is timed out at its pre-auth deadline, as if
// it had never been parked.
func TestParkedSessionTimesOut(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 700*time.Millisecond, okAuth(&env))
	c, _ := greeted(t, env)
	waitParked(t, env, 1)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v; want a close", b, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("closed after %v", d)
	}
	time.Sleep(50 * time.Millisecond)
	if !strings.Contains(env.log.String(), "client timed out (110: Connection timed out) while in auth state") {
		t.Errorf("log:\n%s", env.log.String())
	}
}

// A slow client with half a command in the buffer is parked too: the
// buffer keeps its bytes, and the command completes when the rest comes.
func TestHalfCommandIsParked(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 10*time.Second, okAuth(&env))
	c, r := greeted(t, env)
	io.WriteString(c, "NO") //nolint:errcheck
	waitParked(t, env, 1)
	io.WriteString(c, "O") //nolint:errcheck
	time.Sleep(10 * time.Millisecond)
	waitParked(t, env, 1)
	io.WriteString(c, "P\r\n") //nolint:errcheck
	if l, _ := r.ReadString('\n'); l != "+OK\r\n" {
		t.Fatalf("NOOP: %q", l)
	}
}

// Closing the server ends parked sessions, and Close returns.
func TestCloseEndsParkedSessions(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 30*time.Second, okAuth(&env))
	c, _ := greeted(t, env)
	waitParked(t, env, 1)
	env.srv.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("client read: %v; want a close", err)
	}
	done := make(chan struct{})
	go func() { env.srv.sessions.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the parked session never ended")
	}
}

// A graceful shutdown waits for parked sessions, which still answer.
func TestShutdownWaitsForParkedSessions(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 30*time.Second, okAuth(&env))
	c, r := greeted(t, env)
	waitParked(t, env, 1)
	done := make(chan error, 1)
	go func() { done <- env.srv.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	io.WriteString(c, "QUIT\r\n") //nolint:errcheck
	if l, _ := r.ReadString('\n'); l != "+OK bye\r\n" {
		t.Fatalf("QUIT: %q", l)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// The admin API ends a parked session.
func TestRegistryEndsParkedSession(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 30*time.Second, okAuth(&env))
	c, _ := greeted(t, env)
	waitParked(t, env, 1)
	list := env.srv.reg.Sessions()
	if len(list) != 1 || !env.srv.reg.End(list[0].ID) {
		t.Fatalf("sessions %+v", list)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("client read: %v; want a close", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(env.srv.reg.Sessions()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the ended session is still registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that pipelines a refused login and a command and goes away
// while auth_http thinks: the failure reply is written, and nginx's recv()
// before the pipelined command finds the close and ends the session
// without a reply (nothing logged). The wait for the first command, which
// may end in parking, must not leave its short read deadline behind: it
// would make that recv() fail at once and the command be answered.
func TestClientGoneDuringAuthAfterParkWait(t *testing.T) {
	slow := func(ctx context.Context, r *auth.Request) (*auth.Result, error) {
		time.Sleep(2 * defaultParkAfter)
		return &auth.Result{Kind: auth.Fail, Message: "try later", HasWait: true, WaitSeconds: 1}, nil
	}
	env := startEnv(t, 64, 10*time.Second, slow)
	c, _ := greeted(t, env)
	io.WriteString(c, "LOGIN u x\r\nNOOP\r\n") //nolint:errcheck
	time.Sleep(defaultParkAfter / 2)
	c.Close()
	time.Sleep(3 * defaultParkAfter)
	if strings.Contains(env.log.String(), "send() failed") {
		t.Errorf("the pipelined command was answered after the close:\n%s", env.log.String())
	}
}

// A relayed session idle for a while parks both relay directions; the
// admin API still ends it.
func TestRelayedSessionParksAndEnds(t *testing.T) {
	var env *testEnv
	env = startEnv(t, 64, 10*time.Second, okAuth(&env))
	c, r := greeted(t, env)
	io.WriteString(c, "LOGIN u good\r\n") //nolint:errcheck
	if l, _ := r.ReadString('\n'); l != "+OK logged in\r\n" {
		t.Fatalf("login: %q", l)
	}
	waitParked(t, env, 2)
	list := env.srv.reg.Sessions()
	if len(list) != 1 || list[0].State != "relay" || !env.srv.reg.End(list[0].ID) {
		t.Fatalf("sessions %+v", list)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("client read: %v; want a close", err)
	}
	done := make(chan struct{})
	go func() { env.srv.sessions.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the parked relayed session never ended")
	}
}
