package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
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

// closedByServer says whether the server closed c (as seen within the
// time given): a read that ends, not one that waits.
func closedByServer(t *testing.T, c net.Conn, within time.Duration) bool {
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF
}

// TestLimitListenerHoldsTheRest: with every slot taken by a connection in
// use, the next is not accepted until one closes.
func TestLimitListenerHoldsTheRest(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := newLimitListener(inner, 2)
	clock := time.Now()
	ln.now = func() time.Time { return clock } // a silent connection never passes its grace here
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

// TestLimitListenerTakesAWaitingPlace: with every slot taken, a new client
// takes the place of the connection that has waited waitGrace (idle
// between requests, or new and without a whole request's headers), and
// not before: an idle one's client may have its next request on the wire.
// A connection in use, or younger, is left alone.
func TestLimitListenerTakesAWaitingPlace(t *testing.T) {
	for name, tc := range map[string]struct {
		states  func(ln *limitListener, first, second net.Conn, advance func(time.Duration))
		later   time.Duration // then, the oldest waiting has waited its grace, the other not
		evicted int           // which of the two makes room
	}{
		"idle": {func(ln *limitListener, first, second net.Conn, _ func(time.Duration)) {
			ln.connState(first, http.StateIdle)
			ln.connState(second, http.StateIdle)
			ln.connState(first, http.StateActive) // a request came on it: in use again
		}, waitGrace, 1},
		"silent": {func(ln *limitListener, first, second net.Conn, advance func(time.Duration)) {
			ln.connState(first, http.StateNew)
			advance(waitGrace / 2)
			ln.connState(second, http.StateNew)
		}, waitGrace * 3 / 4, 0},
	} {
		t.Run(name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ln := newLimitListener(inner, 2)
			t.Cleanup(func() { ln.Close() })
			var mu sync.Mutex
			clock := time.Now()
			ln.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
			advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); clock = clock.Add(d) }
			accepted := acceptAll(ln)
			clients := []net.Conn{dial(t, inner.Addr().String()), dial(t, inner.Addr().String())}
			first, second := <-accepted, <-accepted
			tc.states(ln, first, second, advance)
			dial(t, inner.Addr().String())
			select {
			case <-accepted:
				t.Fatal("a connection that had not waited its grace made room")
			case <-time.After(400 * time.Millisecond):
			}
			advance(tc.later)
			select {
			case <-accepted:
			case <-time.After(5 * time.Second):
				t.Fatal("the waiting client did not take the place of the one past its grace")
			}
			require.True(t, closedByServer(t, clients[tc.evicted], 200*time.Millisecond), "the one past its grace made room")
			require.False(t, closedByServer(t, clients[1-tc.evicted], 200*time.Millisecond), "the other was left alone")
		})
	}
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

// TestServerBoundsItsConnections, against the real program: past
// max_connections, a new client takes the place of an idle keep-alive
// connection, or of one that has not sent a whole request's headers, once
// that one has waited its grace; a younger one keeps its place.
func TestServerBoundsItsConnections(t *testing.T) {
	w := newWorldWith(t, newCA(t), "max_connections: 2\n")
	idle := dial(t, w.proc.addr)
	_, err := fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode) // answered, then idle
	half := dial(t, w.proc.addr)
	_, err = fmt.Fprint(half, "GET /healthz HTTP/1.1\r\n") // a slow client's first line
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // both accepted

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err = client.Get("http://" + w.proc.addr + "/healthz")
	require.NoError(t, err, "a new client takes a waiting connection's place")
	resp.Body.Close()
	require.GreaterOrEqual(t, time.Since(start), waitGrace/2, "once it has waited its grace, not at once")

	late := dial(t, w.proc.addr) // the place the client just left
	_, err = fmt.Fprint(late, "GET /healthz HTTP/1.1\r\n")
	require.NoError(t, err)
	resp, err = client.Get("http://" + w.proc.addr + "/healthz")
	require.NoError(t, err, "a client waits for a half-sent request's grace, not its header timeout")
	resp.Body.Close()
	// Which of the two went first depends on when net/http reported the
	// first one idle, which may be after it answered; both go before the
	// younger one.
	require.True(t, closedByServer(t, idle, 5*time.Second), "the idle connection was closed to make room")
	require.True(t, closedByServer(t, half, 5*time.Second), "the half-sent request was closed to make room")
	require.False(t, closedByServer(t, late, 100*time.Millisecond), "the younger one kept its place")
}
