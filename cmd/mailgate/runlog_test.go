package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"mailgate/confparse"
	"mailgate/mail/errlog"
)

func TestRunLogRouting(t *testing.T) {
	dir := t.TempDir()
	mainLog, ownLog := filepath.Join(dir, "main.log"), filepath.Join(dir, "own.log")
	own := &confparse.Server{Core: confparse.CoreConf{ErrorLogs: []confparse.LogTarget{{Path: ownLog, Level: confparse.SevInfo}}}}
	inherit := &confparse.Server{}
	cfg := &confparse.Config{
		Core: confparse.Core{ErrorLogs: []confparse.LogTarget{
			{Path: mainLog, Level: confparse.SevWarn},
			{Path: "stderr", Level: confparse.SevError},
			{Path: "memory:32m", Level: confparse.SevDebug},
		}},
		Mail: &confparse.Mail{Servers: []*confparse.Server{own, inherit}},
	}
	var stderr bytes.Buffer
	r, err := newRunLog(cfg, "stderr", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := logrus.NewEntry(r.Logger)
	errlog.Log(e.WithField(errlog.ServerKey, own), errlog.Info, "own info")
	errlog.Log(e.WithField(errlog.ServerKey, inherit), errlog.Info, "inherit info")
	errlog.Log(e.WithField(errlog.ServerKey, inherit), errlog.Warn, "inherit warn")
	errlog.Log(e, errlog.Error, "main error")

	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return stampRE.ReplaceAllString(string(b), "[$1] ")
	}
	if got, want := read(ownLog), "[info] own info\n"; got != want {
		t.Errorf("own.log = %q, want %q", got, want)
	}
	if got, want := read(mainLog), "[warn] inherit warn\n[error] main error\n"; got != want {
		t.Errorf("main.log = %q, want %q", got, want)
	}
	if got, want := stampRE.ReplaceAllString(stderr.String(), "[$1] "), "[error] main error\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}

	// USR1: a renamed file is replaced by a new one.
	if err := os.Rename(mainLog, mainLog+".1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Reopen(); err != nil {
		t.Fatal(err)
	}
	errlog.Log(e, errlog.Warn, "after reopen")
	if got := read(mainLog); got != "[warn] after reopen\n" {
		t.Errorf("main.log after reopen = %q", got)
	}
	if got := read(mainLog + ".1"); strings.Contains(got, "after reopen") {
		t.Errorf("old file still written: %q", got)
	}
}

func TestRunLogDefaultAndOpenError(t *testing.T) {
	var stderr bytes.Buffer
	r, err := newRunLog(&confparse.Config{}, "stderr", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	e := logrus.NewEntry(r.Logger)
	errlog.Log(e, errlog.Notice, "hidden")
	errlog.Log(e, errlog.Error, "shown")
	if got := stampRE.ReplaceAllString(stderr.String(), "[$1] "); got != "[error] shown\n" {
		t.Errorf("default log = %q, want only the error line", got)
	}
	bad := &confparse.Config{Core: confparse.Core{ErrorLogs: []confparse.LogTarget{{Path: "/nonexistent-dir/x.log"}}}}
	if _, err := newRunLog(bad, "stderr", &stderr); err == nil ||
		err.Error() != `open() "/nonexistent-dir/x.log" failed (2: No such file or directory)` {
		t.Errorf("open error = %v", err)
	}
}
