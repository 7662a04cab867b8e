package main

// The auth_http server and the synthetic upstreams. They run in a child
// process of the bench (`bench -serve`), so that the upstream's sockets do
// not count against the bench's own descriptor limit (9,900 idle sessions
// need 9,900 client sockets here and 9,900 upstream sockets there) and so
// that both proxies face the very same servers. Both are kept cheap: raw
// net, one goroutine per connection, small fixed buffers, no net/http.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ports of the serve process, relative to -port.
type servePorts struct {
	auth, pop3, imap, smtp, stats int
}

func portsFrom(base int) servePorts {
	return servePorts{auth: base + 1, pop3: base + 2, imap: base + 3, smtp: base + 4, stats: base + 5}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

var authRequests atomic.Int64

// serveMain is the child process: it serves until its stdin closes.
func serveMain(base int) {
	raiseNofile()
	p := portsFrom(base)
	lns := map[int]net.Listener{}
	for _, port := range []int{p.auth, p.pop3, p.imap, p.smtp, p.stats} {
		ln, err := net.Listen("tcp", addr(port))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench -serve:", err)
			os.Exit(1)
		}
		lns[port] = ln
	}
	go acceptLoop(lns[p.auth], func(c net.Conn) { serveAuthConn(c, p) })
	go acceptLoop(lns[p.pop3], servePOP3)
	go acceptLoop(lns[p.imap], serveIMAP)
	go acceptLoop(lns[p.smtp], serveSMTP)
	go acceptLoop(lns[p.stats], func(c net.Conn) {
		fmt.Fprintf(c, "%d\n", authRequests.Load())
		c.Close()
	})
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func acceptLoop(ln net.Listener, h func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			// EMFILE and the like: wait and go on rather than die.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go h(c)
	}
}

var authAnswers sync.Map // protocol → []byte

// serveAuthConn answers one auth_http request (HTTP/1.0, one per
// connection, as both proxies send it) with the upstream of the
// request's Auth-Protocol; it never looks at the password.
func serveAuthConn(c net.Conn, p servePorts) {
	defer c.Close()
	var buf [4096]byte
	n := 0
	for {
		k, err := c.Read(buf[n:])
		n += k
		if bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			break
		}
		if err != nil || n == len(buf) {
			return
		}
	}
	authRequests.Add(1)
	proto := "pop3"
	if i := bytes.Index(buf[:n], []byte("\r\nAuth-Protocol: ")); i >= 0 {
		rest := buf[i+17 : n]
		if j := bytes.IndexByte(rest, '\r'); j >= 0 {
			proto = string(rest[:j])
		}
	}
	a, ok := authAnswers.Load(proto)
	if !ok {
		port := p.pop3
		switch proto {
		case "imap":
			port = p.imap
		case "smtp":
			port = p.smtp
		}
		a = []byte("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: " + strconv.Itoa(port) + "\r\n\r\n")
		authAnswers.Store(proto, a)
	}
	c.Write(a.([]byte))
}

var bigBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// chunk is what DOWN streams.
var chunk = bytes.Repeat([]byte("0123456789abcdef"), 4096)

// down streams n bytes of chunk; up swallows n bytes (those already read
// into r first).
func down(c net.Conn, n int64) error {
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := c.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func up(c net.Conn, r *bufio.Reader, n int64) error {
	if b := int64(r.Buffered()); b > 0 {
		k := min(b, n)
		r.Discard(int(k))
		n -= k
	}
	bp := bigBufs.Get().(*[]byte)
	defer bigBufs.Put(bp)
	buf := *bp
	for n > 0 {
		k, err := c.Read(buf[:min(n, int64(len(buf)))])
		n -= int64(k)
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}

// servePOP3 accepts any USER/PASS and answers STAT, NOOP and QUIT; DOWN N
// streams N bytes and UP N swallows N bytes then says "+OK done" (the
// relay figures).
func servePOP3(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1024)
	c.Write([]byte("+OK upstream ready\r\n"))
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimRight(string(line), "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "USER", "PASS", "NOOP", "RSET", "AUTH":
			c.Write([]byte("+OK\r\n"))
		case "STAT":
			c.Write([]byte("+OK 0 0\r\n"))
		case "CAPA":
			c.Write([]byte("+OK\r\nUSER\r\n.\r\n"))
		case "DOWN":
			n, _ := strconv.ParseInt(arg, 10, 64)
			if down(c, n) != nil {
				return
			}
		case "UP":
			n, _ := strconv.ParseInt(arg, 10, 64)
			if up(c, r, n) != nil {
				return
			}
			c.Write([]byte("+OK done\r\n"))
		case "QUIT":
			c.Write([]byte("+OK bye\r\n"))
			return
		default:
			c.Write([]byte("-ERR unknown\r\n"))
		}
	}
}

// serveIMAP accepts the upstream login both proxies send (tag LOGIN
// {n}, the login literal and {m}, the password literal) and a plain
// LOGIN; answers NOOP, CAPABILITY and LOGOUT.
func serveIMAP(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1024)
	c.Write([]byte("* OK upstream ready\r\n"))
	var pending string // tag of a LOGIN waiting for its literals
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		s := strings.TrimRight(string(line), "\r\n")
		if pending != "" {
			if strings.HasSuffix(s, "}") {
				c.Write([]byte("+ OK\r\n"))
				continue
			}
			c.Write([]byte(pending + " OK LOGIN completed\r\n"))
			pending = ""
			continue
		}
		tag, rest, _ := strings.Cut(s, " ")
		verb, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(verb) {
		case "LOGIN":
			if strings.HasSuffix(s, "}") {
				pending = tag
				c.Write([]byte("+ OK\r\n"))
				continue
			}
			c.Write([]byte(tag + " OK LOGIN completed\r\n"))
		case "NOOP":
			c.Write([]byte(tag + " OK NOOP completed\r\n"))
		case "CAPABILITY":
			c.Write([]byte("* CAPABILITY IMAP4rev1\r\n" + tag + " OK CAPABILITY completed\r\n"))
		case "LOGOUT":
			c.Write([]byte("* BYE\r\n" + tag + " OK LOGOUT completed\r\n"))
			return
		default:
			c.Write([]byte(tag + " BAD unknown\r\n"))
		}
	}
}

// serveSMTP answers EHLO/HELO, XCLIENT (with a new greeting, as Postfix),
// AUTH, MAIL, RCPT, RSET, NOOP and QUIT.
func serveSMTP(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1024)
	c.Write([]byte("220 upstream ESMTP\r\n"))
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(string(line), "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			c.Write([]byte("250-upstream\r\n250-XCLIENT ADDR LOGIN NAME HELO\r\n250 AUTH PLAIN\r\n"))
		case "HELO":
			c.Write([]byte("250 upstream\r\n"))
		case "XCLIENT":
			c.Write([]byte("220 upstream ESMTP\r\n"))
		case "AUTH":
			c.Write([]byte("235 2.7.0 ok\r\n"))
		case "MAIL", "RCPT", "RSET":
			c.Write([]byte("250 2.1.0 ok\r\n"))
		case "NOOP":
			c.Write([]byte("250 2.0.0 ok\r\n"))
		case "QUIT":
			c.Write([]byte("221 2.0.0 bye\r\n"))
			return
		default:
			c.Write([]byte("502 5.5.2 unknown\r\n"))
		}
	}
}
