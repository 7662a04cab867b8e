package mail

// The live-session registry (mailgate-only, issue 13): what the admin API
// lists and ends. One Registry may serve every generation of a process
// (Options.Registry), so sessions of a generation retired by a reload stay
// visible until they end. It never holds a password.

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// SessionInfo describes one live session.
type SessionInfo struct {
	ID       uint64    `json:"id"`       // nginx's connection number ("*N" in logs)
	Client   string    `json:"client"`   // "ip:port" as in "client ... connected to"
	Server   string    `json:"server"`   // the listen entry's text
	Protocol string    `json:"protocol"` // "pop3", "imap", "smtp"
	State    string    `json:"state"`    // "new", "pre-auth", "auth", "relay"
	Login    string    `json:"login,omitempty"`
	Upstream string    `json:"upstream,omitempty"`
	Start    time.Time `json:"start"`
	// Bytes relayed so far, client → upstream and upstream → client.
	BytesUp   int64  `json:"bytes_up"`
	BytesDown int64  `json:"bytes_down"`
	TLS       string `json:"tls,omitempty"` // protocol version, "TLSv1.3"
	Cipher    string `json:"cipher,omitempty"`
}

type liveSession struct {
	info     SessionInfo // under Registry.mu
	conn     net.Conn    // the accepted connection
	upstream net.Conn    // once dialed
	killed   *atomic.Bool
	wake     func() // resumes the session if it is parked (mail/park)
	up, down atomic.Int64
}

// Registry tracks live sessions and the servers they run on.
type Registry struct {
	mu      sync.Mutex
	live    map[uint64]*liveSession
	servers map[*Server]struct{}
	// relayed is the bytes relayed by sessions that ended, by labels:
	// up (client → upstream) and down. RelayedBytes adds the live ones.
	relayed map[Labels][2]int64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{live: map[uint64]*liveSession{}, servers: map[*Server]struct{}{}, relayed: map[Labels][2]int64{}}
}

func (r *Registry) add(e *engine) {
	s := e.s
	ls := &liveSession{conn: s.Conn, killed: &e.killed, wake: func() {
		e.parked.Wake(e.srv.parker.Load())
		if x := e.relayer.Load(); x != nil {
			x.Wake()
		}
	}}
	ls.info = SessionInfo{
		ID:       s.ID,
		Client:   clientTextPort(s.Client),
		Server:   e.labels().Server,
		Protocol: e.labels().Protocol,
		Start:    time.Now(),
	}
	r.mu.Lock()
	r.live[s.ID] = ls
	r.mu.Unlock()
	r.update(e)
}

// update copies what may have changed; it runs on the session's goroutine.
func (r *Registry) update(e *engine) {
	s := e.s
	r.mu.Lock()
	defer r.mu.Unlock()
	ls := r.live[s.ID]
	if ls == nil {
		return
	}
	ls.info.State = e.st.String()
	ls.info.Login = string(s.Login)
	ls.info.Upstream = s.Upstream
	if s.TLS != nil {
		ls.info.TLS = tlsVersionName(s.TLS.Version)
		ls.info.Cipher = opensslCipherName(s.TLS.CipherSuite)
	}
}

// remove forgets a session that ended; its relayed bytes move to the
// totals in the same step, so that RelayedBytes never counts them twice
// nor loses them.
func (r *Registry) remove(id uint64) {
	r.mu.Lock()
	if ls := r.live[id]; ls != nil {
		if up, down := ls.up.Load(), ls.down.Load(); up != 0 || down != 0 {
			l := Labels{Server: ls.info.Server, Protocol: ls.info.Protocol}
			t := r.relayed[l]
			r.relayed[l] = [2]int64{t[0] + up, t[1] + down}
		}
	}
	delete(r.live, id)
	r.mu.Unlock()
}

// RelayedBytes is the bytes relayed so far by labels, up (client →
// upstream) and down: those of ended sessions plus the live sessions'
// counts, which the relay adds to as it copies. Each total only grows.
func (r *Registry) RelayedBytes() map[Labels][2]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[Labels][2]int64, len(r.relayed))
	for l, t := range r.relayed {
		out[l] = t
	}
	for _, ls := range r.live {
		if up, down := ls.up.Load(), ls.down.Load(); up != 0 || down != 0 {
			l := Labels{Server: ls.info.Server, Protocol: ls.info.Protocol}
			t := out[l]
			out[l] = [2]int64{t[0] + up, t[1] + down}
		}
	}
	return out
}

// setUpstream records a session's upstream connection, so that End
// closes it too.
func (r *Registry) setUpstream(id uint64, up net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ls := r.live[id]; ls != nil {
		ls.upstream = up
		if ls.killed.Load() {
			up.Close()
		}
	}
}

// counters are the live byte counters the relay of session id writes.
func (r *Registry) counters(id uint64) (up, down *atomic.Int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ls := r.live[id]; ls != nil {
		return &ls.up, &ls.down
	}
	return nil, nil
}

// Sessions lists the live sessions by ID.
func (r *Registry) Sessions() []SessionInfo {
	r.mu.Lock()
	out := make([]SessionInfo, 0, len(r.live))
	for _, ls := range r.live {
		in := ls.info
		in.BytesUp, in.BytesDown = ls.up.Load(), ls.down.Load()
		out = append(out, in)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// End closes session id (client and upstream connections); the session
// then ends as any other, with the reason "admin". It reports whether the
// session was live.
func (r *Registry) End(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls := r.live[id]
	if ls == nil {
		return false
	}
	ls.kill()
	return true
}

// EndLogin ends every session whose login is login ("" matches none),
// and returns how many.
func (r *Registry) EndLogin(login string) int {
	if login == "" {
		return 0 // not "every session before login"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ls := range r.live {
		if ls.info.Login == login {
			ls.kill()
			n++
		}
	}
	return n
}

func (ls *liveSession) kill() {
	ls.killed.Store(true)
	ls.conn.Close()
	if ls.upstream != nil {
		ls.upstream.Close()
	}
	ls.wake() // after the close: the resumed session finds it closed
}

// Drain stops every registered server accepting, for good (sessions run
// on until they end), and returns how many sessions are live.
func (r *Registry) Drain() int {
	r.mu.Lock()
	srvs := make([]*Server, 0, len(r.servers))
	for s := range r.servers {
		srvs = append(srvs, s)
	}
	r.mu.Unlock()
	for _, s := range srvs {
		s.drain()
	}
	return r.Len()
}

// Len is the number of live sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}

func (r *Registry) addServer(s *Server) {
	r.mu.Lock()
	r.servers[s] = struct{}{}
	r.mu.Unlock()
}

func (r *Registry) removeServer(s *Server) {
	r.mu.Lock()
	delete(r.servers, s)
	r.mu.Unlock()
}

// Registry is the server's session registry (Options.Registry, or its own).
func (s *Server) Registry() *Registry { return s.reg }

// Sessions lists the live sessions of the server's registry.
func (s *Server) Sessions() []SessionInfo { return s.reg.Sessions() }

// EndSession ends session id; see Registry.End.
func (s *Server) EndSession(id uint64) bool { return s.reg.End(id) }

// EndSessionsOf ends every session of login; see Registry.EndLogin.
func (s *Server) EndSessionsOf(login string) int { return s.reg.EndLogin(login) }

// Drain stops accepting for good, without ending any session, and
// returns how many sessions are live. Unlike Shutdown, Serve does not
// return: the process stays up until its sessions are ended or it is
// stopped.
func (s *Server) Drain() int {
	s.drain()
	return s.reg.Len()
}

func (s *Server) drain() {
	s.mu.Lock()
	s.closing = true
	s.closeListeners()
	s.mu.Unlock()
}
