package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// limitListener serves at most n connections at a time. A client holding
// thousands of idle or half-sent connections otherwise grows the server's
// memory without bound (an audit's 8,000 idle connections: 179 MB) and, at
// the process's file limit, starves every other client. Past n, a new
// client takes the place of the connection that has waited longest: idle
// between requests (which net/http would close at IdleTimeout anyway), or
// open for silentGrace without a whole request's headers (silent, or
// sending them byte by byte). So neither kind can lock clients out; only
// requests being served make one wait. Connections waiting for a slot
// wait in the kernel's backlog.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	now       func() time.Time

	mu      sync.Mutex
	waiting map[net.Conn]waiting // as http.Server passed them to connState
}

// waiting is a connection with no request under way, since when.
type waiting struct {
	since time.Time
	idle  bool // between requests; otherwise new, its first request's headers not all read yet
}

// silentGrace is how long a new connection may go without sending a whole
// request's headers before a client waiting for a slot may take its place.
// A client sends its headers as it connects (net/http reports a connection
// active only once it has read them); one that has not after a second is
// an attack's, or lost.
const silentGrace = time.Second

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}), now: time.Now,
		waiting: make(map[net.Conn]waiting)}
}

// Accept takes the next client, then a slot for it: taking the slot first
// would make room for a client that may never come.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
		}
		l.closeLongestWaiting()
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		case <-time.After(silentGrace / 4): // a new connection may have stayed silent past its grace
		}
	}
}

// connState is the http.Server's ConnState hook: it keeps which
// connections have no request under way.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateIdle, http.StateNew:
		l.waiting[c] = waiting{since: l.now(), idle: s == http.StateIdle}
	default:
		delete(l.waiting, c)
	}
}

// closeLongestWaiting closes the connection that has waited longest, idle
// or silent past its grace, if any has. Its slot comes back as it closes.
func (l *limitListener) closeLongestWaiting() {
	l.mu.Lock()
	now := l.now()
	var oldest net.Conn
	var since time.Time
	for c, w := range l.waiting {
		if (w.idle || now.Sub(w.since) >= silentGrace) && (oldest == nil || w.since.Before(since)) {
			oldest, since = c, w.since
		}
	}
	delete(l.waiting, oldest)
	l.mu.Unlock()
	if oldest != nil {
		oldest.Close()
	}
}

// Close also ends an Accept that waits for a slot, so that shutdown does
// not wait on the connections open.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back when it is closed, once however often.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite passes on the TCP half-close net/http makes after a 431
// (problemConn's), so that the client reads the answer before the close.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
