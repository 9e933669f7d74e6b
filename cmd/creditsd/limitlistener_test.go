package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// acceptAll accepts from ln until it is closed, handing each connection on.
func acceptAll(ln net.Listener) <-chan net.Conn {
	accepted := make(chan net.Conn, 8)
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return accepted
}

func dial(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLimitListenerHoldsTheRest: with every slot taken by a connection in
// use, the next is not accepted until one closes.
func TestLimitListenerHoldsTheRest(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := newLimitListener(inner, 2)
	accepted := acceptAll(ln)
	for range 3 {
		dial(t, inner.Addr().String())
	}
	first, second := <-accepted, <-accepted
	ln.connState(first, http.StateActive)
	ln.connState(second, http.StateNew)
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were in use")
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, first.Close())
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not accepted once the first closed")
	}
	require.NoError(t, ln.Close())
	_, open := <-accepted
	require.False(t, open, "Close ends Accept")
}

// TestLimitListenerTakesAnIdlePlace: with every slot taken and some idle,
// a new client closes the one idle longest and takes its place; one that
// became active again is not closed.
func TestLimitListenerTakesAnIdlePlace(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := newLimitListener(inner, 2)
	t.Cleanup(func() { ln.Close() })
	accepted := acceptAll(ln)
	a, b := dial(t, inner.Addr().String()), dial(t, inner.Addr().String())
	first, second := <-accepted, <-accepted
	ln.connState(first, http.StateIdle)
	ln.connState(second, http.StateIdle)
	ln.connState(first, http.StateActive) // a request came on it: in use again
	dial(t, inner.Addr().String())
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection waited although one was idle")
	}
	closedByServer := func(c net.Conn) bool {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	require.True(t, closedByServer(b), "the idle one made room")
	require.False(t, closedByServer(a), "the one in use was left alone")
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
// max_connections connections open, a client that has sent only part of
// its request holds its place, idle keep-alive connections give theirs to
// new clients, and no more are served at once.
func TestServerBoundsItsConnections(t *testing.T) {
	w := newWorldWith(t, newCA(t), "max_connections: 2\n")
	get := func(c net.Conn) {
		_, err := fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	idle := dial(t, w.proc.addr)
	get(idle) // answered, then idle
	half := dial(t, w.proc.addr)
	_, err := fmt.Fprint(half, "GET /healthz HTTP/1.1\r\n") // in use until ReadHeaderTimeout
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // the server has accepted it

	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + w.proc.addr + "/healthz")
	require.NoError(t, err, "a new client takes the idle connection's place")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, idle.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = idle.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the idle connection was closed to make room")

	busy := dial(t, w.proc.addr) // takes the freed place, and holds it
	_, err = fmt.Fprint(busy, "GET /healthz HTTP/1.1\r\n")
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	client.Timeout = 300 * time.Millisecond
	_, err = client.Get("http://" + w.proc.addr + "/healthz")
	require.Error(t, err, "with both in use, a third waits")
}
