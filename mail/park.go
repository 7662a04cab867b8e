package mail

// Parking idle connections before login (issue 11). A greeted client that
// has sent nothing, or a slow one between commands, would otherwise hold a
// goroutine blocked in read(): its stack, grown by the greeting, is most of
// what such a connection costs (about 4 KiB against nginx's 1 KiB for the
// whole connection). After parkAfter without a byte, the session instead
// registers its socket with the server's parker and its goroutine ends; the
// parker starts a new one when the socket becomes readable, the pre-auth
// deadline passes, or the connection is closed by the server or the admin
// API. The session's state is all in its engine, so the command loop simply
// starts again.
//
// The parker is one epoll instance, itself waited on through Go's own
// poller (an epoll descriptor is readable when it has events), so it needs
// no thread of its own. Sockets are registered EPOLLONESHOT: an event
// disarms the registration, and the next park re-arms it.

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// parkAfter is how long a session waits for its client on its own
// goroutine before parking: long enough that a client answering at once
// (every login of a working client) never pays for parking.
const parkAfter = 200 * time.Millisecond

type parker struct {
	ep   *os.File // the epoll descriptor, in Go's poller
	epfd int

	mu      sync.Mutex
	closed  bool
	next    int32
	waiting map[int32]*parked
}

type parked struct {
	e      *engine
	timer  *time.Timer
	resume func()
}

func newParker() (*parker, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	p := &parker{ep: os.NewFile(uintptr(fd), "parker"), epfd: fd, waiting: map[int32]*parked{}}
	go p.run()
	return p, nil
}

// park registers e's socket; resume runs (on a new goroutine) when it is
// readable, at deadline, or at wakeAll. False means it could not be
// parked (the connection is closed, or the parker is) and the caller
// carries on waiting on its own goroutine.
func (p *parker) park(e *engine, rc syscall.RawConn, deadline time.Time, resume func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.next++
	if p.next <= 0 {
		p.next = 1
	}
	token := p.next
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: token}
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		op := syscall.EPOLL_CTL_MOD
		if !e.epollAdded {
			op = syscall.EPOLL_CTL_ADD
		}
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	}); err != nil || cerr != nil {
		return false
	}
	e.epollAdded = true
	e.parkToken = token
	w := &parked{e: e, resume: resume}
	p.waiting[token] = w
	w.timer = time.AfterFunc(time.Until(deadline), func() { p.wake(token) })
	return true
}

// wake resumes the session parked under token, once.
func (p *parker) wake(token int32) {
	p.mu.Lock()
	w := p.waiting[token]
	delete(p.waiting, token)
	if w != nil {
		w.e.parkToken = 0
	}
	p.mu.Unlock()
	if w == nil {
		return
	}
	w.timer.Stop()
	go w.resume()
}

// wakeAll resumes every parked session and parks no more: the server is
// closing their connections, which the sessions then find closed.
func (p *parker) wakeAll() {
	p.mu.Lock()
	p.closed = true
	tokens := make([]int32, 0, len(p.waiting))
	for t := range p.waiting {
		tokens = append(tokens, t)
	}
	p.mu.Unlock()
	for _, t := range tokens {
		p.wake(t)
	}
}

// wakeEngine resumes e if it is parked (the admin API ended it).
func (p *parker) wakeEngine(e *engine) {
	p.mu.Lock()
	token := e.parkToken
	p.mu.Unlock()
	if token != 0 {
		p.wake(token)
	}
}

// close stops the parker once its server's sessions are over.
func (p *parker) close() {
	p.wakeAll()
	p.ep.Close()
}

// run waits for readable sockets and resumes their sessions.
func (p *parker) run() {
	rc, err := p.ep.SyscallConn()
	if err != nil {
		return
	}
	var events [64]syscall.EpollEvent
	for {
		var n int
		var werr error
		if err := rc.Read(func(fd uintptr) bool {
			n, werr = syscall.EpollWait(int(fd), events[:], 0)
			return n > 0 || (werr != nil && werr != syscall.EINTR)
		}); err != nil || n <= 0 {
			return // closed
		}
		for _, ev := range events[:n] {
			p.wake(ev.Fd)
		}
	}
}
