package proxy

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// hidden hides the *net.TCPConn so that Relay takes its buffered path (as
// for a TLS client).
type hidden struct{ net.Conn }

func benchSizes() []int { return []int{1 << 10, 64 << 10, 1 << 20, 16 << 20} }

// BenchmarkRelay measures upstream → client throughput (the heavy
// direction: FETCH, RETR) through Relay, against a direct loopback TCP
// connection, and client → upstream (DATA, APPEND).
func BenchmarkRelay(b *testing.B) {
	for _, size := range benchSizes() {
		msg := make([]byte, size)
		for _, mode := range []string{"direct", "relay-splice", "relay-buffered", "relay-up"} {
			b.Run(fmt.Sprintf("%s/%dKiB", mode, size>>10), func(b *testing.B) {
				var src, dst net.Conn
				var res chan RelayResult
				switch mode {
				case "direct":
					dst, src = tcpPair(b)
				default:
					user, client := tcpPair(b)
					upstream, server := tcpPair(b)
					var c net.Conn = client
					if mode == "relay-buffered" {
						c = hidden{client}
					}
					res = make(chan RelayResult, 1)
					go func() {
						res <- Relay(c, upstream, RelayOptions{ClientBuffer: 4096, UpstreamBuffer: 4096, Timeout: time.Hour})
					}()
					src, dst = server, user
					if mode == "relay-up" {
						src, dst = user, server
					}
				}
				buf := make([]byte, 256<<10)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					go src.Write(msg)
					for got := 0; got < size; {
						n, err := dst.Read(buf)
						if err != nil {
							b.Fatal(err)
						}
						got += n
					}
				}
				b.StopTimer()
				src.Close()
				dst.Close()
				if res != nil {
					<-res
				}
			})
		}
	}
}

// BenchmarkIdleSessions opens 1000 relayed sessions that carry one
// command and reply each and then sit idle, and reports what Relay adds
// per session (heap in use plus goroutine stacks, after GC), the relayed
// connections themselves excluded. Run with -benchtime=1x.
func BenchmarkIdleSessions(b *testing.B) {
	for _, mode := range []string{"splice", "buffered"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				per := idleSessionCost(b, 1000, mode == "buffered")
				b.ReportMetric(per, "B/session")
			}
		})
	}
}

// TestIdleSessionMemory keeps the per-session cost of an idle relay in
// check (nginx: about 1 KiB of pool plus the two buffers, 8 KiB or so).
func TestIdleSessionMemory(t *testing.T) {
	per := idleSessionCost(t, 300, false)
	t.Logf("idle relayed session: %.0f bytes (heap + stack) added by Relay", per)
	if per > 16<<10 {
		t.Errorf("%.0f bytes per idle session", per)
	}
}

func memInUse() uint64 {
	h, s := memSplit()
	return h + s
}

func memSplit() (heap, stack uint64) {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

func idleSessionCost(tb testing.TB, n int, buffered bool) float64 {
	cl, ul := listenLocal(tb), listenLocal(tb)
	defer cl.Close()
	defer ul.Close()
	type sess struct{ user, client, upstream, server net.Conn }
	ss := make([]sess, n)
	acc := func(l net.Listener, out []net.Conn) {
		for i := range out {
			c, err := l.Accept()
			if err != nil {
				return
			}
			out[i] = c
		}
	}
	clients, servers := make([]net.Conn, n), make([]net.Conn, n)
	d1, d2 := make(chan struct{}), make(chan struct{})
	go func() { acc(cl, clients); close(d1) }()
	go func() { acc(ul, servers); close(d2) }()
	for i := range ss {
		u, err := net.Dial("tcp", cl.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		up, err := net.Dial("tcp", ul.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		ss[i].user, ss[i].upstream = u, up
	}
	<-d1
	<-d2
	// Accept order matches dial order: one dialer, one listener each.
	for i := range ss {
		ss[i].client, ss[i].server = clients[i], servers[i]
	}
	defer func() {
		for _, s := range ss {
			s.user.Close()
			s.server.Close()
			s.client.Close()
			s.upstream.Close()
		}
	}()
	hb, sb := memSplit()
	before := hb + sb
	done := make(chan RelayResult, n)
	for _, s := range ss {
		var c net.Conn = s.client
		if buffered {
			c = hidden{s.client}
		}
		go func() {
			done <- Relay(c, s.upstream, RelayOptions{ClientBuffer: 4096, UpstreamBuffer: 4096, Timeout: time.Hour})
		}()
	}
	// One exchange each, so that every buffer has been used once.
	buf := make([]byte, 64)
	for _, s := range ss {
		s.user.Write([]byte("a NOOP\r\n"))
		io.ReadFull(s.server, buf[:8])
		s.server.Write([]byte("a OK done\r\n"))
		io.ReadFull(s.user, buf[:11])
	}
	time.Sleep(100 * time.Millisecond)
	ha, sa := memSplit()
	after := ha + sa
	if testing.Verbose() {
		tb.Logf("per session: heap %d, stacks %d", (int64(ha)-int64(hb))/int64(n), (int64(sa)-int64(sb))/int64(n))
	}
	for _, s := range ss {
		s.server.Close()
	}
	for range ss {
		<-done
	}
	return float64(int64(after)-int64(before)) / float64(n)
}
