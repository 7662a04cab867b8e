package main

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"mailgate/confparse"
	"mailgate/mail"
	"mailgate/mail/admin"
	"mailgate/mail/errlog"
)

func adminCfg(network, addr string, pprof bool) *confparse.Config {
	return &confparse.Config{Core: confparse.Core{Admin: confparse.Admin{Network: network, Addr: addr, Pprof: pprof}}}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The admin listener follows admin_listen and admin_pprof across reloads;
// a reload's outcome is counted; a failed move keeps the old listener.
func TestAdminProcFollowsReloads(t *testing.T) {
	a := &adminProc{reg: mail.NewRegistry(), metrics: admin.NewMetrics("test")}
	defer a.close()
	if err := a.apply(adminCfg("", "", false)); err != nil || a.srv != nil {
		t.Fatalf("no admin_listen: %v %v", err, a.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := a.apply(adminCfg("tcp", addr, false)); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	if code, _ := get(t, url+"/sessions"); code != 200 {
		t.Errorf("/sessions: %d", code)
	}
	if code, _ := get(t, url+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof off: %d", code)
	}
	// Same address, pprof on: served from the same address.
	if err := a.apply(adminCfg("tcp", addr, true)); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "http://"+addr+"/debug/pprof/"); code != 200 {
		t.Errorf("pprof on: %d", code)
	}
	// A reload to an address that cannot be bound keeps the old one.
	var logged []string
	log := func(_ errlog.Level, f string, a ...any) { logged = append(logged, f) }
	a.reloaded(adminCfg("tcp", "192.0.2.1:9180", true), log)
	if len(logged) != 1 || a.srv == nil || a.srv.Addr().String() != addr {
		t.Errorf("failed move: logged %q, serving %v", logged, a.srv.Addr())
	}
	a.reloaded(nil, log)
	// To a unix socket, then off.
	sock := filepath.Join(t.TempDir(), "admin.sock")
	if err := a.apply(adminCfg("unix", sock, false)); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "http://"+addr+"/sessions"); code != 0 {
		t.Errorf("the old address still answers: %d", code)
	}
	if err := a.apply(adminCfg("", "", false)); err != nil || a.srv != nil {
		t.Errorf("admin_listen removed: %v %v", err, a.srv)
	}
	a.apply(adminCfg("tcp", "127.0.0.1:0", false)) //nolint:errcheck
	_, text := get(t, "http://"+a.srv.Addr().String()+"/metrics")
	for _, want := range []string{`mailgate_config_reloads_total{result="ok"} 1`, `mailgate_config_reloads_total{result="failed"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
