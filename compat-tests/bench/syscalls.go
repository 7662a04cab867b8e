package main

// System calls per login: strace -c -f attached to the proxy's worker
// while a fixed number of IMAP logins run.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func syscallFigure() {
	strace, err := exec.LookPath("strace")
	if err != nil && os.Geteuid() == 0 {
		fmt.Fprintln(os.Stderr, "bench: installing strace (apt-get)")
		cmd := exec.Command("apt-get", "install", "-y", "-q", "--no-install-recommends", "strace")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if cmd.Run() == nil {
			strace, err = exec.LookPath("strace")
		}
	}
	if err != nil {
		addNote("syscalls: strace not found (apt-get install strace): figure skipped")
		return
	}
	n := int64(2000)
	if *quick {
		n = 200
	}
	var counts [2]map[string]float64
	i := 0
	withProxies(proxyOpts{}, func(p *proxy) {
		// Warm up: first logins grow pools, stacks and the heap.
		runLogins(addr(p.ports.imap), "imap", *clients, 0, 100, nil)
		out := filepath.Join(p.dir, "strace.out")
		cmd := exec.Command(strace, "-c", "-f", "-o", out, "-p", strconv.Itoa(p.pid))
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			fail("%s: strace: %v", p.name, err)
			return
		}
		// strace says "Process N attached" once per thread.
		attached := make(chan struct{})
		go func() {
			s := bufio.NewScanner(stderr)
			once := false
			for s.Scan() {
				if !once && strings.Contains(s.Text(), "attached") {
					once = true
					close(attached)
				}
			}
			if !once {
				close(attached)
			}
		}()
		select {
		case <-attached:
		case <-time.After(5 * time.Second):
		}
		time.Sleep(300 * time.Millisecond)
		r := runLogins(addr(p.ports.imap), "imap", *clients, 0, n, nil)
		checkLogins(p.name, "imap logins under strace", r)
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		c, err := readStraceC(out)
		if err != nil {
			fail("%s: strace output: %v", p.name, err)
			return
		}
		for k := range c {
			c[k] /= float64(max(r.ok, 1))
		}
		counts[i] = c
		i++
	})
	if counts[0] == nil || counts[1] == nil {
		return
	}
	sec := fmt.Sprintf("system calls per IMAP login (strace -c -f on the worker, %d logins)", n)
	addRow(sec, "syscalls per login, all", "", counts[0]["total"], counts[1]["total"], "lower")
	// The calls that make up most of either count.
	var names []string
	for _, c := range counts {
		for k := range c {
			if k != "total" && !contains(names, k) {
				names = append(names, k)
			}
		}
	}
	sort.Slice(names, func(a, b int) bool {
		return max(counts[0][names[a]], counts[1][names[a]]) > max(counts[0][names[b]], counts[1][names[b]])
	})
	for _, k := range names[:min(len(names), 20)] {
		addRow(sec, "  "+k, "", counts[0][k], counts[1][k], "lower")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// readStraceC reads strace -c's output file.
func readStraceC(file string) (map[string]float64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseStraceC(b)
}

// parseStraceC parses strace -c's table: calls per system call, and
// "total".
func parseStraceC(b []byte) (map[string]float64, error) {
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(f[0], "%") || strings.HasPrefix(f[0], "-") {
			continue
		}
		calls, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		out[f[len(f)-1]] += calls
	}
	if out["total"] == 0 {
		return nil, fmt.Errorf("no total in %q", b)
	}
	return out, nil
}
