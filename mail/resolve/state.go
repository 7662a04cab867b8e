package resolve

// Per-resolver state, as nginx keeps it in each ngx_resolver_t: one is
// created per `resolver` directive, and the servers that inherit the
// directive share it (confparse gives them the same *Resolver).

import (
	"runtime"
	"sync"
	"weak"

	"mailgate/confparse"
)

// CountConn, when set, is called each time nginx would open a socket to a
// resolver address (the first query to it), so that connection numbers
// ("*N" in error.log) advance as nginx's do. mail/smtp sets it to
// mail.NextConnID.
var CountConn func()

type state struct {
	mu      sync.Mutex
	last    int          // ngx_resolver_t.last_connection
	opened  map[int]bool // addresses (by index) with a socket
	flights map[string]*flight
}

// states maps a resolver directive to its state; an entry goes with its
// configuration (reloads do not pile them up).
var states sync.Map // weak.Pointer[confparse.Resolver] -> *state

func stateOf(r *confparse.Resolver) *state {
	key := weak.Make(r)
	if st, ok := states.Load(key); ok {
		return st.(*state)
	}
	st, loaded := states.LoadOrStore(key, &state{opened: map[int]bool{}, flights: map[string]*flight{}})
	if !loaded {
		runtime.AddCleanup(r, func(k weak.Pointer[confparse.Resolver]) { states.Delete(k) }, key)
	}
	return st.(*state)
}

// pick returns the address index a new query starts at and moves the
// turn on, as ngx_resolve_addr and ngx_resolve_name_locked do.
func (st *state) pick(n int) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.last >= n {
		st.last = 0
	}
	i := st.last
	st.last++
	if st.last == n {
		st.last = 0
	}
	return i
}

// open notes a send to server: the first one opens nginx's UDP socket to
// it, which takes a connection number.
func (st *state) open(idx int) {
	st.mu.Lock()
	first := !st.opened[idx]
	st.opened[idx] = true
	st.mu.Unlock()
	if first && CountConn != nil {
		CountConn()
	}
}

// closed notes that nginx's socket to the address at idx is gone (after a
// recv() error): the next send opens another.
func (st *state) closed(idx int) {
	st.mu.Lock()
	delete(st.opened, idx)
	st.mu.Unlock()
}
