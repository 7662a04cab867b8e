// Command authserver runs the scriptable auth_http test server by hand.
//
//	authserver -listen 127.0.0.1:22001 -user good:pw:127.0.0.1:19110 \
//	    -user other:secret:127.0.0.1:19143 -none 127.0.0.1:19025 -fail-wait 1
//
// Each request is printed to stdout with the Auth-Pass value masked.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"mailgate/compat-tests/authserver"
)

type userFlags map[string]authserver.User

func (u userFlags) String() string { return "" }

func (u userFlags) Set(v string) error {
	name, rest, ok1 := strings.Cut(v, ":")
	pass, up, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return fmt.Errorf("want user:password:ip:port, got %q", v)
	}
	u[name] = authserver.User{Password: pass, Upstream: up}
	return nil
}

var passLine = regexp.MustCompile(`(?mi)^(Auth-Pass:).*$`)

func main() {
	users := userFlags{}
	listen := flag.String("listen", "127.0.0.1:22001", "address, or unix:/path")
	none := flag.String("none", "", "upstream ip:port for Auth-Method: none")
	failMsg := flag.String("fail-message", authserver.DefaultFailMessage, "Auth-Status for a wrong password")
	failWait := flag.String("fail-wait", "", "Auth-Wait sent with failures")
	failCode := flag.String("fail-error-code", "", "Auth-Error-Code sent with failures")
	flag.Var(users, "user", "user:password:ip:port (repeatable)")
	flag.Parse()

	s, err := authserver.Start(*listen, authserver.Script{
		Users: users, NoneUpstream: *none,
		FailMessage: *failMsg, FailWait: *failWait, FailErrorCode: *failCode,
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("auth_http %s", s.URL())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	seen := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sig:
			s.Close()
			return
		case <-tick.C:
			reqs := s.Requests()
			for ; seen < len(reqs); seen++ {
				fmt.Printf("--- request %d\n%s", seen+1, passLine.ReplaceAll(reqs[seen], []byte("$1 ***\r")))
			}
		}
	}
}
