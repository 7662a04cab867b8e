// Command bench measures mailgate and nginx side by side in one run, on
// the same machine, with the same auth_http server and the same upstream:
//
//   - relay throughput after a POP3 login, in both directions, against a
//     direct connection to the upstream as the ceiling;
//   - CPU time the proxy process spent per GiB relayed;
//   - memory (RSS) per idle relayed session.
//
// Results are printed as a table with mailgate/nginx ratios. Nothing here
// asserts a speed: the brief wants figures, never timed assertions.
//
//	go run ./compat-tests/bench -mailgate /path/to/mailgate
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	mailgateBin = flag.String("mailgate", "", "mailgate binary (required)")
	nginxBin    = flag.String("nginx", "/usr/sbin/nginx", "nginx binary")
	mailModule  = flag.String("module", "/usr/lib/nginx/modules/ngx_mail_module.so", "nginx mail module")
	sizeMiB     = flag.Int("size", 256, "MiB relayed per throughput round")
	rounds      = flag.Int("rounds", 3, "throughput rounds (best is reported)")
	idle        = flag.Int("idle", 1000, "idle relayed sessions for the memory figure")
	basePort    = flag.Int("port", 28000, "first loopback port to use")
)

func main() {
	flag.Parse()
	if *mailgateBin == "" {
		log.Fatal("bench: -mailgate is required")
	}
	raiseNofile()

	authAddr := fmt.Sprintf("127.0.0.1:%d", *basePort+1)
	upAddr := fmt.Sprintf("127.0.0.1:%d", *basePort+2)
	go serveAuth(mustListen(authAddr), upAddr)
	go serveUpstream(mustListen(upAddr))

	size := int64(*sizeMiB) << 20
	results := map[string]*figures{}
	direct := &figures{}
	direct.down, direct.up = measure(upAddr, size, false)
	results["direct"] = direct

	for i, p := range []struct{ name, bin string }{{"nginx", *nginxBin}, {"mailgate", *mailgateBin}} {
		listen := fmt.Sprintf("127.0.0.1:%d", *basePort+10+i)
		proc, stop := startProxy(p.name, p.bin, listen, authAddr)
		f := &figures{}
		cpu0 := cpuTime(proc)
		f.down, f.up = measure(listen, size, true)
		cpu := cpuTime(proc) - cpu0
		relayed := float64(2*int64(*rounds)*size) / (1 << 30)
		f.cpuPerGiB = cpu.Seconds() / relayed
		f.rssPerSession, f.rssBase = idleMemory(listen, proc, *idle)
		results[p.name] = f
		stop()
	}
	report(results, size)
}

type figures struct {
	down, up      float64 // MB/s
	cpuPerGiB     float64 // seconds of proxy CPU per GiB relayed
	rssPerSession float64 // KiB
	rssBase       float64 // KiB before the idle sessions
}

func report(r map[string]*figures, size int64) {
	n, m, d := r["nginx"], r["mailgate"], r["direct"]
	fmt.Printf("mailgate vs nginx, same run, %d MiB per round, best of %d; %d idle sessions\n", size>>20, *rounds, *idle)
	fmt.Printf("%-38s %12s %12s %12s %16s\n", "figure", "direct", "nginx", "mailgate", "mailgate/nginx")
	fmt.Printf("%-38s %12.0f %12.0f %12.0f %16.2f\n", "upstream→client throughput (MB/s)", d.down, n.down, m.down, m.down/n.down)
	fmt.Printf("%-38s %12.0f %12.0f %12.0f %16.2f\n", "client→upstream throughput (MB/s)", d.up, n.up, m.up, m.up/n.up)
	fmt.Printf("%-38s %12s %12.3f %12.3f %16.2f\n", "proxy CPU seconds per GiB relayed", "-", n.cpuPerGiB, m.cpuPerGiB, m.cpuPerGiB/n.cpuPerGiB)
	fmt.Printf("%-38s %12s %12.1f %12.1f %16.2f\n", "RSS per idle relayed session (KiB)", "-", n.rssPerSession, m.rssPerSession, m.rssPerSession/n.rssPerSession)
	fmt.Printf("%-38s %12s %12.0f %12.0f %16.2f\n", "RSS at start, no sessions (KiB)", "-", n.rssBase, m.rssBase, m.rssBase/n.rssBase)
}

func mustListen(addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	return ln
}

// serveAuth answers every auth_http request with the upstream.
func serveAuth(ln net.Listener, upstream string) {
	host, port, _ := net.SplitHostPort(upstream)
	answer := "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: " + host + "\r\nAuth-Port: " + port + "\r\n\r\n"
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			io.WriteString(c, answer)
		}()
	}
}

// serveUpstream is a POP3 server that accepts any login, then either
// streams N bytes ("DOWN N") or swallows N bytes ("UP N") and says +OK.
func serveUpstream(ln net.Listener) {
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReaderSize(c, 64<<10)
			io.WriteString(c, "+OK ready\r\n")
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				f := strings.Fields(line)
				if len(f) == 0 {
					continue
				}
				switch strings.ToUpper(f[0]) {
				case "USER", "PASS", "NOOP":
					io.WriteString(c, "+OK\r\n")
				case "DOWN":
					n, _ := strconv.ParseInt(f[1], 10, 64)
					for n > 0 {
						k := min(n, int64(len(chunk)))
						if _, err := c.Write(chunk[:k]); err != nil {
							return
						}
						n -= k
					}
				case "UP":
					n, _ := strconv.ParseInt(f[1], 10, 64)
					if _, err := io.CopyN(io.Discard, r, n); err != nil {
						return
					}
					io.WriteString(c, "+OK done\r\n")
				case "QUIT":
					io.WriteString(c, "+OK bye\r\n")
					return
				}
			}
		}()
	}
}

// login connects and, through a proxy, logs in with USER/PASS; directly it
// reads the greeting only.
func login(addr string, viaProxy bool) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	r := bufio.NewReaderSize(c, 64<<10)
	expect(r, "+OK")
	if viaProxy {
		io.WriteString(c, "USER bench\r\n")
		expect(r, "+OK")
		io.WriteString(c, "PASS secret\r\n")
		expect(r, "+OK")
	}
	return c, r
}

func expect(r *bufio.Reader, prefix string) {
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		log.Fatalf("bench: expected %q, got %q (%v)", prefix, line, err)
	}
}

func measure(addr string, size int64, viaProxy bool) (down, up float64) {
	payload := bytes.Repeat([]byte("x"), 1<<20)
	for i := 0; i < *rounds; i++ {
		c, r := login(addr, viaProxy)
		t0 := time.Now()
		fmt.Fprintf(c, "DOWN %d\r\n", size)
		if _, err := io.CopyN(io.Discard, r, size); err != nil {
			log.Fatal("bench: download: ", err)
		}
		down = max(down, float64(size)/1e6/time.Since(t0).Seconds())

		t0 = time.Now()
		fmt.Fprintf(c, "UP %d\r\n", size)
		for n := size; n > 0; n -= int64(len(payload)) {
			if _, err := c.Write(payload[:min(n, int64(len(payload)))]); err != nil {
				log.Fatal("bench: upload: ", err)
			}
		}
		expect(r, "+OK done")
		up = max(up, float64(size)/1e6/time.Since(t0).Seconds())
		c.Close()
	}
	return down, up
}

// idleMemory opens n logged-in sessions and reports the RSS growth of the
// proxy process per session, in KiB.
func idleMemory(addr string, pid, n int) (perSession, base float64) {
	time.Sleep(300 * time.Millisecond)
	before := rssKiB(pid)
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, _ := login(addr, true)
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	after := rssKiB(pid)
	for _, c := range conns {
		c.Close()
	}
	return (after - before) / float64(n), before
}

func startProxy(name, bin, listen, auth string) (pid int, stop func()) {
	dir, err := os.MkdirTemp("", "mailgate-bench-"+name+"-")
	if err != nil {
		log.Fatal(err)
	}
	conf := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log %s/error.log error;
pid %s/proxy.pid;
events { worker_connections 10000; }
mail {
    auth_http %s/auth;
    server {
        listen %s;
        protocol pop3;
    }
}
`, *mailModule, dir, dir, auth, listen)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir+"/", "-c", "nginx.conf", "-e", dir+"/stderr.log")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatalf("bench: start %s: %v", name, err)
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			log.Fatalf("bench: %s did not start listening on %s", name, listen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd.Process.Pid, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		os.RemoveAll(dir)
	}
}

func rssKiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// cpuTime is utime+stime of a process from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

func raiseNofile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
