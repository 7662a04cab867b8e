package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// systemd's readiness protocol (sd_notify(3)): when the service manager
// sets $NOTIFY_SOCKET, the service sends newline-separated KEY=VALUE
// assignments in one datagram on that unix socket. A path starting with
// '@' is an abstract socket (Go's net package turns the '@' into the NUL
// byte the kernel wants). Without the variable nothing is sent, so the
// calls below cost nothing outside systemd.
//
// mailgate sends:
//   - READY=1 (with MAINPID) once the sockets are bound and the pid file
//     is written, and again when a reload has finished, well or not;
//   - RELOADING=1 with MONOTONIC_USEC when SIGHUP arrives, which
//     Type=notify-reload needs to match the reload to its request;
//   - STOPPING=1 when TERM, INT or QUIT arrives.
//
// The variable is left in the environment on purpose: the process a
// binary upgrade (USR2) starts announces itself with its own MAINPID, so
// systemd (with NotifyAccess=all) follows the new main process.

// sdNotify sends state to $NOTIFY_SOCKET, if set. Errors are returned for
// tests; callers ignore them, as sd_notify's callers usually do: a
// missing manager must never stop the proxy.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		// systemd also knows vsock: addresses (VMs); mailgate does not.
		return fmt.Errorf("NOTIFY_SOCKET %q: unsupported address", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC with.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}

// sdReady tells systemd the proxy serves: at start and after a reload.
func sdReady(status string) {
	sdNotify(fmt.Sprintf("READY=1\nSTATUS=%s\nMAINPID=%d\n", status, os.Getpid()))
}

// sdReloading tells systemd a reload has begun; sdReady ends it.
func sdReloading() {
	sdNotify(fmt.Sprintf("RELOADING=1\nSTATUS=reloading configuration\nMONOTONIC_USEC=%d\n", monotonicUsec()))
}

// sdStopping tells systemd the proxy is shutting down.
func sdStopping() {
	sdNotify("STOPPING=1\nSTATUS=shutting down\n")
}
