// Package admin is mailgate's admin endpoint (mailgate-only, issue 13,
// docs/admin.md): Prometheus metrics, the live sessions and how to end
// them, draining, and optionally pprof, over HTTP on admin_listen. It has
// no authentication: it belongs on loopback or a unix socket.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"time"

	"mailgate/mail"
)

// Config is what the endpoint serves.
type Config struct {
	Metrics  *Metrics       // nil: no /metrics
	Sessions *mail.Registry // the process's session registry
	Pprof    bool           // serve /debug/pprof/
}

// Handler returns the endpoint's routes:
//
//	GET    /metrics                Prometheus text format
//	GET    /sessions               the live sessions, a JSON array
//	DELETE /sessions/{id}          end one session
//	DELETE /sessions?login=NAME    end every session of a login
//	POST   /drain[?wait=DURATION]  stop accepting for good; with wait,
//	                               answer once the sessions ended (or it passed)
//	GET    /debug/pprof/...        only with Pprof
func Handler(c Config) http.Handler {
	mux := http.NewServeMux()
	if c.Metrics != nil {
		mux.Handle("GET /metrics", c.Metrics.Handler())
	}
	reg := c.Sessions
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, reg.Sessions())
	})
	mux.HandleFunc("DELETE /sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the session id is a number"})
			return
		}
		if !reg.End(id) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such session"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"ended": 1})
	})
	mux.HandleFunc("DELETE /sessions", func(w http.ResponseWriter, r *http.Request) {
		login, ok := r.URL.Query()["login"]
		if !ok || len(login) != 1 || login[0] == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "DELETE /sessions needs ?login=NAME"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"ended": reg.EndLogin(login[0])})
	})
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, r *http.Request) {
		var wait time.Duration
		if v := r.URL.Query().Get("wait"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "wait is a duration: 30s, 5m, 1h"})
				return
			}
			wait = d
		}
		n := reg.Drain()
		if wait > 0 && n > 0 {
			n = waitEnded(r.Context(), reg, wait)
		}
		writeJSON(w, http.StatusOK, map[string]any{"draining": true, "sessions": n})
	})
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// waitEnded waits until reg has no live session, d has passed or ctx
// ends, and returns how many sessions are live then.
func waitEnded(ctx context.Context, reg *mail.Registry, d time.Duration) int {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if n := reg.Len(); n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return reg.Len()
		case <-t.C:
			return reg.Len()
		case <-tick.C:
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away
}

// Listen opens the admin listener: network "tcp" or "unix" (a stale
// socket file is replaced; the socket is made 0600, as the endpoint has no
// authentication).
func Listen(network, addr string) (net.Listener, error) {
	if network == "unix" {
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(addr)
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := os.Chmod(addr, 0o600); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

// Server is a running admin endpoint.
type Server struct {
	hs   *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve runs h on ln until Close.
func Serve(ln net.Listener, h http.Handler) *Server {
	s := &Server{
		hs:   &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	return s
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the endpoint at once.
func (s *Server) Close() error {
	err := s.hs.Close()
	<-s.done
	if a, ok := s.ln.Addr().(*net.UnixAddr); ok {
		os.Remove(a.Name)
	}
	return err
}
