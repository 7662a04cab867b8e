package configcompat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestCheckAgreesWithTest runs `mailgate check --format json` on every
// corpus case and compares it with `mailgate -t`: the same verdict, and
// the error -t stops at is among the errors check reports. A case's
// check_warns file lists diagnostics check must report ("[warn] message in
// FILE:LINE"), and with a leading "!" text no diagnostic may contain.
func TestCheckAgreesWithTest(t *testing.T) {
	work := t.TempDir()
	mailgate := buildMailgate(t, work)
	crt, key := testCert(t)
	cases, err := os.ReadDir("cases")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cases {
		if c.IsDir() {
			names = append(names, c.Name())
		}
	}
	sort.Strings(names)
	agree := 0
	for _, name := range names {
		var globals []string
		if extra := readArgs(t, filepath.Join("cases", name, "args")); len(extra) == 2 && extra[0] == "-g" {
			globals = extra
		}
		tr := runCase(t, name, work, "t", crt, key, func(dir string) []string {
			return append([]string{"-t", "-q", "-p", dir + "/", "-c", "nginx.conf", "-e", "stderr"}, globals...)
		}, mailgate, "stderr")
		cr := runCase(t, name, work, "check", crt, key, func(dir string) []string {
			return append([]string{"check", "--format", "json", "-p", dir + "/", "-c", "nginx.conf"}, globals...)
		}, mailgate, "stderr")
		var rep struct {
			OK          bool        `json:"ok"`
			Diagnostics []checkDiag `json:"diagnostics"`
		}
		if err := json.Unmarshal([]byte(cr.stdout), &rep); err != nil {
			t.Errorf("%s: check output is not JSON: %v\n%s", name, err, cr.stdout)
			continue
		}
		if (tr.code == 0) != rep.OK || (cr.code == 0) != rep.OK {
			t.Errorf("%s: -t exit %d, check exit %d ok=%v\n-t:\n%s", name, tr.code, cr.code, rep.OK, tr.stderr)
			continue
		}
		if !checkWarns(t, name, rep.Diagnostics) {
			continue
		}
		if tr.code != 0 {
			// The -t error line, as "[level] message in FILE:LINE".
			var tErr string
			for _, line := range strings.Split(tr.stderr, "\n") {
				if strings.HasPrefix(line, "[emerg] ") || strings.HasPrefix(line, "[crit] ") ||
					strings.HasPrefix(line, "[alert] ") || strings.HasPrefix(line, "[error] ") {
					tErr = line
				}
			}
			found := false
			var got []string
			for _, d := range rep.Diagnostics {
				line := d.String()
				got = append(got, line)
				if line == tErr {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: check does not report the error -t stops at\n-t: %s\ncheck:\n%s", name, tErr, strings.Join(got, "\n"))
				continue
			}
		}
		agree++
	}
	t.Logf("check agrees with -t on %d/%d cases", agree, len(names))
}

// checkDiag is one diagnostic of `mailgate check --format json`.
type checkDiag struct {
	Severity    string `json:"severity"`
	Message     string `json:"message"`
	File        string `json:"file"`
	Line        int    `json:"line"`
	CommandLine bool   `json:"command_line"`
}

// String is the diagnostic as "[level] message in FILE:LINE".
func (d checkDiag) String() string {
	line := "[" + d.Severity + "] " + d.Message
	switch {
	case d.CommandLine:
		line += " in command line"
	case d.File != "":
		line += " in " + d.File + ":" + strconv.Itoa(d.Line)
	}
	return line
}

// checkWarns applies the case's check_warns file, if any, to what check
// reported (file names relative to the case, also inside messages).
func checkWarns(t *testing.T, name string, diags []checkDiag) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("cases", name, "check_warns"))
	if err != nil {
		return true
	}
	var got []string
	for _, d := range diags {
		if d.File != "" {
			d.File = filepath.Base(d.File)
		}
		got = append(got, strings.ReplaceAll(d.String(), "PREFIX/", ""))
	}
	all := strings.Join(got, "\n")
	ok := true
	for _, want := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if absent, found := strings.CutPrefix(want, "!"); found {
			if strings.Contains(all, absent) {
				t.Errorf("%s: check reports %q:\n%s", name, absent, all)
				ok = false
			}
			continue
		}
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("%s: check does not report %q:\n%s", name, want, all)
			ok = false
		}
	}
	return ok
}
