package mail

import (
	"io"
	"sync"
)

// replyWriter queues a session's replies until the engine flushes them,
// after each command. Its buffer comes from a pool at the first write and
// goes back once flushed, so a session waiting for its client holds none.
// Unlike bufio.Writer it never writes on its own: every reply leaves in
// one write, under the engine's send deadline.
type replyWriter struct {
	w   io.Writer
	buf *[]byte // nil while nothing is queued
	err error   // a failed write: later writes fail too, as with bufio
}

// Replies are short (a CAPABILITY line, an EHLO list); a buffer that grew
// for a long one is not kept.
const (
	replyBufSize = 512
	replyBufKeep = 16 << 10
)

var replyBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, replyBufSize)
	return &b
}}

func newReplyWriter(w io.Writer) *replyWriter { return &replyWriter{w: w} }

func (r *replyWriter) Write(p []byte) (int, error) {
	if r.buf == nil {
		r.buf = replyBufs.Get().(*[]byte)
	}
	*r.buf = append(*r.buf, p...)
	return len(p), nil
}

func (r *replyWriter) WriteString(p string) (int, error) {
	if r.buf == nil {
		r.buf = replyBufs.Get().(*[]byte)
	}
	*r.buf = append(*r.buf, p...)
	return len(p), nil
}

// Buffered is the number of bytes queued.
func (r *replyWriter) Buffered() int {
	if r.buf == nil {
		return 0
	}
	return len(*r.buf)
}

// Flush writes what is queued and gives the buffer back.
func (r *replyWriter) Flush() error {
	if r.err != nil {
		r.release()
		return r.err
	}
	if r.buf == nil {
		return nil
	}
	_, r.err = r.w.Write(*r.buf)
	r.release()
	return r.err
}

// Reset sends later replies to w (a TLS connection after STARTTLS) and
// drops anything queued.
func (r *replyWriter) Reset(w io.Writer) {
	r.release()
	r.w, r.err = w, nil
}

func (r *replyWriter) release() {
	if r.buf == nil {
		return
	}
	if cap(*r.buf) <= replyBufKeep {
		*r.buf = (*r.buf)[:0]
		replyBufs.Put(r.buf)
	}
	r.buf = nil
}
