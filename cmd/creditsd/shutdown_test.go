package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
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
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", w.backend(), len(body), body[:20])
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the server is reading the body

	require.NoError(t, w.proc.cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(300 * time.Millisecond)
	_, err = net.DialTimeout("tcp", w.proc.addr, time.Second)
	require.Error(t, err, "no new connections once shutting down")

	_, err = conn.Write([]byte(body[20:]))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
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
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{", w.backend())
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the server is reading the body, which never comes

	require.NoError(t, w.proc.cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(300 * time.Millisecond) // shutting down, waiting for the request
	start := time.Now()
	require.NoError(t, w.proc.cmd.Process.Signal(syscall.SIGTERM))
	err = w.proc.cmd.Wait()
	require.Error(t, err, "ended by the signal, not a clean exit")
	require.Less(t, time.Since(start), 5*time.Second, "not the %s grace", shutdownGrace)
}
