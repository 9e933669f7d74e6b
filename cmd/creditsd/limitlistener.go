package main

import (
	"net"
	"sync"
)

// limitListener accepts at most n connections at a time: past that, Accept
// waits for one to close, and new connections wait in the kernel's backlog
// instead of each costing the server a goroutine and its buffers. A client
// holding thousands of idle or half-sent connections otherwise grows the
// server's memory without bound (an audit's 8,000 idle connections: 179
// MB) and, at the process's file limit, starves every other client.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close also ends an Accept that waits for a slot, so that shutdown does
// not wait on a client's idle connections.
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
