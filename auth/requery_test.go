package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailgate/confparse"
)

// sequence is one WAIT scenario captured from nginx 1.22.1
// (testdata/nginx-1.22.1/wait, made by tools/requery.py).
type sequence struct {
	capture
	Answers       []string `json:"answers"`
	DefaultAnswer string   `json:"default_answer"`
	Reply         string   `json:"reply"`
	Log           []string `json:"log"`
	Requests      int      `json:"requests"`
}

// TestRequerySequences drives Do, Requery and Result.Requery the way an
// engine does and checks that the auth server sees exactly the requests
// nginx sent, in order, and that the session ends as nginx's did.
func TestRequerySequences(t *testing.T) {
	dir := filepath.Join("testdata", "nginx-1.22.1", "wait")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("%d scenarios, want at least 8", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			js, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var sq sequence
			if err := json.Unmarshal(js, &sq); err != nil {
				t.Fatal(err)
			}
			var want [][]byte
			for i := 1; i <= sq.Requests; i++ {
				b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s.%d.req", name, i)))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, b)
			}

			var mu sync.Mutex
			n := 0
			srv := startRaw(t, "tcp", "127.0.0.1:0", func([]byte) []byte {
				mu.Lock()
				defer mu.Unlock()
				n++
				if n <= len(sq.Answers) {
					return []byte(sq.Answers[n-1])
				}
				return []byte(sq.DefaultAnswer)
			})
			c := NewClient(&confparse.AuthHTTPConf{Network: "tcp", Addr: srv.ln.Addr().String(), Peer: "127.0.0.1:22001",
				Host: sq.Host, URI: sq.URI, Headers: sq.Headers, Timeout: time.Second})

			req := sq.request(t, dir)
			var outcome string
			var logs []string
			for round := 0; outcome == "" && round < 10; round++ {
				res, err := c.Do(context.Background(), req)
				switch {
				case err != nil:
					outcome = "error: " + err.Error()
				case res.Kind == Again:
					// An engine sleeps res.WaitSeconds here.
					req = Requery(req, res)
				case res.Kind == Fail:
					logs = append(logs, fmt.Sprintf("info: client login failed: %q while in http auth state", res.Message))
					if res.Requery {
						req = Requery(req, res)
						continue
					}
					outcome = "fail " + res.Message
				default:
					outcome = "upstream " + res.ServerText
				}
			}

			got := srv.requests()
			if len(got) != len(want) {
				t.Errorf("sent %d requests, nginx sent %d", len(got), len(want))
			}
			for i := range min(len(got), len(want)) {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("request %d differs\ngot:  %q\nwant: %q", i+1, got[i], want[i])
				}
			}

			wantOutcome := ""
			switch r := strings.TrimSuffix(sq.Reply, "\r\n"); {
			case strings.HasPrefix(r, "-ERR internal"), strings.HasPrefix(r, "* BAD internal"):
				last := sq.Log[len(sq.Log)-1]
				i := strings.Index(last, "[upstream: ")
				if i < 0 {
					t.Fatalf("no upstream in %q", last)
				}
				wantOutcome = "upstream " + strings.TrimSuffix(last[i+len("[upstream: "):], "]")
			case strings.HasPrefix(r, "-ERR "):
				wantOutcome = "fail " + strings.TrimPrefix(r, "-ERR ")
			case strings.HasPrefix(r, "a NO "):
				wantOutcome = "fail " + strings.TrimPrefix(r, "a NO ")
			default:
				t.Fatalf("unexpected nginx reply %q", sq.Reply)
			}
			if outcome != wantOutcome {
				t.Errorf("outcome %q, nginx: %q", outcome, wantOutcome)
			}
			var nginxFails []string
			for _, l := range sq.Log {
				if strings.HasPrefix(l, "info: client login failed") {
					nginxFails = append(nginxFails, l)
				}
			}
			if strings.Join(logs, "\n") != strings.Join(nginxFails, "\n") {
				t.Errorf("failure logs %q, nginx %q", logs, nginxFails)
			}
		})
	}
}

func TestRequery(t *testing.T) {
	base := &Request{Method: MethodAPOP, User: []byte("u"), Pass: []byte("digest"), Salt: []byte("<1@x>"), Protocol: "pop3", LoginAttempt: 2}
	tests := []struct {
		name       string
		req        *Request
		res        *Result
		user, pass string
		authWait   bool
	}{
		{"apop forgets the digest", base, &Result{Kind: Again, HasWait: true, WaitSeconds: 1}, "u", "", false},
		{"wait 0 sets the flag", base, &Result{Kind: Again}, "u", "", true},
		{"overrides", base, &Result{Kind: Again, User: []byte("v"), Pass: []byte("pw")}, "v", "pw", true},
		{"plain keeps the password", &Request{Method: MethodPlain, Pass: []byte("pw"), AuthWait: true},
			&Result{Kind: Fail, Requery: true, HasWait: true, WaitSeconds: 2}, "", "pw", false},
		{"cram-md5", &Request{Method: MethodCRAMMD5, Pass: []byte("d")}, &Result{Kind: Again, WaitSeconds: 3}, "", "", false},
	}
	for _, tc := range tests {
		next := Requery(tc.req, tc.res)
		if string(next.User) != tc.user || string(next.Pass) != tc.pass || next.Pass == nil || next.AuthWait != tc.authWait {
			t.Errorf("%s: got user %q pass %q authwait %v", tc.name, next.User, next.Pass, next.AuthWait)
		}
		if next.LoginAttempt != tc.req.LoginAttempt || next.Method != tc.req.Method || !bytes.Equal(next.Salt, tc.req.Salt) {
			t.Errorf("%s: request changed beyond the rules: %+v", tc.name, next)
		}
	}
	if string(base.Pass) != "digest" || base.AuthWait {
		t.Error("Requery changed its argument")
	}
}
