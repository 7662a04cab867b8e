// Package bufpool lends byte buffers by size, so that a connection holds a
// buffer only while bytes are on their way through it: an idle session
// (before login, or relaying) holds none. It also reads from a TCP socket
// without holding a buffer while it waits.
//
// It is a leaf: it imports nothing of ours.
package bufpool

import (
	"io"
	"net"
	"sync"
	"syscall"
)

var pools sync.Map // int → *sync.Pool of *[]byte

// Get lends a buffer of exactly size bytes (its content is undefined).
func Get(size int) *[]byte {
	p, ok := pools.Load(size)
	if !ok {
		p, _ = pools.LoadOrStore(size, &sync.Pool{New: func() any {
			b := make([]byte, size)
			return &b
		}})
	}
	return p.(*sync.Pool).Get().(*[]byte)
}

// Put gives back a buffer from Get. The caller must keep no slice of it.
func Put(b *[]byte) {
	if p, ok := pools.Load(len(*b)); ok {
		p.(*sync.Pool).Put(b)
	}
}

// ReadTCP reads once from a TCP socket into a buffer of size bytes from
// the pool, waiting (under the socket's read deadline) without holding
// one: a buffer is taken for each read() and given back at once when the
// read finds nothing (EAGAIN). A chunk thus costs one read(), not a
// readiness probe and then a read, and a waiting connection holds no
// buffer. End of file is io.EOF; on any error no buffer is returned.
func ReadTCP(rc syscall.RawConn, size int) (*[]byte, int, error) {
	var bp *[]byte
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		bp = Get(size)
		for {
			n, rerr = syscall.Read(int(fd), *bp)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			Put(bp)
			bp = nil
			return false
		}
		return true
	})
	switch {
	case err == nil && rerr == nil && n > 0:
		return bp, n, nil
	case bp != nil:
		Put(bp)
	}
	switch {
	case err != nil:
		return nil, 0, err
	case rerr != nil:
		return nil, 0, &net.OpError{Op: "read", Net: "tcp", Err: rerr}
	}
	return nil, 0, io.EOF
}
