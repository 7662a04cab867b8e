package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Redis is a private redis-server: loopback, a free port, its own
// directory, no persistence. Stop and Start may be called mid-test (the
// same port is reused); it is stopped at cleanup.
type Redis struct {
	Addr string
	Dir  string
	port int
	cmd  *exec.Cmd
	wait chan struct{}
	t    testing.TB
}

// StartRedis starts redis-server (apt-get install redis-server).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := "/usr/bin/redis-server"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("harness: redis-server not found%s", installHint(bin, "redis-server"))
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := shortTempDir(t, "hx-rd-")
	if err != nil {
		t.Fatal(err)
	}
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, port: port, t: t}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server with an empty data set.
func (r *Redis) Start() {
	r.t.Helper()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command("/usr/bin/redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.Dir, "--daemonize", "no",
		"--logfile", filepath.Join(r.Dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("harness: redis-server: %v", err)
	}
	r.cmd = cmd
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck
	if err := waitListening([]int{r.port}, done, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
		r.t.Fatalf("harness: redis-server: %v\n%s", err, log)
	}
	r.wait = done
}

// Stop kills the server (as a crash would).
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill() //nolint:errcheck
	<-r.wait
	r.cmd = nil
}

// Command sends one inline command and returns the raw reply (read until
// the connection has been quiet for a moment).
func (r *Redis) Command(cmd string) string {
	r.t.Helper()
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		r.t.Fatalf("harness: redis: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s\r\n", cmd)
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) //nolint:errcheck
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out)
		}
	}
}
