package mail

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"mailgate/proxy"
)

func TestEndReasons(t *testing.T) {
	for _, c := range []struct {
		rr   proxy.RelayResult
		want EndReason
	}{
		{proxy.RelayResult{Panicked: true, Log: "panic: x"}, EndPanic},
		{proxy.RelayResult{Log: "shutdown timeout"}, EndShutdown},
		{proxy.RelayResult{Log: "client timed out (110: Connection timed out)"}, EndTimeout},
		{proxy.RelayResult{Log: "recv() failed (104: Connection reset by peer)", LogDone: true}, EndError},
		{proxy.RelayResult{LogDone: true, ClientEOF: true}, EndClientClosed},
		{proxy.RelayResult{LogDone: true}, EndUpstreamClosed},
		{proxy.RelayResult{}, ""},
	} {
		if got := relayEnd(c.rr); got != c.want {
			t.Errorf("relayEnd(%+v) = %q, want %q", c.rr, got, c.want)
		}
	}
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	for _, c := range []struct {
		err  error
		want EndReason
	}{
		{io.EOF, EndClientClosed},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, EndClientClosed},
		{timeout, EndTimeout},
		{errors.New("odd"), EndError},
	} {
		if got := readEnd(c.err); got != c.want {
			t.Errorf("readEnd(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestAuthOutcome(t *testing.T) {
	for _, c := range []struct {
		wait bool
		secs int
		code string
		want LoginOutcome
	}{
		{false, 0, "", LoginInvalid},
		{false, 0, "535 5.7.8", LoginInvalid},
		{true, 0, "", LoginInvalid}, // Auth-Wait: 0 ends the session as a plain refusal
		{true, 3, "", LoginTempFail},
		{false, 0, "451 4.3.0", LoginTempFail},
	} {
		if got := authOutcome(c.wait, c.secs, c.code); got != c.want {
			t.Errorf("authOutcome(%v, %d, %q) = %q, want %q", c.wait, c.secs, c.code, got, c.want)
		}
	}
}

func TestTLSFailure(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout"},
		{io.EOF, "eof"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", RecordHeader: [5]byte{'G', 'E', 'T', ' ', '/'}, Conn: &net.TCPConn{}}, "not_tls"},
		{errors.New("tls: client offered only unsupported versions: [301]"), "version"},
		{errors.New("tls: no cipher suite supported by both client and server"), "cipher"},
		{errors.New("something else"), "error"},
	} {
		if got := tlsFailure(c.err); got != c.want {
			t.Errorf("tlsFailure(%v) = %q (text %q), want %q", c.err, got, handshakeErrorText(c.err), c.want)
		}
	}
}
