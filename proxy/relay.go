package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mailgate/mail/bufpool"
	"mailgate/mail/errlog"
	"mailgate/mail/park"
)

// HalfCloseGrace bounds how long the relay keeps delivering upstream →
// client traffic after the client half-closed its side (see
// docs/relay.md): the session ends once the upstream closes, or after this
// long without upstream → client progress. A reply in flight arrives within
// milliseconds and every chunk renews the grace, so one second delivers it;
// longer only holds a silent upstream open after the client is gone (and
// most client EOFs are full closes, not half-closes).
var HalfCloseGrace = time.Second

// A client write that takes longer than this is taken as a blocked send
// (only where the relay cannot see EAGAIN: TLS or other non-TCP clients);
// its completion re-arms proxy_timeout as nginx's client write event does.
const blockedWrite = 5 * time.Millisecond

// Actions nginx logs relay errors with.
const (
	ActionProxying         = "proxying"
	ActionReadingClient    = "proxying and reading from client"
	ActionSendingUpstream  = "proxying and sending to upstream"
	ActionReadingUpstream  = "proxying and reading from upstream"
	ActionSendingClient    = "proxying and sending to client"
	maxSplice              = 1 << 20
	spliceFlags            = 0x2 // SPLICE_F_NONBLOCK
	defaultRelayBufferSize = 4096
)

// relayParkAfter is how long a relay direction waits on its goroutine
// before it is parked (o.Parker): the session is idle (an IMAP IDLE, a
// client between commands), and its goroutines' stacks would be most of
// what it costs.
var relayParkAfter = 200 * time.Millisecond

type relay struct {
	client, upstream net.Conn
	o                RelayOptions
	grace            time.Duration
	cliRaw, upRaw    syscall.RawConn // nil unless a plain *net.TCPConn

	// Parking (o.Parker): the slots hold each direction's ticket, so that
	// finish and a client half-close can wake them; noPark is set by a
	// direction for itself when parking failed.
	upSlot, downSlot     park.Slot
	upNoPark, downNoPark bool
	pending              atomic.Int32 // directions still running
	stopShutdown         func() bool
	onDone               func(RelayResult)

	last      atomic.Int64 // unix nanoseconds of the last client activity
	clientEOF atomic.Bool
	closing   atomic.Bool
	once      sync.Once
	res       RelayResult
	up, down  atomic.Int64
}

// Relay copies bytes both ways between client and upstream after the
// hand-off until one side ends, then closes both connections, like
// nginx's ngx_mail_proxy_handler:
//
//   - client → upstream through a buffer of o.ClientBuffer bytes; every
//     client read re-arms proxy_timeout (o.Timeout);
//   - upstream → client through a buffer of o.UpstreamBuffer bytes, or by
//     splice(2) when both ends are plain *net.TCPConn; this traffic does
//     not re-arm proxy_timeout, except that a client write completing
//     after a blocked send does (nginx's client write event);
//   - proxy_timeout expiring closes both ("client timed out");
//   - an upstream EOF or error, or a client error, closes both at once;
//   - a client EOF (half-close) is where mailgate differs: the upstream's
//     answer still in flight is delivered, until the upstream closes or
//     HalfCloseGrace passes without upstream → client progress.
//
// Buffers and splice pipes are pooled and taken only while data moves, so
// an idle session holds neither.
func Relay(client, upstream net.Conn, o RelayOptions) RelayResult {
	ch := make(chan RelayResult, 1)
	NewRelayer(client, upstream, o).Run(func(res RelayResult) { ch <- res })
	return <-ch
}

// A Relayer is Relay without waiting for the end. With o.Parker, a
// direction idle for relayParkAfter is parked: an idle session then holds
// no goroutine.
type Relayer struct{ r *relay }

// NewRelayer prepares the relay of client and upstream (see Relay).
func NewRelayer(client, upstream net.Conn, o RelayOptions) *Relayer {
	if o.ClientBuffer <= 0 {
		o.ClientBuffer = defaultRelayBufferSize
	}
	if o.UpstreamBuffer <= 0 {
		o.UpstreamBuffer = defaultRelayBufferSize
	}
	r := &relay{client: client, upstream: upstream, o: o, grace: HalfCloseGrace}
	if o.Timeout > 0 && o.Timeout < r.grace {
		r.grace = o.Timeout
	}
	if tc, ok := client.(*net.TCPConn); ok {
		r.cliRaw, _ = tc.SyscallConn()
	}
	if tc, ok := upstream.(*net.TCPConn); ok {
		r.upRaw, _ = tc.SyscallConn()
	}
	return &Relayer{r}
}

// Run relays: the upstream → client direction on the calling goroutine
// until it ends or parks, the other on a new goroutine. done is called
// once both are over (both connections closed), on whichever goroutine
// ends last.
func (x *Relayer) Run(done func(RelayResult)) {
	r := x.r
	r.onDone = done
	r.touch()
	r.pending.Store(2)
	if r.o.Shutdown != nil {
		r.stopShutdown = context.AfterFunc(r.o.Shutdown, r.shutdown)
	}
	go r.runUp()
	r.runDown()
}

// Wake resumes parked directions: whoever closes the relay's connections
// (the admin API ending a session) calls it after closing them, and the
// directions find them closed.
func (x *Relayer) Wake() {
	x.r.upSlot.Wake(x.r.o.Parker)
	x.r.downSlot.Wake(x.r.o.Parker)
}

// parkAfter is how long a direction waits before it parks.
func (r *relay) parkAfter() time.Duration {
	if r.o.ParkAfter > 0 {
		return r.o.ParkAfter
	}
	return relayParkAfter
}

// runUp and runDown run (or resume) one direction; unless it parked,
// its end is counted.
func (r *relay) runUp() {
	if !r.clientToUpstream() {
		r.directionDone()
	}
}

func (r *relay) runDown() {
	if !r.upstreamToClient() {
		r.directionDone()
	}
}

// directionDone ends the relay once both directions are over.
func (r *relay) directionDone() {
	if r.pending.Add(-1) != 0 {
		return
	}
	if r.stopShutdown != nil {
		r.stopShutdown()
	}
	r.finish(nil) // both directions are over; make sure both are closed
	res := r.res
	res.BytesUp = r.up.Load()
	res.BytesDown = r.down.Load()
	res.ClientEOF = r.clientEOF.Load()
	r.onDone(res)
}

// upstreamToClient is the upstream → client direction; true: it parked.
func (r *relay) upstreamToClient() (parked bool) {
	defer r.contain()
	if r.cliRaw != nil && r.upRaw != nil {
		return r.spliceDown()
	}
	return r.copyDown()
}

// parkUp and parkDown park an idle direction; resume runs it again. A
// relay that is ending, or (down) a client that half-closed meanwhile,
// wakes it at once: the direction then finds out for itself.
func (r *relay) parkUp() bool {
	var deadline time.Time
	if r.o.Timeout > 0 {
		deadline = r.expiry()
	}
	if r.o.Parker.Park(r.cliRaw, deadline, &r.upSlot, r.runUp) == 0 {
		r.upNoPark = true
		return false
	}
	if r.closing.Load() {
		r.upSlot.Wake(r.o.Parker)
	}
	return true
}

func (r *relay) parkDown() bool {
	if r.o.Parker.Park(r.upRaw, time.Time{}, &r.downSlot, r.runDown) == 0 {
		r.downNoPark = true
		return false
	}
	if r.closing.Load() || r.clientEOF.Load() {
		r.downSlot.Wake(r.o.Parker)
	}
	return true
}

// downWait sets the upstream read deadline of an upstream → client wait;
// true: the wait may end in parking.
func (r *relay) downWait() bool {
	if r.o.Parker == nil || r.downNoPark || r.clientEOF.Load() {
		return false // after a half-close, the grace deadline rules
	}
	r.upstream.SetReadDeadline(time.Now().Add(r.parkAfter())) //nolint:errcheck
	return true
}

// addUp and addDown count relayed bytes, and the live counters if any.
func (r *relay) addUp(n int64) {
	r.up.Add(n)
	if r.o.BytesUp != nil {
		r.o.BytesUp.Add(n)
	}
}

func (r *relay) addDown(n int64) {
	r.down.Add(n)
	if r.o.BytesDown != nil {
		r.o.BytesDown.Add(n)
	}
}

func (r *relay) touch() { r.last.Store(time.Now().UnixNano()) }

// expiry is when proxy_timeout fires unless the client is active first.
func (r *relay) expiry() time.Time {
	return time.Unix(0, r.last.Load()).Add(r.o.Timeout)
}

// finish records how the session ended (the first caller wins) and closes
// both connections, which also stops the other direction.
func (r *relay) finish(set func(*RelayResult)) {
	r.once.Do(func() {
		r.closing.Store(true)
		if set != nil {
			set(&r.res)
		}
		r.client.Close()
		r.upstream.Close()
	})
	// A parked direction finds its connection closed and ends.
	r.upSlot.Wake(r.o.Parker)
	r.downSlot.Wake(r.o.Parker)
}

// done ends the session the normal way: "proxied session done".
func (r *relay) done() {
	r.finish(func(res *RelayResult) { res.LogDone = true })
}

// contain recovers a panic of the goroutine it is deferred in: the session
// ends (both connections close) and the panic is reported at alert, but
// the process and every other session go on. The engine guards the other
// direction, which runs on its own goroutine.
func (r *relay) contain() {
	if v := recover(); v != nil {
		text := errlog.PanicText(v)
		// The panic is reported even when the other direction ended the
		// session first: once finish has returned nobody else writes
		// r.res, and Relay reads it only after this goroutine is done.
		r.finish(nil)
		r.res = RelayResult{Log: text, Level: LevelAlert, Action: ActionProxying, Panicked: true}
	}
}

func (r *relay) shutdown() {
	r.finish(func(res *RelayResult) {
		res.Log = "shutdown timeout"
		res.Level = LevelInfo
		res.Action = ActionProxying
	})
}

func (r *relay) timedOut() {
	r.finish(func(res *RelayResult) {
		res.Log = "client timed out (110: Connection timed out)"
		res.Level = LevelInfo
		res.Action = ActionProxying
	})
}

// failed records a socket error with nginx's log line: client-side errors
// at info, upstream-side ones at error; recv() errors are followed by
// "proxied session done", send() errors are not.
func (r *relay) failed(clientSide bool, op string, err error) {
	r.finish(func(res *RelayResult) {
		if errno := errlog.Errno(err); errno != 0 {
			res.Log = op + "() failed " + errlog.ErrnoText(errno)
		} else {
			res.Log = op + "() failed: " + err.Error()
		}
		res.LogDone = op == "recv"
		if clientSide {
			res.Level = LevelInfo
			res.Action = map[string]string{"recv": ActionReadingClient, "send": ActionSendingClient}[op]
		} else {
			res.Level = LevelError
			res.Action = map[string]string{"recv": ActionReadingUpstream, "send": ActionSendingUpstream}[op]
		}
	})
}

// clientToUpstream is the client → upstream direction; true: it parked.
func (r *relay) clientToUpstream() (parked bool) {
	defer r.contain()
	for {
		if r.cliRaw != nil {
			switch r.forwardUp() {
			case stepStop:
				return false
			case stepIdle:
				if r.parkUp() {
					return true
				}
			}
			continue
		}
		if r.o.Timeout > 0 {
			r.client.SetReadDeadline(r.expiry())
		}
		bp := bufpool.Get(r.o.ClientBuffer)
		n, err := r.client.Read(*bp)
		if n > 0 {
			r.touch()
			werr := r.writeUpstream((*bp)[:n])
			bufpool.Put(bp)
			if werr != nil {
				return false
			}
		} else {
			bufpool.Put(bp)
		}
		if err != nil && !r.clientReadErr(err) {
			return false
		}
	}
}

// A step of a direction goes on, ends it, or finds the peer idle.
type step int

const (
	stepOn step = iota
	stepStop
	stepIdle
)

// forwardUp waits for a TCP client under proxy_timeout, or for less when
// it may park, and forwards what it sent.
func (r *relay) forwardUp() step {
	var wait time.Time
	if r.o.Timeout > 0 {
		wait = r.expiry()
	}
	idle := false
	if r.o.Parker != nil && !r.upNoPark {
		if short := time.Now().Add(r.parkAfter()); wait.IsZero() || short.Before(wait) {
			wait, idle = short, true
		}
	}
	if idle || r.o.Timeout > 0 {
		r.client.SetReadDeadline(wait) //nolint:errcheck
	}
	bp, n, err := bufpool.ReadTCP(r.cliRaw, r.o.ClientBuffer)
	if err != nil {
		if idle && errlog.IsTimeout(err) && !r.closing.Load() {
			return stepIdle
		}
		if r.clientReadErr(err) {
			return stepOn
		}
		return stepStop
	}
	defer bufpool.Put(bp)
	r.touch()
	if r.writeUpstream((*bp)[:n]) != nil {
		return stepStop
	}
	return stepOn
}

// writeUpstream writes all of b. A blocked upstream does not stop the
// client-side timer: the write gives up when proxy_timeout expires.
func (r *relay) writeUpstream(b []byte) error {
	for len(b) > 0 {
		if r.o.Timeout > 0 {
			r.upstream.SetWriteDeadline(r.expiry())
		}
		n, err := r.upstream.Write(b)
		r.addUp(int64(n))
		b = b[n:]
		if err == nil {
			continue
		}
		switch {
		case r.closing.Load():
		case isClosed(err):
			r.finish(nil)
		case errlog.IsTimeout(err) && time.Now().Before(r.expiry()) && !isTLS(r.upstream):
			// A TLS connection cannot write again after a timeout (its
			// state is lost): there the first expiry ends the session.
			continue
		case errlog.IsTimeout(err):
			r.timedOut()
		default:
			r.failed(false, "send", err)
		}
		return err
	}
	return nil
}

// clientReadErr handles a client read error; true means keep going.
func (r *relay) clientReadErr(err error) bool {
	switch {
	case r.closing.Load():
		return false
	case errlog.IsTimeout(err):
		if time.Now().Before(r.expiry()) {
			return true // re-armed by client write activity meanwhile
		}
		if r.cliRaw != nil && readableNow(r.cliRaw) {
			// The client's bytes and the timer are due together: nginx
			// handles the read event first, which re-arms the timer.
			r.touch()
			return true
		}
		r.timedOut()
		return false
	case isClosed(err):
		r.finish(nil) // closed by the caller: nothing to log
		return false
	case errors.Is(err, io.EOF):
		// Half-close: keep the upstream's answer coming (docs/relay.md).
		r.clientEOF.Store(true)
		r.renewGrace()
		r.downSlot.Wake(r.o.Parker) // a parked upstream wait takes the grace
		return false
	}
	r.failed(true, "recv", err)
	return false
}

// renewGrace (after a client half-close) gives the upstream → client
// direction another HalfCloseGrace.
func (r *relay) renewGrace() {
	if !r.clientEOF.Load() {
		return
	}
	t := time.Now().Add(r.grace)
	r.upstream.SetReadDeadline(t)
	r.client.SetWriteDeadline(t)
}

// upstreamReadErr handles the end of the upstream → client direction.
func (r *relay) upstreamReadErr(err error) bool {
	switch {
	case r.closing.Load():
		return false
	case isClosed(err):
		r.finish(nil) // closed by the caller: nothing to log
	case errors.Is(err, io.EOF):
		r.done()
	case errlog.IsTimeout(err) && r.clientEOF.Load():
		r.done() // nothing more came within the half-close grace
	case errlog.IsTimeout(err):
		return true // a stale grace deadline cannot happen; keep reading
	default:
		r.failed(false, "recv", err)
	}
	return false
}

func (r *relay) clientWriteErr(err error) {
	switch {
	case r.closing.Load():
	case isClosed(err):
		r.finish(nil)
	case errlog.IsTimeout(err) && r.clientEOF.Load():
		r.done()
	default:
		r.failed(true, "send", err)
	}
}

// copyDown is upstream → client through a pooled proxy_buffer; true: it
// parked.
func (r *relay) copyDown() bool {
	for {
		var bp *[]byte
		var n int
		var err error
		idle := false
		if r.upRaw != nil {
			idle = r.downWait()
			bp, n, err = bufpool.ReadTCP(r.upRaw, r.o.UpstreamBuffer)
		} else {
			bp = bufpool.Get(r.o.UpstreamBuffer)
			n, err = r.upstream.Read(*bp)
		}
		if n > 0 {
			t0 := time.Now()
			w, werr := r.client.Write((*bp)[:n])
			r.addDown(int64(w))
			bufpool.Put(bp)
			if werr != nil {
				r.clientWriteErr(werr)
				return false
			}
			if time.Since(t0) > blockedWrite {
				r.touch()
			}
			r.renewGrace()
		} else if bp != nil {
			bufpool.Put(bp)
		}
		if idle && errlog.IsTimeout(err) && !r.clientEOF.Load() && !r.closing.Load() {
			if r.parkDown() {
				return true
			}
			continue
		}
		if err != nil && !r.upstreamReadErr(err) {
			return false
		}
	}
}

// spliceDown is upstream → client with splice(2) through a pooled pipe;
// true: it parked. Like forwardUp it waits without holding the pipe: one
// is taken for each splice from the upstream and given back when that
// finds nothing, so an idle session holds no pipe (no file descriptors)
// and a chunk costs one splice in and one out.
func (r *relay) spliceDown() bool {
	for {
		var p *splicePipe
		var n int64
		var serr error
		noPipe := false
		idle := r.downWait()
		if err := r.upRaw.Read(func(fd uintptr) bool {
			if p = getPipe(); p == nil {
				noPipe = true
				return true
			}
			for {
				n, serr = syscall.Splice(int(fd), nil, p.w, nil, maxSplice, spliceFlags)
				if serr != syscall.EINTR {
					break
				}
			}
			if serr == syscall.EAGAIN {
				putPipe(p)
				p = nil
				return false
			}
			return true
		}); err != nil {
			if p != nil {
				putPipe(p)
			}
			if idle && errlog.IsTimeout(err) && !r.clientEOF.Load() && !r.closing.Load() {
				if r.parkDown() {
					return true
				}
				continue
			}
			if r.upstreamReadErr(err) {
				continue
			}
			return false
		}
		switch {
		case noPipe:
			return r.copyDown()
		case serr != nil:
			putPipe(p)
			r.upstreamReadErr(&net.OpError{Op: "read", Net: "tcp", Err: serr})
			return false
		case n == 0:
			putPipe(p)
			r.upstreamReadErr(io.EOF)
			return false
		}
		p.data += int(n)
		err := r.pump(p)
		putPipe(p)
		if err != nil {
			r.clientWriteErr(err)
			return false
		}
	}
}

// pump moves the pipe's content to the client. A send that has to wait
// for the client to drain its socket counts as client activity once it
// completes (nginx re-arms proxy_timeout on the client's write event).
func (r *relay) pump(p *splicePipe) error {
	for p.data > 0 {
		blocked := false
		var n int64
		var serr error
		err := r.cliRaw.Write(func(fd uintptr) bool {
			for {
				n, serr = syscall.Splice(p.r, nil, int(fd), nil, p.data, spliceFlags)
				if serr != syscall.EINTR {
					break
				}
			}
			if serr == syscall.EAGAIN {
				blocked = true
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return &net.OpError{Op: "write", Net: "tcp", Err: serr}
		}
		p.data -= int(n)
		r.addDown(n)
		if blocked {
			r.touch()
		}
	}
	r.renewGrace()
	return nil
}

// readableNow tells whether the socket has data (or EOF, or an error)
// pending, without waiting.
func readableNow(rc syscall.RawConn) bool {
	var b [1]byte
	ready := false
	rc.Control(func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ready = err != syscall.EAGAIN && err != syscall.EINTR
	})
	return ready
}

// isTLS reports a TLS upstream (mailgate-only proxy_ssl, proxy_starttls).
func isTLS(c net.Conn) bool {
	_, ok := c.(*tls.Conn)
	return ok
}

// isClosed reports a use of a connection closed by our side (by the
// caller, e.g. the engine, when it is not the relay itself).
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}
