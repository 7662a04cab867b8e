package main

// Relay throughput after a POP3 login: each stream asks the upstream for
// SIZE bytes (DOWN) then sends it SIZE bytes (UP). MB/s counts both
// directions' payload over the wall time of all streams; the ceiling is
// the same transfer on a direct connection to the upstream. The proxy's
// CPU is read from /proc before and after.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

var benchTLS = &tls.Config{InsecureSkipVerify: true, ServerName: "bench.example"}

func relaySize(streams int) int64 {
	mib := int64(256)
	if *quick {
		mib = 16
	}
	if streams > 1 {
		mib /= 4
	}
	return mib << 20
}

// phase is one direction's figures.
type phase struct {
	mbs    float64 // MB/s, all streams together
	cpuGiB float64 // proxy CPU seconds per GiB (0 without a proxy)
}

// transfer opens `streams` streams to address (with viaProxy, each logs in
// first: POP3 USER/PASS), then all download SIZE bytes at once (DOWN),
// then all upload SIZE bytes at once (UP). pid is the proxy's worker (0:
// none).
func transfer(address string, streams int, viaProxy bool, tlsConf *tls.Config, pid int) (dn, upl phase, err error) {
	size := relaySize(streams)
	cls := make([]*client, 0, streams)
	defer func() {
		for _, cl := range cls {
			cl.c.Close()
		}
	}()
	for s := 0; s < streams; s++ {
		cl, err := openStream(address, viaProxy, tlsConf)
		if err != nil {
			return dn, upl, err
		}
		cls = append(cls, cl)
	}
	run := func(f func(*client) error) (phase, error) {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		var c0 time.Duration
		if pid != 0 {
			c0 = cpuTime(pid)
		}
		t0 := time.Now()
		for _, cl := range cls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(cl); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		total := float64(size * int64(streams))
		ph := phase{mbs: total / 1e6 / time.Since(t0).Seconds()}
		if pid != 0 {
			ph.cpuGiB = (cpuTime(pid) - c0).Seconds() / (total / (1 << 30))
		}
		return ph, first
	}
	if dn, err = run(func(cl *client) error {
		if err := cl.send(fmt.Sprintf("DOWN %d\r\n", size)); err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, cl.r, size); err != nil {
			return fmt.Errorf("download: %w", err)
		}
		return nil
	}); err != nil {
		return
	}
	upl, err = run(func(cl *client) error {
		if err := cl.send(fmt.Sprintf("UP %d\r\n", size)); err != nil {
			return err
		}
		for n := size; n > 0; n -= int64(len(payload)) {
			if _, err := cl.c.Write(payload[:min(n, int64(len(payload)))]); err != nil {
				return fmt.Errorf("upload: %w", err)
			}
		}
		return cl.expect("+OK done")
	})
	return
}

var payload = bytes.Repeat([]byte("x"), 256<<10)

func openStream(address string, viaProxy bool, tlsConf *tls.Config) (*client, error) {
	c, err := net.DialTimeout("tcp", address, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if tlsConf != nil {
		tc := tls.Client(c, tlsConf)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	cl := &client{c: c, r: bufio.NewReaderSize(c, 256<<10)}
	if viaProxy {
		err = loginSession(cl, "pop3")
	} else {
		err = cl.expect("+OK")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// relayFigure: plain (tlsOn false) or client→proxy TLS on the pop3s
// listen (tlsOn true).
func relayFigure(tlsOn bool) {
	counts := []int{1, 16}
	var direct [2][2]phase // [streams][down, up]
	if !tlsOn {
		for k, streams := range counts {
			d, u, err := transfer(addr(portsFrom(*basePort).pop3), streams, false, nil, 0)
			if err != nil {
				fail("direct transfer: %v", err)
			}
			direct[k] = [2]phase{d, u}
		}
	}
	var res [2][2][2]phase // [proxy][streams][down, up]
	i := 0
	withProxies(proxyOpts{}, func(p *proxy) {
		port := p.ports.pop3
		var tc *tls.Config
		if tlsOn {
			port, tc = p.ports.pop3s, benchTLS
		}
		for k, streams := range counts {
			d, u, err := transfer(addr(port), streams, true, tc, p.pid)
			if err != nil {
				fail("%s: relay, %d streams: %v", p.name, streams, err)
			}
			res[i][k] = [2]phase{d, u}
		}
		i++
	})
	kind, what := "relay after a POP3 login (plain)", ""
	if tlsOn {
		kind, what = "relay after a POP3 login, client-proxy TLS 1.3 (pop3s listen)", "TLS "
	}
	sec := fmt.Sprintf("%s, %d MiB per stream each way (1 stream), %d MiB (16 streams)", kind, relaySize(1)>>20, relaySize(16)>>20)
	for k, streams := range counts {
		for dir, name := range []string{"download (upstream to client)", "upload (client to upstream)"} {
			n, m := res[0][k][dir], res[1][k][dir]
			addRow(sec, fmt.Sprintf("%s%s, %d stream(s)", what, name, streams), "MB/s", n.mbs, m.mbs, "higher")
			if d := direct[k][dir].mbs; d > 0 {
				addRow(sec, fmt.Sprintf("  %% of direct (%.0f MB/s)", d), "%", 100*n.mbs/d, 100*m.mbs/d, "higher")
			}
			addRow(sec, "  proxy CPU per GiB", "s", n.cpuGiB, m.cpuGiB, "lower")
		}
	}
}
