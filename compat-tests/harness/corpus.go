package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// With $HARNESS_FUZZ_CORPUS set to the repository's root, Suite.Run also
// writes each scenario of the pop3, imap and smtp suites as a seed of the
// protocol's session fuzzer (mail/PROTO/testdata/fuzz/FuzzPROTOSession):
// the client's bytes, one read per Send, an auth_http script that fails
// once and then lets the client in, and an upstream script that logs in.
// The seeds are committed; this is how they are made again.

// fuzzSeeds are the auth and upstream scripts by suite name (NUL bytes
// separate answers, as mailtest.Input reads them).
var fuzzSeeds = map[string]struct{ target, auth, upstream string }{
	"pop3": {"FuzzPOP3Session",
		"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 1\r\n\r\n\x00HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 110\r\nAuth-Pass: secret\r\n\r\n",
		"+OK upstream ready\r\n\x00+OK\r\n\x00+OK logged in\r\n\x00+OK 2 320\r\n"},
	"imap": {"FuzzIMAPSession",
		"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 1\r\n\r\n\x00HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\nAuth-Pass: secret\r\n\r\n",
		"* OK upstream ready\r\n\x00+ go ahead\r\n\x00+ go ahead\r\n\x00a1 OK LOGIN completed\r\n\x00* 1 EXISTS\r\n"},
	"smtp": {"FuzzSMTPSession",
		"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 1\r\n\r\n\x00HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 25\r\n\r\n",
		"220 upstream ESMTP\r\n\x00250-upstream\r\n250 XCLIENT ADDR NAME LOGIN\r\n\x00220 ok\r\n\x00250 2.1.0 ok\r\n\x00250 2.1.5 ok\r\n\x00354 go\r\n"},
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// writeFuzzSeed writes sc as a fuzz seed of suite's protocol, if asked to.
func (s *Suite) writeFuzzSeed(sc Scenario) error {
	root := os.Getenv("HARNESS_FUZZ_CORPUS")
	seed, ok := fuzzSeeds[s.Name]
	if root == "" || !ok {
		return nil
	}
	var client, splits []byte
	for _, st := range sc.Steps {
		if st.kind != stepSend || len(st.data) == 0 {
			continue
		}
		client = append(client, st.data...)
		// A read of b%64+1 bytes per split byte: a Send longer than 64
		// bytes is cut into 64-byte reads and its rest.
		for n := len(st.data); n > 0; n -= 64 {
			splits = append(splits, byte(min(n, 64)-1))
		}
	}
	if len(client) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range []string{string(client), string(splits), seed.auth, seed.upstream} {
		fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(v))
	}
	dir := filepath.Join(root, "mail", s.Name, "testdata", "fuzz", seed.target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := "compat-" + strings.Trim(unsafeName.ReplaceAllString(sc.Name, "-"), "-")
	return os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644)
}
