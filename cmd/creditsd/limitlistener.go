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
// client takes the place of the connection idle longest between requests,
// which net/http would close at IdleTimeout anyway, so idle connections
// cannot lock clients out; with none idle it waits for one to close.
// Connections waiting for a slot wait in the kernel's backlog, unread.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	idle map[net.Conn]time.Time // as http.Server passed them to connState, by when they fell idle
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}),
		idle: make(map[net.Conn]time.Time)}
}

// Accept takes the next client, then a slot for it: taking the slot first
// would make room for a client that may never come.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
	default:
		l.closeLongestIdle()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

// connState is the http.Server's ConnState hook: it keeps which
// connections are idle.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == http.StateIdle {
		l.idle[c] = time.Now()
	} else {
		delete(l.idle, c)
	}
}

// closeLongestIdle closes the connection idle longest, if any is. Its
// slot comes back as net/http sees it closed, as at IdleTimeout.
func (l *limitListener) closeLongestIdle() {
	l.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
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
