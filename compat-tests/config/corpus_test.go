// Package configcompat runs the configuration corpus through the real
// nginx and through mailgate and compares what `-t` says.
//
// Every directory under cases/ is one case: an nginx.conf, any files it
// includes, and optionally an "args" file with extra command-line
// arguments, one per line (e.g. "-g" then "pid x.pid;", or "-T").
// Both programs run as
//
//	<prog> -T -p <copy of the case>/ -c nginx.conf -e stderr [args]
//
// nginx additionally gets `-g "load_module .../ngx_mail_module.so;"`
// (merged with the case's own -g) unless the case loads the module
// itself, and the stream module's load_module line too when the case has
// a stream {} block and loads no stream module (moduleGlobals); mailgate
// has both built in and must accept those lines too. -T makes every case compare the dump of the files read as well.
// Every case runs a second time as `-t -e early.log`, and then stderr plus
// the content of early.log are compared.
// Outputs are compared after normalising timestamps, pids, the program
// name and the case directory.
package configcompat

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	mailModule   = "/usr/lib/nginx/modules/ngx_mail_module.so"
	streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"
	// minMessageRate is the lowest acceptable share of cases whose
	// messages match exactly.
	minMessageRate = 0.95
)

// result is what one program did with one case.
type result struct {
	code   int
	stdout string
	stderr string
}

func TestConfigCorpus(t *testing.T) {
	nginx := findNginx(t)
	work := t.TempDir()
	mailgate := buildMailgate(t, work)
	crt, key := testCert(t)
	known, supersets := knownDifferences(t)

	cases, err := os.ReadDir("cases")
	if err != nil {
		t.Fatalf("reading cases: %v", err)
	}
	var names []string
	for _, c := range cases {
		if c.IsDir() {
			names = append(names, c.Name())
		}
	}
	sort.Strings(names)
	if len(names) < 80 {
		t.Fatalf("corpus has %d cases, want at least 80", len(names))
	}

	verdicts, messages, fileMessages := 0, 0, 0
	var verdictFail, messageFail, explained, supersetHits []string
	for _, name := range names {
		extra := readArgs(t, filepath.Join("cases", name, "args"))
		run := func(side, errLog string) (n, m result) {
			n = runCase(t, name, work, "nginx"+side, crt, key, func(dir string) []string {
				return nginxArgs(t, dir, errLog, extra)
			}, nginx, errLog)
			m = runCase(t, name, work, "mailgate"+side, crt, key, func(dir string) []string {
				return append([]string{testFlag(errLog), "-p", dir + "/", "-c", "nginx.conf", "-e", errLog}, extra...)
			}, mailgate, errLog)
			return n, m
		}
		n, m := run("", "stderr")
		// The same case with the early error log in a file: stderr then
		// carries "<prog>: [level] msg" and the file the timestamped lines.
		nf, mf := run("-elog", "early.log")

		_, superset := supersets[name]
		switch {
		case n.code == m.code && nf.code == mf.code:
			verdicts++
			if superset {
				t.Errorf("%s: listed as a superset in DIFFERENCES.md but the verdicts match now", name)
			}
		case superset && n.code == 1 && m.code == 0 && nf.code == 1 && mf.code == 0:
			// Deliberate: mailgate accepts what nginx 1.22.1 rejects
			// (newer nginx syntax, blocks it does not validate).
			supersetHits = append(supersetHits, name)
			t.Logf("%s: accepted superset (DIFFERENCES.md); nginx says:\n%s", name, n.stderr)
			continue
		default:
			verdictFail = append(verdictFail, name)
			t.Errorf("%s: verdict differs: nginx exit %d/%d, mailgate exit %d/%d (-e stderr/-e file)\nnginx:\n%s\nmailgate:\n%s",
				name, n.code, nf.code, m.code, mf.code, n.stderr, m.stderr)
		}
		fileSame := nf.stderr == mf.stderr && nf.stdout == mf.stdout
		if fileSame {
			fileMessages++
		}
		if n.stderr == m.stderr && n.stdout == m.stdout && fileSame {
			messages++
			if _, ok := known[name]; ok {
				t.Errorf("%s: listed in DIFFERENCES.md but matches now; remove it from the list", name)
			}
			continue
		}
		if _, ok := known[name]; ok {
			explained = append(explained, name)
			t.Logf("%s: known difference (DIFFERENCES.md)\nnginx:\n%s\nmailgate:\n%s", name, n.stderr, m.stderr)
			continue
		}
		messageFail = append(messageFail, name)
		if !fileSame {
			n, m = nf, mf
		}
		t.Errorf("%s: message differs (not in DIFFERENCES.md)\nnginx stderr:\n%s\nmailgate stderr:\n%s%s",
			name, n.stderr, m.stderr, stdoutDiff(n, m))
	}

	total := len(names)
	summary := fmt.Sprintf("config corpus: %d cases, verdict match %d/%d, message match %d/%d "+
		"(-e file mode alone: %d/%d; %d listed message differences, %d listed supersets: accepted by mailgate, rejected by nginx 1.22.1)",
		total, verdicts, total, messages, total, fileMessages, total, len(explained), len(supersetHits))
	fmt.Println(summary)
	t.Log(summary)
	if len(verdictFail) > 0 {
		t.Errorf("verdict differs on: %s", strings.Join(verdictFail, ", "))
	}
	if len(messageFail) > 0 {
		t.Errorf("unexplained message differences on: %s", strings.Join(messageFail, ", "))
	}
	if rate := float64(messages) / float64(total); rate < minMessageRate {
		t.Errorf("message match rate %.1f%% is below %.0f%%", 100*rate, 100*minMessageRate)
	}
}

// testFlag is -T for the -e stderr run, so that every case also compares
// the configuration dump on stdout, and -t for the -e file run.
func testFlag(errLog string) string {
	if errLog == "stderr" {
		return "-T"
	}
	return "-t"
}

func stdoutDiff(n, m result) string {
	if n.stdout == m.stdout {
		return ""
	}
	return fmt.Sprintf("\nnginx stdout:\n%s\nmailgate stdout:\n%s", n.stdout, m.stdout)
}

// findNginx locates the oracle. It is required: the CI script installs it.
func findNginx(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			path = "/usr/sbin/nginx"
		} else {
			t.Fatalf("nginx not found in PATH or /usr/sbin: the config corpus needs the real nginx " +
				"(Debian: apt-get install nginx libnginx-mod-mail)")
		}
	}
	if _, err := os.Stat(mailModule); err != nil {
		t.Fatalf("nginx mail module %s is missing: install libnginx-mod-mail", mailModule)
	}
	if _, err := os.Stat(streamModule); err != nil {
		t.Fatalf("nginx stream module %s is missing: install libnginx-mod-stream (nginx-core depends on it)", streamModule)
	}
	return path
}

// buildMailgate compiles the command into dir.
func buildMailgate(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "mailgate")
	cmd := exec.Command("go", "build", "-o", bin, "mailgate/cmd/mailgate")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build mailgate: %v\n%s", err, out)
	}
	return bin
}

// testCert makes a throwaway self-signed certificate and key, PEM encoded.
func testCert(t *testing.T) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailgate corpus test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// readArgs reads a case's extra arguments, one per line.
func readArgs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		args = append(args, line)
	}
	return args
}

// nginxArgs builds nginx's command line: the modules mailgate has built in
// are loaded through -g (see moduleGlobals), merged with the case's own -g
// if it has one.
func nginxArgs(t *testing.T, dir, errLog string, extra []string) []string {
	t.Helper()
	globals, err := moduleGlobals(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	for i := 0; i < len(extra); i++ {
		if extra[i] == "-g" && i+1 < len(extra) {
			globals += extra[i+1]
			i++
			continue
		}
		rest = append(rest, extra[i])
	}
	args := []string{testFlag(errLog), "-p", dir + "/", "-c", "nginx.conf", "-e", errLog}
	if globals != "" {
		args = append(args, "-g", globals)
	}
	return append(args, rest...)
}

// streamBlockRE finds a "stream {" block opening in a configuration file.
var streamBlockRE = regexp.MustCompile(`(?m)(^|[\s;{}])stream\s*\{`)

// moduleGlobals returns the load_module lines nginx needs so that it runs
// as a build with the modules mailgate has built in: Debian builds the mail
// and stream modules as dynamic modules (nginx.org's packages have stream
// built in, so 1.22.1's verdict on a bare stream {} depends on the build).
// The mail module is always loaded unless a file of the case loads it
// itself; the stream module is loaded when a file has a stream {} block
// and no file loads the stream module (a second load would be
// "already loaded"). Every regular file under dir is looked at, so
// included files count too.
func moduleGlobals(dir string) (string, error) {
	var all []byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// unreadable files are part of some cases; nginx will say so
			return nil
		}
		all = append(append(all, b...), '\n')
		return nil
	})
	if err != nil {
		return "", err
	}
	globals := ""
	if !bytes.Contains(all, []byte("ngx_mail_module.so")) {
		globals += "load_module " + mailModule + ";"
	}
	if streamBlockRE.Match(all) && !bytes.Contains(all, []byte("ngx_stream_module.so")) {
		globals += "load_module " + streamModule + ";"
	}
	return globals, nil
}

// runCase copies the case into work/<side>/<name>, adds the test
// certificate, runs the program and returns its normalised result.
func runCase(t *testing.T, name, work, side string, crt, key []byte, args func(dir string) []string, bin, errLog string) result {
	t.Helper()
	dir := filepath.Join(work, side, name)
	if err := copyDir(filepath.Join("cases", name), dir); err != nil {
		t.Fatalf("%s: copying case: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.crt"), crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code, err := runProgram(dir, 30*time.Second, bin, args(dir)...)
	if err != nil {
		t.Fatalf("%s: running %s: %v", name, side, err)
	}
	errs := stderr
	if errLog != "stderr" {
		// The early log file's content is part of the output to compare.
		b, err := os.ReadFile(filepath.Join(dir, errLog))
		if err != nil {
			errs += "\n(no " + errLog + ": " + err.Error() + ")\n"
		} else {
			errs += "\n--- " + errLog + " ---\n" + string(b)
		}
	}
	return result{
		code:   code,
		stdout: normalise(stdout, dir),
		stderr: normalise(errs, dir),
	}
}

var (
	// 2026/11/26 02:50:08 [emerg] 15521#15521: → [emerg]
	stampRE = regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[([a-z]+)\] \d+#\d+: `)
	// "nginx: " or "mailgate: " at a line start → "PROG: "
	progRE = regexp.MustCompile(`(?m)^(nginx|mailgate): `)
)

func normalise(s, dir string) string {
	s = strings.ReplaceAll(s, dir+"/", "PREFIX/")
	s = strings.ReplaceAll(s, dir, "PREFIX")
	s = stampRE.ReplaceAllString(s, "[$1] ")
	return progRE.ReplaceAllString(s, "PROG: ")
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// knownDifferences reads DIFFERENCES.md. A line "- `case`: reason" lets
// the case differ in message text only. A line "- superset `case`:
// reason" lets mailgate accept (exit 0) a configuration that nginx 1.22.1
// rejects (exit 1); the opposite direction is never allowed.
func knownDifferences(t *testing.T) (messages, supersets map[string]string) {
	t.Helper()
	f, err := os.Open("DIFFERENCES.md")
	if err != nil {
		t.Fatalf("reading DIFFERENCES.md: %v", err)
	}
	defer f.Close()
	re := regexp.MustCompile("^- (superset )?`([A-Za-z0-9_.-]+)`:?\\s*(.*)$")
	messages, supersets = map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if m[3] == "" {
			t.Errorf("DIFFERENCES.md: %q has no reason", m[2])
		}
		if m[1] != "" {
			supersets[m[2]] = m[3]
		} else {
			messages[m[2]] = m[3]
		}
		if _, err := os.Stat(filepath.Join("cases", m[2])); err != nil {
			t.Errorf("DIFFERENCES.md lists %q, which is not a case", m[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return messages, supersets
}
