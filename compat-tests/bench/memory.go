package main

// Memory: RSS of the worker per idle relayed IMAP session, and per
// pre-auth connection during a flood.

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

func idleLevels() []int {
	if *quick {
		return []int{100, 300, 600}
	}
	return []int{1000, 5000, 9900}
}

// idleFigure opens relayed IMAP sessions up to each level and reads the
// worker's RSS there: KiB per session = (RSS at N - RSS before) / N.
func idleFigure() {
	levels := idleLevels()
	var perSession [2][]float64
	var base [2]float64
	i := 0
	withProxies(proxyOpts{}, func(p *proxy) {
		// A few logins first, so that the figure is what sessions cost,
		// not what the first login initialises.
		runLogins(addr(p.ports.imap), "imap", *clients, 0, 100, nil)
		time.Sleep(500 * time.Millisecond)
		before := rssKiB(p.pid)
		base[i] = before
		var conns []net.Conn
		for _, n := range levels {
			more, err := openSessions(addr(p.ports.imap), n-len(conns))
			conns = append(conns, more...)
			if err != nil {
				fail("%s: idle IMAP sessions: %d of %d open, then: %v", p.name, len(conns), n, err)
				break
			}
			time.Sleep(time.Second)
			perSession[i] = append(perSession[i], (rssKiB(p.pid)-before)/float64(n))
		}
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
		i++
	})
	sec := "RSS of the worker per idle relayed IMAP session (VmRSS)"
	addRow(sec, "RSS before the sessions", "KiB", base[0], base[1], "lower")
	for k, n := range levels {
		if k < len(perSession[0]) && k < len(perSession[1]) {
			addRow(sec, fmt.Sprintf("per session at %d sessions", n), "KiB", perSession[0][k], perSession[1][k], "lower")
		}
	}
}

// openSessions logs n IMAP sessions in, 16 at a time, and leaves them
// idle (relayed).
func openSessions(address string, n int) ([]net.Conn, error) {
	var (
		mu    sync.Mutex
		conns = make([]net.Conn, 0, n)
		next  atomic.Int64
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < *clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{r: bufio.NewReaderSize(nil, 512)}
			for next.Add(1) <= int64(n) {
				c, err := net.DialTimeout("tcp", address, 10*time.Second)
				if err == nil {
					c.SetDeadline(time.Now().Add(20 * time.Second))
					cl.c = c
					cl.r.Reset(c)
					err = loginSession(cl, "imap")
					c.SetDeadline(time.Time{})
					if err != nil {
						c.Close()
					}
				}
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns, first
}

// floodFigure holds pre-auth IMAP connections open: a quarter idle after
// the greeting, a quarter slowloris (one byte a second of a command that
// never ends), a quarter that sent a garbage line, a quarter that sent a
// line longer than the proxy accepts (nginx closes those).
func floodFigure() {
	n := 3000
	hold := 5 * time.Second
	if *quick {
		n, hold = 300, 2*time.Second
	}
	var per, still [2]float64
	i := 0
	withProxies(proxyOpts{}, func(p *proxy) {
		runLogins(addr(p.ports.imap), "imap", *clients, 0, 100, nil)
		time.Sleep(500 * time.Millisecond)
		before := rssKiB(p.pid)
		var (
			conns  []net.Conn
			closed atomic.Int64
			stop   = make(chan struct{})
			wg     sync.WaitGroup
		)
		for k := 0; k < n; k++ {
			c, err := net.DialTimeout("tcp", addr(p.ports.imap), 10*time.Second)
			if err != nil {
				fail("%s: flood: %d connections open, then: %v", p.name, len(conns), err)
				break
			}
			conns = append(conns, c)
			go func() { // reads what the proxy says; counts closes
				io.Copy(io.Discard, c)
				closed.Add(1)
			}()
			switch k % 4 {
			case 1: // slowloris
				wg.Add(1)
				go func() {
					defer wg.Done()
					t := time.NewTicker(time.Second)
					defer t.Stop()
					b := []byte("a LOGIN ")
					for j := 0; ; j++ {
						c.Write(b[j%len(b) : j%len(b)+1])
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				}()
			case 2: // garbage
				g := make([]byte, 200)
				for j := range g {
					g[j] = byte(rand.IntN(256))
					if g[j] == '\n' || g[j] == '\r' {
						g[j] = 'x'
					}
				}
				c.Write(append(g, '\r', '\n'))
			case 3: // overlong
				l := make([]byte, 16<<10)
				for j := range l {
					l[j] = 'A'
				}
				c.Write(l)
			}
		}
		time.Sleep(hold)
		rss := rssKiB(p.pid)
		still[i] = float64(len(conns)) - float64(closed.Load())
		per[i] = (rss - before) / float64(n)
		close(stop)
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
		i++
	})
	sec := fmt.Sprintf("pre-auth flood: %d IMAP connections (idle, slowloris, garbage, overlong), held %s", n, hold)
	addRow(sec, "RSS per connection", "KiB", per[0], per[1], "lower")
	addRow(sec, "connections still open at the reading", "", still[0], still[1], "")
}
