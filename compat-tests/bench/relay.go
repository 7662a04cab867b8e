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

// transfer runs `streams` streams against address; with viaProxy it logs
// in first (POP3 USER/PASS). Returns MB/s and the error of the first
// stream that failed.
func transfer(address string, streams int, viaProxy bool, tlsConf *tls.Config) (float64, error) {
	size := relaySize(streams)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	t0 := time.Now()
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stream(address, size, viaProxy, tlsConf); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	return float64(2*size*int64(streams)) / 1e6 / el.Seconds(), first
}

var payload = bytes.Repeat([]byte("x"), 256<<10)

func stream(address string, size int64, viaProxy bool, tlsConf *tls.Config) error {
	c, err := net.DialTimeout("tcp", address, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if tlsConf != nil {
		tc := tls.Client(c, tlsConf)
		if err := tc.Handshake(); err != nil {
			return err
		}
		c = tc
	}
	cl := &client{c: c, r: bufio.NewReaderSize(c, 256<<10)}
	if viaProxy {
		if err := loginSession(cl, "pop3"); err != nil {
			return err
		}
	} else if err := cl.expect("+OK"); err != nil {
		return err
	}
	if err := cl.send(fmt.Sprintf("DOWN %d\r\n", size)); err != nil {
		return err
	}
	if _, err := io.CopyN(io.Discard, cl.r, size); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := cl.send(fmt.Sprintf("UP %d\r\n", size)); err != nil {
		return err
	}
	for n := size; n > 0; n -= int64(len(payload)) {
		if _, err := c.Write(payload[:min(n, int64(len(payload)))]); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
	}
	return cl.expect("+OK done")
}

// relayFigure: plain (tlsOn false) or client→proxy TLS on the pop3s
// listen (tlsOn true).
func relayFigure(tlsOn bool) {
	var direct [2]float64
	if !tlsOn {
		for k, streams := range []int{1, 16} {
			v, err := transfer(addr(portsFrom(*basePort).pop3), streams, false, nil)
			if err != nil {
				fail("direct transfer: %v", err)
			}
			direct[k] = v
		}
	}
	var mbs, cpu [2][2]float64
	i := 0
	withProxies(proxyOpts{}, func(p *proxy) {
		port := p.ports.pop3
		var tc *tls.Config
		if tlsOn {
			port, tc = p.ports.pop3s, benchTLS
		}
		for k, streams := range []int{1, 16} {
			c0 := cpuTime(p.pid)
			v, err := transfer(addr(port), streams, true, tc)
			if err != nil {
				fail("%s: relay, %d streams: %v", p.name, streams, err)
			}
			gib := float64(2*relaySize(streams)*int64(streams)) / (1 << 30)
			mbs[i][k] = v
			cpu[i][k] = (cpuTime(p.pid) - c0).Seconds() / gib
		}
		i++
	})
	kind, what := "relay after a POP3 login (plain)", "relay"
	if tlsOn {
		kind, what = "relay after a POP3 login, client→proxy TLS (pop3s listen, TLS 1.3)", "TLS relay"
	}
	sec := fmt.Sprintf("%s, %d MiB each way per stream (1 stream), %d MiB (16 streams)", kind, relaySize(1)>>20, relaySize(16)>>20)
	for k, streams := range []int{1, 16} {
		addRow(sec, fmt.Sprintf("%s, %d stream(s)", what, streams), "MB/s", mbs[0][k], mbs[1][k], "higher")
		if !tlsOn && direct[k] > 0 {
			addRow(sec, fmt.Sprintf("  %% of direct (direct: %.0f MB/s)", direct[k]), "%", 100*mbs[0][k]/direct[k], 100*mbs[1][k]/direct[k], "higher")
		}
		addRow(sec, fmt.Sprintf("  proxy CPU per GiB, %d stream(s)", streams), "s", cpu[0][k], cpu[1][k], "lower")
	}
}
