package proxy

import (
	"runtime"
	"sync"
	"syscall"
)

// Relay buffers come from mail/bufpool, one pool per size (proxy_buffer
// and the protocols' client buffers).

// splicePipe is a kernel pipe used to splice upstream → client without
// copying through user space. It is taken from the pool only while data
// flows and given back when the upstream has nothing more to read, so idle
// sessions hold no pipe (no extra file descriptors).
type splicePipe struct {
	r, w int
	data int // bytes in the pipe not yet sent on
}

const pipeSize = 1 << 18

var pipePool = sync.Pool{New: func() any {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil
	}
	// A bigger pipe means fewer splice calls per megabyte; its pages are
	// only allocated while data sits in it. Best effort: the limit for
	// unprivileged users is /proc/sys/fs/pipe-max-size.
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), syscall.F_SETPIPE_SZ, pipeSize)
	p := &splicePipe{r: fds[0], w: fds[1]}
	runtime.AddCleanup(p, func(fds [2]int) {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
	}, fds)
	return p
}}

func getPipe() *splicePipe {
	p, _ := pipePool.Get().(*splicePipe)
	return p
}

// putPipe returns a pipe to the pool. Data left in it by an aborted
// transfer is thrown away first.
func putPipe(p *splicePipe) {
	if p.data != 0 {
		var junk [4096]byte
		for {
			n, err := syscall.Read(p.r, junk[:])
			if n <= 0 || err != nil {
				break
			}
		}
		p.data = 0
	}
	pipePool.Put(p)
}
