package soak

import (
	"syscall"
	"testing"
	"time"

	"mailgate/compat-tests/authserver"
	"mailgate/compat-tests/harness"
)

// TestSignalStorm: 200 SIGHUPs 5 ms apart while a control client keeps
// logging in. Every login must succeed, mailgate must stay up, and its
// sockets must be back at the baseline after (a reload generation that
// kept a listener or a session's socket would show).
func TestSignalStorm(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.POP3Addr},
	}})
	p := harness.StartMailgate(t, hostileConfig(as))
	if err := controlLogin(p.Addr("pop3")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	base := countFDs(p.Pid())
	stop := make(chan struct{})
	ct := startControl(p.Addr("pop3"), 20*time.Millisecond, stop)
	for range 200 {
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	<-ct.done
	if exited, err := p.Exited(); exited {
		t.Fatalf("mailgate exited during the SIGHUPs: %v\n%s", err, p.Stderr())
	}
	if len(ct.failures) > 0 || len(ct.lat) == 0 {
		t.Errorf("control logins during the SIGHUPs: %d ok, %d failed, e.g. %v", len(ct.lat), len(ct.failures), ct.failures[:min(3, len(ct.failures))])
	}
	var after fdCount
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = countFDs(p.Pid())
		if after.sockets <= base.sockets || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after.sockets > base.sockets {
		t.Errorf("after 200 SIGHUPs mailgate holds %v, %v before", after, base)
	}
	if len(ct.lat) > 0 {
		p50, p99 := percentiles(ct.lat)
		t.Logf("200 SIGHUPs: %d control logins, p50 %v p99 %v; descriptors %v before, %v after", len(ct.lat), p50, p99, base, after)
	}
}

// TestReloadThenQuit: SIGQUIT right after 0-3 SIGHUPs, at several small
// delays, with no session open: mailgate must exit with status 0 within
// seconds every time (a reload racing the stop must not leave a
// generation listening).
func TestReloadThenQuit(t *testing.T) {
	dc := harness.StartDovecot(t, map[string]string{"alice": "secret"})
	as := harness.StartAuth(t, authserver.Script{Users: map[string]authserver.User{
		"alice": {Password: "secret", Upstream: dc.POP3Addr},
	}})
	conf := hostileConfig(as)
	for i := range 12 {
		p := harness.StartMailgate(t, conf)
		if err := controlLogin(p.Addr("pop3")); err != nil {
			t.Fatal(err)
		}
		for range i % 4 {
			p.Signal(syscall.SIGHUP) //nolint:errcheck
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		if err := p.Signal(syscall.SIGQUIT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Done():
			if _, err := p.Exited(); err != nil {
				t.Errorf("run %d (%d SIGHUPs, then SIGQUIT): exit %v\n%s", i, i%4, err, p.Stderr())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("run %d (%d SIGHUPs, then SIGQUIT): still running after 10s, %v\n%s", i, i%4, countFDs(p.Pid()), p.ErrorLog())
			p.Stop()
		}
	}
}
