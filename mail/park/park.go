// Package park holds idle connections without a goroutine (issue 11). A
// goroutine blocked in read() keeps its stack, which is most of what an
// idle connection costs a Go server; nginx's costs a few hundred bytes.
// A connection that has been quiet for a while is instead registered with
// a Parker, its goroutine ends, and the Parker calls it back on a new
// goroutine when the socket is readable, when its deadline passes, or when
// Wake or Close says so (the connection is being closed).
//
// The Parker is one epoll instance (EPOLLONESHOT registrations, removed at
// each wake-up), itself waited on through Go's poller, so it needs no
// thread of its own. Parking costs an epoll_ctl() each way; it is for
// connections quiet long enough for that not to matter.
//
// It is a leaf: it imports nothing of ours.
package park

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Ticket names a parked connection, for Wake; 0 is none.
type Ticket = int32

// A Parker holds parked connections.
type Parker struct {
	ep   *os.File // the epoll descriptor, in Go's poller
	epfd int

	mu      sync.Mutex
	closed  bool
	next    Ticket
	waiting map[Ticket]*parked
}

type parked struct {
	rc     syscall.RawConn
	timer  *time.Timer
	resume func()
}

// New makes a Parker and starts its goroutine.
func New() (*Parker, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	p := &Parker{ep: os.NewFile(uintptr(fd), "parker"), epfd: fd, waiting: map[Ticket]*parked{}}
	go p.run()
	return p, nil
}

// Park registers rc's socket. resume runs once, on a new goroutine, when
// the socket is readable (data, end of file or an error), at deadline (the
// zero time: never), or at Wake or Close. The ticket is recorded in slot
// (if not nil) before resume can run. It returns 0 when the socket could
// not be parked (it is closed, or the Parker is): the caller then waits on
// its own goroutine.
func (p *Parker) Park(rc syscall.RawConn, deadline time.Time, slot *Slot, resume func()) Ticket {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0
	}
	p.next++
	if p.next <= 0 {
		p.next = 1
	}
	t := p.next
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: t}
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil || cerr != nil {
		return 0
	}
	w := &parked{rc: rc, resume: resume}
	p.waiting[t] = w
	if slot != nil {
		slot.t.Store(t)
	}
	if !deadline.IsZero() {
		w.timer = time.AfterFunc(time.Until(deadline), func() { p.Wake(t) })
	}
	return t
}

// Wake resumes the connection parked under t, if it still is.
func (p *Parker) Wake(t Ticket) {
	if t == 0 {
		return
	}
	p.mu.Lock()
	w := p.waiting[t]
	delete(p.waiting, t)
	p.mu.Unlock()
	if w == nil {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	// A closed socket has left the epoll set by itself; Control then
	// fails and nothing is touched.
	w.rc.Control(func(fd uintptr) { //nolint:errcheck
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) //nolint:errcheck
	})
	go w.resume()
}

// Close resumes every parked connection and parks no more.
func (p *Parker) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	tickets := make([]Ticket, 0, len(p.waiting))
	for t := range p.waiting {
		tickets = append(tickets, t)
	}
	p.mu.Unlock()
	for _, t := range tickets {
		p.Wake(t)
	}
	p.ep.Close()
}

// Parked is the number of parked connections.
func (p *Parker) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// run waits for readable sockets and resumes their connections.
func (p *Parker) run() {
	rc, err := p.ep.SyscallConn()
	if err != nil {
		return
	}
	var events [64]syscall.EpollEvent
	for {
		var n int
		if err := rc.Read(func(fd uintptr) bool {
			var werr error
			n, werr = syscall.EpollWait(int(fd), events[:], 0)
			return n > 0 || (werr != nil && werr != syscall.EINTR)
		}); err != nil || n <= 0 {
			return // closed
		}
		for _, ev := range events[:n] {
			p.Wake(ev.Fd)
		}
	}
}

// Slot holds the ticket of whatever is parked for one owner (a session, a
// relay direction), so that whoever closes the connection can wake it.
type Slot struct{ t atomic.Int32 }

// Wake wakes what is recorded, if it is still parked.
func (s *Slot) Wake(p *Parker) {
	if p != nil {
		p.Wake(s.t.Load())
	}
}
