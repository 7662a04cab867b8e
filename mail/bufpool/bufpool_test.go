package bufpool

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// One pool per size, reused without allocating.
func TestGetPut(t *testing.T) {
	for _, size := range []int{128, 4096, 16384} {
		b := Get(size)
		if len(*b) != size {
			t.Fatalf("Get(%d) gave %d bytes", size, len(*b))
		}
		Put(b)
	}
	allocs := testing.AllocsPerRun(100, func() {
		b := Get(4096)
		Put(b)
	})
	if allocs > 0.5 {
		t.Errorf("%.1f allocations per get/put", allocs)
	}
}

// A buffer of a size nobody asked for is dropped, not pooled.
func TestPutForeignSize(t *testing.T) {
	b := make([]byte, 12345)
	Put(&b)
	if _, ok := pools.Load(12345); ok {
		t.Error("a pool was made for a size Get never saw")
	}
}

func tcpPair(t *testing.T) (client, server *net.TCPConn) {
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
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestReadTCP(t *testing.T) {
	c, s := tcpPair(t)
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// Waits for bytes sent later.
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Write([]byte("a1 NOOP\r\n"))
	}()
	bp, n, err := ReadTCP(rc, 64)
	if err != nil || string((*bp)[:n]) != "a1 NOOP\r\n" {
		t.Fatalf("ReadTCP = %q, %v", (*bp)[:n], err)
	}
	if len(*bp) != 64 {
		t.Errorf("buffer of %d bytes, want 64", len(*bp))
	}
	Put(bp)

	// The read deadline applies while waiting.
	s.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if bp, _, err := ReadTCP(rc, 64); !errors.Is(err, os.ErrDeadlineExceeded) || bp != nil {
		t.Fatalf("ReadTCP past the deadline = %v, %v", bp, err)
	}
	s.SetReadDeadline(time.Time{})

	// End of file.
	c.CloseWrite()
	if bp, _, err := ReadTCP(rc, 64); err != io.EOF || bp != nil {
		t.Fatalf("ReadTCP at EOF = %v, %v", bp, err)
	}
}

func TestReadTCPReset(t *testing.T) {
	c, s := tcpPair(t)
	rc, _ := s.SyscallConn()
	s.Write([]byte("unread by the client"))
	time.Sleep(20 * time.Millisecond)
	c.SetLinger(0)
	c.Close()
	_, _, err := ReadTCP(rc, 64)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("ReadTCP after a reset = %v, want ECONNRESET", err)
	}
}
