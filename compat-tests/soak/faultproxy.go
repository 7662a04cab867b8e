// Package soak holds the long-running and hostile-client tests of
// mailgate (issue 9): a mixed POP3/IMAP/SMTP load with failing upstreams
// and auth answers, reloads and a graceful stop, and attacks on the
// pre-auth state run side by side against nginx. See README.md.
//
// This file is the fault-injecting TCP proxy put between mailgate and
// the real Dovecot and Postfix.
package soak

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Fault is what a FaultProxy does to every connection it gets.
type Fault int

// The faults. The names are used in reports.
const (
	Pass     Fault = iota // relay both ways unchanged
	Refuse                // the port is bound but not listening: connect fails
	Reset                 // accept, then close with a TCP reset
	Stall                 // accept, read and drop everything, never answer
	Garbage               // answer with random bytes and lines, never a greeting
	CloseMid              // relay, then close both sides part way through a reply
	Trickle               // relay, target→client in small chunks with pauses
	Freeze                // relay until Trigger, then drop everything both ways, keeping both open
)

var faultNames = [...]string{"pass", "refuse", "reset", "stall", "garbage", "closemid", "trickle", "freeze"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// FaultProxy listens on a loopback port and treats every connection the
// same way (its Fault). Close stops it and waits for every goroutine.
type FaultProxy struct {
	Target string
	Fault  Fault

	// CloseMid: once Trigger has been seen in the client→target stream,
	// CutAfter more bytes are relayed in the cut direction (target→client
	// when CutDown, else client→target) and then both sides are closed.
	// Freeze: once Trigger has been seen, nothing more is relayed either
	// way; both connections stay open until one side closes.
	Trigger  []byte
	CutDown  bool
	CutAfter int

	// Trickle: target→client bytes go out Chunk at a time, Every apart.
	Chunk int
	Every time.Duration

	// StallFor bounds how long Stall and Garbage keep a connection open
	// when the client does not close it (0: until Close).
	StallFor time.Duration

	garbage atomic.Pointer[[]byte] // SetGarbage

	addr     string
	ln       net.Listener
	fd       int // Refuse: the bound, not listening socket
	mu       sync.Mutex
	open     map[net.Conn]struct{}
	closed   bool
	quit     chan struct{}
	wg       sync.WaitGroup
	accepted atomic.Int64
}

// NewFaultProxy starts a proxy with fault f in front of target. Set the
// fault's fields on the returned value before the first connection
// arrives; use Listen for them to be set before it can.
func NewFaultProxy(target string, f Fault) (*FaultProxy, error) {
	return Listen(&FaultProxy{Target: target, Fault: f})
}

// Listen starts p (Target, Fault and its options already set).
func Listen(p *FaultProxy) (*FaultProxy, error) {
	p.open = map[net.Conn]struct{}{}
	p.quit = make(chan struct{})
	p.fd = -1
	if p.Chunk <= 0 {
		p.Chunk = 64
	}
	if p.Every <= 0 {
		p.Every = 5 * time.Millisecond
	}
	if p.Fault == Refuse {
		fd, addr, err := boundNotListening()
		if err != nil {
			return nil, err
		}
		p.fd, p.addr = fd, addr
		return p, nil
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.ln, p.addr = ln, ln.Addr().String()
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// boundNotListening reserves a loopback port that refuses connections:
// a socket bound to it that never listens keeps anyone else from taking
// the port while the kernel answers every SYN with a reset.
func boundNotListening() (int, string, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, "", err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return -1, "", err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return -1, "", err
	}
	return fd, fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port), nil
}

// Addr is where clients (mailgate) connect: "127.0.0.1:PORT".
func (p *FaultProxy) Addr() string { return p.addr }

// Accepted is the number of connections accepted so far.
func (p *FaultProxy) Accepted() int64 { return p.accepted.Load() }

// Close stops listening, closes every open connection and waits until
// all of the proxy's goroutines have returned.
func (p *FaultProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.quit)
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	var err error
	if p.ln != nil {
		err = p.ln.Close()
	}
	if p.fd >= 0 {
		err = syscall.Close(p.fd)
	}
	p.wg.Wait()
	return err
}

// track registers c to be closed by Close; false if already closing.
func (p *FaultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *FaultProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.open, c)
		c.Close()
	}
}

func (p *FaultProxy) serve() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-p.quit:
				return
			default:
			}
			// EMFILE and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-p.quit:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		p.accepted.Add(1)
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *FaultProxy) handle(c net.Conn) {
	switch p.Fault {
	case Reset:
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) //nolint:errcheck
		}
		p.untrack(c)
	case Stall:
		p.drain(c, nil)
		p.untrack(c)
	case Garbage:
		g := randomGarbage()
		if b := p.garbage.Load(); b != nil {
			g = *b
		}
		p.drain(c, g)
		p.untrack(c)
	default:
		p.relay(c)
	}
}

// SetGarbage makes a Garbage proxy send b on every connection from now
// on instead of random bytes (nil: random again).
func (p *FaultProxy) SetGarbage(b []byte) {
	if b == nil {
		p.garbage.Store(nil)
		return
	}
	p.garbage.Store(&b)
}

// randomGarbage is what a Garbage upstream says instead of a greeting:
// random bytes, some lines, NULs, a long run without a line end.
func randomGarbage() []byte {
	var b bytes.Buffer
	for range 1 + rand.IntN(4) {
		n := 1 + rand.IntN(200)
		for range n {
			b.WriteByte(byte(rand.IntN(256)))
		}
		if rand.IntN(2) == 0 {
			b.WriteString("\r\n")
		}
	}
	return b.Bytes()
}

// drain writes first (if any), then reads and drops everything until the
// peer closes, StallFor passes or the proxy closes.
func (p *FaultProxy) drain(c net.Conn, first []byte) {
	if len(first) > 0 {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		if _, err := c.Write(first); err != nil {
			return
		}
	}
	if p.StallFor > 0 {
		c.SetReadDeadline(time.Now().Add(p.StallFor)) //nolint:errcheck
	} else {
		c.SetReadDeadline(time.Time{}) //nolint:errcheck
	}
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// relay copies both ways, applying CloseMid and Trickle.
func (p *FaultProxy) relay(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.Target, 5*time.Second)
	if err != nil {
		p.untrack(c)
		return
	}
	if !p.track(u) {
		p.untrack(c)
		return
	}
	var (
		armed  atomic.Bool  // CloseMid: Trigger seen client→target
		budget atomic.Int64 // CloseMid: bytes left in the cut direction
		once   sync.Once
		cutOff atomic.Bool // CloseMid: both sides have been sent FIN
		wg     sync.WaitGroup
	)
	budget.Store(int64(p.CutAfter))
	// cut ends both sides with FIN and then drains what is still in
	// flight: closing a socket with unread bytes would send RST instead,
	// and whether the proxy then reads "connection reset" or end of file
	// would depend on timing, not on the proxy.
	cut := func() {
		once.Do(func() {
			cutOff.Store(true)
			for _, x := range []net.Conn{c, u} {
				if tc, ok := x.(*net.TCPConn); ok {
					tc.CloseWrite() //nolint:errcheck
				}
				x.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			}
		})
	}
	// send writes b to dst, honouring the cut for this direction; it
	// reports false when the connection is finished.
	send := func(dst net.Conn, b []byte, down bool) bool {
		if p.Fault == Freeze && armed.Load() {
			return true // dropped
		}
		if p.Fault == CloseMid && armed.Load() && down == p.CutDown {
			left := budget.Load()
			if int64(len(b)) >= left {
				dst.Write(b[:left]) //nolint:errcheck
				cut()
				return false
			}
			budget.Add(-int64(len(b)))
		}
		if p.Fault == Trickle && down {
			for len(b) > 0 {
				n := min(p.Chunk, len(b))
				if _, err := dst.Write(b[:n]); err != nil {
					return false
				}
				b = b[n:]
				select {
				case <-p.quit:
					return false
				case <-time.After(p.Every):
				}
			}
			return true
		}
		_, err := dst.Write(b)
		return err == nil
	}
	pump := func(dst, src net.Conn, down bool) {
		defer wg.Done()
		buf := make([]byte, 16*1024)
		var tail []byte // the last len(Trigger)-1 bytes, to find a split trigger
		for {
			n, err := src.Read(buf)
			if n > 0 && !cutOff.Load() {
				b := buf[:n]
				if !down && (p.Fault == CloseMid || p.Fault == Freeze) && !armed.Load() && len(p.Trigger) > 0 {
					joined := append(tail, b...)
					if i := bytes.Index(joined, p.Trigger); i >= 0 {
						// Relay up to the end of the trigger, then arm.
						end := i + len(p.Trigger) - len(tail)
						if end > 0 {
							if !send(dst, b[:end], down) {
								break
							}
						}
						armed.Store(true)
						b = b[max(end, 0):]
					} else if k := len(p.Trigger) - 1; len(joined) > k {
						tail = append(tail[:0], joined[len(joined)-k:]...)
					} else {
						tail = joined
					}
				}
				if len(b) > 0 && !send(dst, b, down) && !cutOff.Load() {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if cutOff.Load() {
			return // cut already sent FIN both ways
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite() //nolint:errcheck
		}
	}
	wg.Add(2)
	go pump(u, c, false)
	go pump(c, u, true)
	wg.Wait()
	p.untrack(c, u)
}
