package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Pid is the process id of the running proxy.
func (p *Proxy) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the proxy process (e.g. syscall.SIGHUP to reload,
// syscall.SIGQUIT for a graceful stop).
func (p *Proxy) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed when the proxy process has exited; Exited then reports
// its wait error (nil: exit status 0).
func (p *Proxy) Done() <-chan struct{} { return p.done }

// ProcStats are resource figures of a process read from /proc. A Go
// process's goroutines cannot be counted from outside; open file
// descriptors (every socket a session holds) and RSS are what can.
type ProcStats struct {
	FDs     int // entries in /proc/PID/fd
	RSSKiB  int // VmRSS
	Threads int // OS threads, not goroutines
}

func (s ProcStats) String() string {
	return fmt.Sprintf("fds %d, RSS %d KiB, threads %d", s.FDs, s.RSSKiB, s.Threads)
}

// ReadProcStats reads pid's open descriptors, RSS and thread count.
func ReadProcStats(pid int) (ProcStats, error) {
	var s ProcStats
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return s, err
	}
	s.FDs = len(ents)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, err
	}
	found := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSSKiB, _ = strconv.Atoi(f[0])
			found++
		case "Threads":
			s.Threads, _ = strconv.Atoi(f[0])
			found++
		}
	}
	if found != 2 {
		return s, errors.New("harness: no VmRSS/Threads in /proc/" + strconv.Itoa(pid) + "/status")
	}
	return s, nil
}
