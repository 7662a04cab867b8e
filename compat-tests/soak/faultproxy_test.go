package soak

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// backend is an in-test upstream: it greets, answers "GO" with a long
// reply, echoes other lines, records what it received and closes on
// QUIT. Close waits for its goroutines.
type backend struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  bytes.Buffer
	open map[net.Conn]bool
}

var goReply = strings.Repeat("0123456789", 50) + "\r\n"

func startBackend(t *testing.T) *backend {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, open: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.open[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go b.serve(c)
		}
	}()
	return b
}

func (b *backend) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.open, c)
		b.mu.Unlock()
		c.Close()
	}()
	io.WriteString(c, "+OK hi\r\n") //nolint:errcheck
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		b.mu.Lock()
		b.got.WriteString(line)
		b.mu.Unlock()
		if err != nil {
			return
		}
		switch strings.TrimSpace(line) {
		case "QUIT":
			io.WriteString(c, "+OK bye\r\n") //nolint:errcheck
			return
		case "GO":
			io.WriteString(c, goReply) //nolint:errcheck
		default:
			io.WriteString(c, line) //nolint:errcheck
		}
	}
}

func (b *backend) received() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got.String()
}

func (b *backend) Close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// withProxy runs f against a FaultProxy configured by p in front of a
// fresh backend, and checks that no goroutine of either outlives them.
func withProxy(t *testing.T, p *FaultProxy, f func(t *testing.T, p *FaultProxy, be *backend)) {
	t.Helper()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	be := startBackend(t)
	p.Target = be.ln.Addr().String()
	defer be.Close()
	fp, err := Listen(p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := fp.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	f(t, fp, be)
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	return c, bufio.NewReader(c)
}

func TestFaultProxyPass(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Pass}, func(t *testing.T, p *FaultProxy, _ *backend) {
		c, r := dial(t, p.Addr())
		defer c.Close()
		io.WriteString(c, "hello\r\nGO\r\nQUIT\r\n") //nolint:errcheck
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := "+OK hi\r\nhello\r\n" + goReply + "+OK bye\r\n"; string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
		if p.Accepted() != 1 {
			t.Errorf("Accepted() = %d, want 1", p.Accepted())
		}
	})
}

func TestFaultProxyRefuse(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Refuse}, func(t *testing.T, p *FaultProxy, _ *backend) {
		for range 3 {
			c, err := net.DialTimeout("tcp4", p.Addr(), 5*time.Second)
			if err == nil {
				c.Close()
				t.Fatal("connect succeeded, want refused")
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("connect: %v, want ECONNREFUSED", err)
			}
		}
	})
}

func TestFaultProxyReset(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Reset}, func(t *testing.T, p *FaultProxy, _ *backend) {
		c, err := net.DialTimeout("tcp4", p.Addr(), 5*time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			return // the reset came before connect returned
		} else if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, err := io.ReadAll(c)
		if len(got) != 0 || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("read %q, %v; want nothing and a reset", got, err)
		}
	})
}

func TestFaultProxyStall(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Stall}, func(t *testing.T, p *FaultProxy, be *backend) {
		c, r := dial(t, p.Addr())
		defer c.Close()
		io.WriteString(c, "USER x\r\n")                           //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
		got, err := io.ReadAll(r)
		var ne net.Error
		if len(got) != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read %q, %v; want nothing until the deadline", got, err)
		}
		if be.received() != "" {
			t.Errorf("the target saw %q, want no connection", be.received())
		}
		// Close ends a stalled connection the client keeps open.
	})
}

func TestFaultProxyStallFor(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Stall, StallFor: 100 * time.Millisecond}, func(t *testing.T, p *FaultProxy, _ *backend) {
		c, r := dial(t, p.Addr())
		defer c.Close()
		got, err := io.ReadAll(r)
		if len(got) != 0 || err != nil {
			t.Errorf("read %q, %v; want a close without data after StallFor", got, err)
		}
	})
}

func TestFaultProxyGarbage(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Garbage, StallFor: 200 * time.Millisecond}, func(t *testing.T, p *FaultProxy, be *backend) {
		c, r := dial(t, p.Addr())
		defer c.Close()
		got, _ := io.ReadAll(r)
		if len(got) == 0 || bytes.HasPrefix(got, []byte("+OK")) {
			t.Errorf("read %q, want garbage", got)
		}
		if be.received() != "" {
			t.Errorf("the target saw %q, want no connection", be.received())
		}
	})
}

func TestFaultProxySetGarbage(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Garbage, StallFor: 100 * time.Millisecond}, func(t *testing.T, p *FaultProxy, _ *backend) {
		p.SetGarbage([]byte("fixed\r\n"))
		for range 2 {
			c, r := dial(t, p.Addr())
			got, _ := io.ReadAll(r)
			c.Close()
			if string(got) != "fixed\r\n" {
				t.Errorf("read %q, want the garbage set", got)
			}
		}
	})
}

func TestFaultProxyCloseMidDown(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: CloseMid, Trigger: []byte("GO\r\n"), CutDown: true, CutAfter: 10},
		func(t *testing.T, p *FaultProxy, _ *backend) {
			c, r := dial(t, p.Addr())
			defer c.Close()
			// The trigger split over two writes is still found.
			io.WriteString(c, "ping\r\nG") //nolint:errcheck
			if line, _ := r.ReadString('\n'); line != "+OK hi\r\n" {
				t.Fatalf("greeting %q", line)
			}
			if line, _ := r.ReadString('\n'); line != "ping\r\n" {
				t.Fatalf("echo %q", line)
			}
			io.WriteString(c, "O\r\n") //nolint:errcheck
			got, err := io.ReadAll(r)
			if string(got) != goReply[:10] || err != nil {
				t.Errorf("after the trigger read %q, %v; want %q and EOF", got, err, goReply[:10])
			}
		})
}

func TestFaultProxyCloseMidUp(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: CloseMid, Trigger: []byte("DATA\r\n"), CutAfter: 5},
		func(t *testing.T, p *FaultProxy, be *backend) {
			c, r := dial(t, p.Addr())
			defer c.Close()
			io.WriteString(c, "DATA\r\n0123456789\r\n") //nolint:errcheck
			io.ReadAll(r)                               //nolint:errcheck
			deadline := time.Now().Add(5 * time.Second)
			for be.received() != "DATA\r\n01234" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := be.received(); got != "DATA\r\n01234" {
				t.Errorf("the target got %q, want the trigger and 5 bytes", got)
			}
		})
}

func TestFaultProxyTrickle(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Trickle, Chunk: 7, Every: time.Millisecond},
		func(t *testing.T, p *FaultProxy, _ *backend) {
			c, r := dial(t, p.Addr())
			defer c.Close()
			io.WriteString(c, "GO\r\nQUIT\r\n") //nolint:errcheck
			got, err := io.ReadAll(r)
			if want := "+OK hi\r\n" + goReply + "+OK bye\r\n"; string(got) != want || err != nil {
				t.Errorf("got %q, %v; want %q", got, err, want)
			}
		})
}

// TestFaultProxyCloseWithOpenConns: Close ends relayed, stalled and
// trickling connections that clients keep open, and returns only when
// their goroutines have (withProxy checks for leaks).
func TestFaultProxyCloseWithOpenConns(t *testing.T) {
	for _, f := range []Fault{Pass, Stall, Trickle, CloseMid} {
		t.Run(f.String(), func(t *testing.T) {
			withProxy(t, &FaultProxy{Fault: f, Every: time.Hour, Trigger: []byte("never")},
				func(t *testing.T, p *FaultProxy, _ *backend) {
					var conns []net.Conn
					for range 5 {
						c, _ := dial(t, p.Addr())
						conns = append(conns, c)
					}
					deadline := time.Now().Add(5 * time.Second)
					for p.Accepted() < 5 && time.Now().Before(deadline) {
						time.Sleep(5 * time.Millisecond)
					}
					p.Close()
					for _, c := range conns {
						c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
						if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
							t.Errorf("after Close: %v, want EOF", err)
						}
						c.Close()
					}
				})
		})
	}
}

func TestFaultProxyFreeze(t *testing.T) {
	withProxy(t, &FaultProxy{Fault: Freeze, Trigger: []byte("GO\r\n")}, func(t *testing.T, p *FaultProxy, be *backend) {
		c, r := dial(t, p.Addr())
		defer c.Close()
		io.WriteString(c, "ping\r\n") //nolint:errcheck
		if line, _ := r.ReadString('\n'); line != "+OK hi\r\n" {
			t.Fatalf("greeting %q", line)
		}
		if line, _ := r.ReadString('\n'); line != "ping\r\n" {
			t.Fatalf("echo %q", line)
		}
		io.WriteString(c, "GO\r\nmore\r\n")                       //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
		got, err := io.ReadAll(r)
		var ne net.Error
		if len(got) != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("after the trigger read %q, %v; want nothing, connection open", got, err)
		}
		if got := be.received(); got != "ping\r\nGO\r\n" {
			t.Errorf("the target got %q, want everything up to the trigger", got)
		}
		// The client's close reaches the target, which ends the relay.
		c.(*net.TCPConn).CloseWrite() //nolint:errcheck
		deadline := time.Now().Add(5 * time.Second)
		for {
			be.mu.Lock()
			n := len(be.open)
			be.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the target's connection is still open 5s after the client closed")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
