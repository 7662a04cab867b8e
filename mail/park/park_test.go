package park

import (
	"net"
	"syscall"
	"testing"
	"time"
)

func pair(t *testing.T) (client net.Conn, server *net.TCPConn, rc syscall.RawConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	rc, err = s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return c, s.(*net.TCPConn), rc
}

func newParker(t *testing.T) *Parker {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// resumed waits for a resume and reports how long it took.
func resumed(t *testing.T, ch <-chan time.Time, within time.Duration) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(within):
		t.Fatal("not resumed")
	}
	return time.Time{}
}

func TestResumeWhenReadable(t *testing.T) {
	p := newParker(t)
	c, _, rc := pair(t)
	ch := make(chan time.Time, 2)
	var slot Slot
	if p.Park(rc, time.Time{}, &slot, func() { ch <- time.Now() }) == 0 {
		t.Fatal("Park failed")
	}
	select {
	case <-ch:
		t.Fatal("resumed before any byte")
	case <-time.After(100 * time.Millisecond):
	}
	if p.Parked() != 1 {
		t.Errorf("Parked = %d", p.Parked())
	}
	c.Write([]byte("x"))
	resumed(t, ch, 2*time.Second)
	if p.Parked() != 0 {
		t.Errorf("Parked = %d after the resume", p.Parked())
	}
	// Parked again on the same socket, with the byte still unread: the
	// registration is level-triggered, so it resumes at once.
	p.Park(rc, time.Time{}, &slot, func() { ch <- time.Now() })
	resumed(t, ch, 2*time.Second)
}

func TestResumeAtDeadline(t *testing.T) {
	p := newParker(t)
	_, _, rc := pair(t)
	ch := make(chan time.Time, 1)
	start := time.Now()
	p.Park(rc, start.Add(150*time.Millisecond), nil, func() { ch <- time.Now() })
	if at := resumed(t, ch, 2*time.Second); at.Sub(start) < 150*time.Millisecond {
		t.Errorf("resumed after %v, before the deadline", at.Sub(start))
	}
}

func TestResumeAtEOF(t *testing.T) {
	p := newParker(t)
	c, _, rc := pair(t)
	ch := make(chan time.Time, 1)
	p.Park(rc, time.Time{}, nil, func() { ch <- time.Now() })
	c.Close()
	resumed(t, ch, 2*time.Second)
}

// Whoever closes a parked connection wakes it through its slot; a closed
// connection cannot be parked.
func TestWakeAndClosed(t *testing.T) {
	p := newParker(t)
	_, s, rc := pair(t)
	ch := make(chan time.Time, 2)
	var slot Slot
	p.Park(rc, time.Time{}, &slot, func() { ch <- time.Now() })
	s.Close()
	slot.Wake(p)
	resumed(t, ch, 2*time.Second)
	slot.Wake(p) // a second wake is nothing
	if p.Park(rc, time.Time{}, &slot, func() { ch <- time.Now() }) != 0 {
		t.Error("a closed connection was parked")
	}
	select {
	case <-ch:
		t.Error("resumed twice")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestCloseResumesAll(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan time.Time, 10)
	for range 5 {
		_, _, rc := pair(t)
		p.Park(rc, time.Time{}, nil, func() { ch <- time.Now() })
	}
	p.Close()
	for range 5 {
		resumed(t, ch, 2*time.Second)
	}
	_, _, rc := pair(t)
	if p.Park(rc, time.Time{}, nil, func() {}) != 0 {
		t.Error("parked after Close")
	}
	p.Close() // twice is fine
}
