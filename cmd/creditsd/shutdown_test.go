package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// On SIGTERM the server stops taking connections but finishes the requests
// in flight: a spend whose body is still arriving completes, durably, and
// the process then exits 0.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	w := newWorld(t)
	g := w.do("POST", "/v1/users/alice/grants", w.admin(), map[string]any{"idempotency_key": "g", "credits": 5, "reason": "test"})
	require.Equal(t, http.StatusCreated, g.status, g.raw)

	body := `{"idempotency_key":"in-flight","product":"sora","credits":31}`
	conn, err := net.Dial("tcp", w.proc.addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/users/alice/spends HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s",
		w.backend(), len(body), body[:20])
	require.NoError(t, err)
	answers := bufio.NewReader(conn)
	awaitContinue(t, conn, answers)

	require.NoError(t, w.proc.cmd.Process.Signal(syscall.SIGTERM))
	w.proc.awaitLog(t, "shutting down")
	awaitRefused(t, w.proc.addr)

	_, err = conn.Write([]byte(body[20:]))
	require.NoError(t, err)
	resp, err := http.ReadResponse(answers, nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "the request in flight was served")
	require.NoError(t, w.proc.cmd.Wait(), "and the process exited cleanly; log:\n%s", w.proc.log())

	w.proc = start(t, "serve", "--config", w.config)
	e := w.entitlement("alice")
	require.Equal(t, int64(30+5-31), e.Spendable, "the spend answered during shutdown is durable")
}

// A second signal during the graceful shutdown ends the process at once,
// without waiting out the grace for a request still arriving.
func TestShutdownSecondSignalEndsAtOnce(t *testing.T) {
	w := newWorld(t)
	conn, err := net.Dial("tcp", w.proc.addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/users/alice/spends HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n{", w.backend())
	require.NoError(t, err)
	awaitContinue(t, conn, bufio.NewReader(conn)) // the body never comes

	require.NoError(t, w.proc.cmd.Process.Signal(syscall.SIGTERM))
	w.proc.awaitLog(t, "shutting down")
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- w.proc.cmd.Wait() }()
	// main restores SIGTERM's default action once the shutdown has begun,
	// concurrently with the log line: a signal that lands just before is
	// taken by the shutdown under way. So signal again until the process
	// ends; if the default action were never restored, it would end only
	// after the grace.
	for waiting := true; waiting; {
		_ = w.proc.cmd.Process.Signal(syscall.SIGTERM) // fails only once the process is gone
		select {
		case err = <-exited:
			waiting = false
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.Error(t, err, "ended by the signal, not a clean exit")
	require.Less(t, time.Since(start), 5*time.Second, "not the %s grace", shutdownGrace)
}

// awaitContinue reads the 100 Continue the server sends when the handler
// first reads the body: from then on the request is in flight, not a
// connection still waiting in the listener's queue.
func awaitContinue(t *testing.T, conn net.Conn, answers *bufio.Reader) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(answers, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusContinue, resp.StatusCode)
	require.NoError(t, conn.SetReadDeadline(time.Time{}))
}

// awaitLog waits for msg in the process's log.
func (p *process) awaitLog(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("creditsd did not log %q; it said:\n%s", msg, p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitRefused waits until the listener at addr is closed. A connection
// that still gets through is closed at once, so the shutdown does not wait
// for it.
func awaitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still takes connections while shutting down", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
