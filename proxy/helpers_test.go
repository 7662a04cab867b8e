package proxy

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Tests listen only on 127.0.0.1 ports 23500-23999 (this package's share
// of the team's port range).
var nextPort atomic.Int32

func listenLocal(t testing.TB) net.Listener {
	t.Helper()
	for range 500 {
		p := 23500 + int(nextPort.Add(1))%500
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err == nil {
			return l
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
	t.Fatal("no free port in 23500-23999")
	return nil
}

// Reply actions of a scripted upstream, besides plain bytes.
var (
	hang   = []byte(nil)          // send nothing, keep the connection open
	hangup = []byte("\x00HANGUP") // close the connection
)

// fakeUpstream is a scripted upstream: it sends greeting, then answers
// every received line (LF-terminated) with the next reply, and records
// every byte it received.
type fakeUpstream struct {
	l       net.Listener
	mu      sync.Mutex
	got     bytes.Buffer
	done    chan struct{}
	conn    net.Conn
	release chan struct{}
}

func newFakeUpstream(t testing.TB, greeting []byte, replies ...[]byte) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{l: listenLocal(t), done: make(chan struct{}), release: make(chan struct{})}
	go f.serve(greeting, replies)
	t.Cleanup(func() {
		f.l.Close()
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		if f.conn != nil {
			f.conn.Close()
		}
	})
	return f
}

func (f *fakeUpstream) serve(greeting []byte, replies [][]byte) {
	defer close(f.done)
	c, err := f.l.Accept()
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conn = c
	f.mu.Unlock()
	defer c.Close()
	if greeting != nil {
		if bytes.Equal(greeting, hangup) {
			return
		}
		c.Write(greeting)
	}
	var line []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		f.mu.Lock()
		f.got.Write(buf[:n])
		f.mu.Unlock()
		line = append(line, buf[:n]...)
		for {
			i := bytes.IndexByte(line, '\n')
			if i < 0 {
				break
			}
			line = line[i+1:]
			if len(replies) == 0 {
				continue
			}
			r := replies[0]
			replies = replies[1:]
			switch {
			case bytes.Equal(r, hangup):
				return
			case r == nil:
			default:
				c.Write(r)
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *fakeUpstream) addr() string { return f.l.Addr().String() }

// received waits until the upstream has hung up or the dialog ended, then
// returns what it got.
func (f *fakeUpstream) received(wait time.Duration) []byte {
	select {
	case <-f.done:
	case <-time.After(wait):
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.got.Bytes())
}
