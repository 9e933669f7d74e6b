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
// client takes the place of the connection that has waited longest, if
// it has waited waitGrace: idle between requests (which net/http would
// close at IdleTimeout anyway), or without a whole request's headers
// (silent, or sending them byte by byte). So neither kind can lock clients
// out for more than about a second; requests being read or served make
// one wait (a body sent slowly, up to ReadTimeout). Connections waiting
// for a slot wait in the kernel's backlog.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	now       func() time.Time

	mu      sync.Mutex
	waiting map[net.Conn]time.Time // with no request under way, since when; as http.Server passed them to connState
}

// waitGrace is how long a connection must have waited before a client
// waiting for a slot may take its place. A client sends its request's
// headers as it connects (net/http reports a connection active only once
// it has read them); one that has not after a second is an attack's, or
// lost. An idle connection gets the same second: a client's next request
// may be on the wire while net/http still reports it idle, and closing it
// then fails that request (a review: 33–53 of 800 pooled POSTs).
const waitGrace = time.Second

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}), now: time.Now,
		waiting: make(map[net.Conn]time.Time)}
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
		case <-time.After(waitGrace / 4): // a connection may have waited past its grace meanwhile
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
		l.waiting[c] = l.now()
	default:
		delete(l.waiting, c)
	}
}

// closeLongestWaiting closes the connection that has waited longest, if it
// has waited past its grace. Its slot comes back as it closes.
func (l *limitListener) closeLongestWaiting() {
	l.mu.Lock()
	now := l.now()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.waiting {
		if now.Sub(t) >= waitGrace && (oldest == nil || t.Before(since)) {
			oldest, since = c, t
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
