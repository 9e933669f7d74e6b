package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLimitListenerHoldsTheRest: with every slot taken, the next
// connection is not accepted until one closes; a slot is given back once
// however often its connection is closed.
func TestLimitListenerHoldsTheRest(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := newLimitListener(inner, 2)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open")
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, first.Close())
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not accepted once the first closed")
	}
	second.Close()
	require.NoError(t, ln.Close())
	_, open := <-accepted
	require.False(t, open, "Close ends Accept")
}

// A connection closed twice gives its slot back once.
func TestLimitedConnReleasesOnce(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	released := 0
	c := &limitedConn{Conn: a, release: func() { released++ }}
	require.NoError(t, c.Close())
	c.Close()
	require.Equal(t, 1, released)
}

// TestServerBoundsItsConnections, against the real program: with
// max_connections connections open and idle, a new client waits, and is
// answered as soon as one of them closes.
func TestServerBoundsItsConnections(t *testing.T) {
	w := newWorldWith(t, newCA(t), "max_connections: 2\n")
	idle := make([]net.Conn, 2)
	for i := range idle {
		c, err := net.Dial("tcp", w.proc.addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		// An answered request makes sure the server has accepted it.
		_, err = fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		idle[i] = c
	}
	client := &http.Client{Timeout: 300 * time.Millisecond}
	_, err := client.Get("http://" + w.proc.addr + "/healthz")
	require.Error(t, err, "a third connection waits while two are open")

	require.NoError(t, idle[0].Close())
	client.Timeout = 10 * time.Second
	resp, err := client.Get("http://" + w.proc.addr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
