package harness

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Chunk is one read on a recorded connection.
type Chunk struct {
	Up   bool // true: proxy → upstream; false: upstream → proxy
	Data []byte
	At   time.Duration // since the connection was accepted
}

// RecordedConn is one proxied connection seen by a Recorder.
type RecordedConn struct {
	Chunks []Chunk
	// ProxyClosed / UpstreamClosed: that side sent EOF (or failed).
	ProxyClosed, UpstreamClosed bool
	// DialErr is set when the target could not be reached.
	DialErr string
}

// Sent is everything the proxy sent to the upstream.
func (c RecordedConn) Sent() []byte { return c.join(true) }

// Received is everything the upstream sent to the proxy.
func (c RecordedConn) Received() []byte { return c.join(false) }

func (c RecordedConn) join(up bool) []byte {
	var out []byte
	for _, ch := range c.Chunks {
		if ch.Up == up {
			out = append(out, ch.Data...)
		}
	}
	return out
}

// Done reports whether both directions have ended.
func (c RecordedConn) Done() bool {
	return c.DialErr != "" || (c.ProxyClosed && c.UpstreamClosed)
}

// Recorder is a recording TCP pass-through.
type Recorder struct {
	Addr   string // where the proxy should connect ("127.0.0.1:port")
	Target string // the real upstream

	ln     net.Listener
	mu     sync.Mutex
	conns  []*RecordedConn
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Record starts a pass-through to target on a free loopback port, stopped
// at cleanup. Point the auth server's Auth-Server/Auth-Port at addr.
func Record(t testing.TB, target string) (addr string, rec *Recorder) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: record: %v", err)
	}
	rec = &Recorder{Addr: ln.Addr().String(), Target: target, ln: ln, open: map[net.Conn]struct{}{}}
	rec.wg.Add(1)
	go rec.serve()
	t.Cleanup(rec.Close)
	return rec.Addr, rec
}

// Close stops listening and closes open connections.
func (r *Recorder) Close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Len is the number of connections accepted so far (a mark for Since).
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Conns returns a snapshot of every connection so far.
func (r *Recorder) Conns() []RecordedConn { return r.Since(0) }

// Since returns a snapshot of the connections accepted after mark.
func (r *Recorder) Since(mark int) []RecordedConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []RecordedConn
	for _, c := range r.conns[min(mark, len(r.conns)):] {
		cp := *c
		cp.Chunks = append([]Chunk(nil), c.Chunks...)
		out = append(out, cp)
	}
	return out
}

// WaitIdle waits until every connection after mark has ended on both
// sides, or timeout passes; it reports whether they all ended.
func (r *Recorder) WaitIdle(mark int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		done := true
		for _, c := range r.Since(mark) {
			if !c.Done() {
				done = false
			}
		}
		if done {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *Recorder) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		rc := &RecordedConn{}
		r.mu.Lock()
		r.conns = append(r.conns, rc)
		r.open[c] = struct{}{}
		r.mu.Unlock()
		r.wg.Add(1)
		go r.handle(c, rc)
	}
}

func (r *Recorder) handle(c net.Conn, rc *RecordedConn) {
	defer r.wg.Done()
	start := time.Now()
	u, err := net.DialTimeout("tcp", r.Target, 5*time.Second)
	if err != nil {
		r.mu.Lock()
		rc.DialErr = err.Error()
		delete(r.open, c)
		r.mu.Unlock()
		c.Close()
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	r.open[u] = struct{}{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	pump := func(dst, src net.Conn, up bool) {
		defer wg.Done()
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				r.mu.Lock()
				rc.Chunks = append(rc.Chunks, Chunk{Up: up, Data: append([]byte(nil), buf[:n]...), At: time.Since(start)})
				r.mu.Unlock()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
			if err != nil {
				break
			}
		}
		// Pass the EOF on; a reset or error closes both.
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		r.mu.Lock()
		if up {
			rc.ProxyClosed = true
		} else {
			rc.UpstreamClosed = true
		}
		r.mu.Unlock()
	}
	wg.Add(2)
	go pump(u, c, true)
	go pump(c, u, false)
	wg.Wait()
	c.Close()
	u.Close()
	r.mu.Lock()
	delete(r.open, c)
	delete(r.open, u)
	r.mu.Unlock()
}
