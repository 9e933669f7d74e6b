package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// unparseable are requests net/http answers itself, before any handler, and
// the problem each must get instead of its text/plain reply.
var unparseable = []struct {
	name, request string
	status        int
	code, detail  string
}{
	{"NoHost", "GET /healthz HTTP/1.1\r\n\r\n", 400, "malformed_request", "missing required Host header"},
	{"HeaderWithoutColon", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "malformed_request",
		"the request is not valid HTTP/1.1"},
	{"BadRequestLine", "GARBAGE\r\n\r\n", 400, "malformed_request", "the request is not valid HTTP/1.1"},
	{"HTTPVersion", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 400, "malformed_request", "unsupported protocol version"}, // net/http: 505
	{"HeadersOver32KiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + strings.Repeat("x", maxHeaderBytes+8192) + "\r\n\r\n",
		431, "headers_too_large", "the request's headers are over 32 KiB"},
	{"UnknownTransferEncoding", "POST /v1/appstore/notifications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
		400, "unsupported_transfer_encoding", "the request's Transfer-Encoding is not supported: send chunked or a Content-Length"},
}

// problemServer serves h behind problemListener, as serve does, and says
// where.
func problemServer(tb testing.TB, h http.HandlerFunc) string {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = maxHeaderBytes // as serve's, listener and all
	limited := newLimitListener(srv.Listener, 64)
	srv.Config.ConnState = limited.connState
	srv.Listener = problemListener{limited}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawExchange sends request on a new connection to addr and reads the one
// answer the server gives before it closes the connection.
func rawExchange(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	go func() { _, _ = io.WriteString(conn, request) }() // a header past the limit is answered before it is all read
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func requireProblem(t *testing.T, resp *http.Response, status int, code, detail string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var p entitlements.Problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, entitlements.Problem{Type: "urn:creditsd:problem:" + code, Title: http.StatusText(status),
		Status: status, Detail: detail, Code: code}, p)
	require.True(t, resp.Close, "the connection closes after the answer, as net/http's own did")
}

// TestUnparseableRequestsGetProblems drives net/http itself through the
// listener: its own replies become problems, and a handler's answers,
// errors included, pass through byte for byte.
func TestUnparseableRequestsGetProblems(t *testing.T) {
	addr := problemServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path { // not creditsd's answers, but ones the rewrite must leave alone
		case "/plain":
			http.Error(w, "400 Bad Request", http.StatusBadRequest)
			return
		case "/sniffed": // net/http adds the same Content-Type and Connection: close, after Date and Content-Length
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "400 Bad Request")
			return
		}
		healthz(w, r)
	})

	for _, tc := range unparseable {
		t.Run(tc.name, func(t *testing.T) {
			requireProblem(t, rawExchange(t, addr, tc.request), tc.status, tc.code, tc.detail)
		})
	}
	t.Run("HandlersAnswerUnchanged", func(t *testing.T) {
		resp := rawExchange(t, addr, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, "400 Bad Request\n", string(body))

		resp = rawExchange(t, addr, "GET /sniffed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
		body, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, "400 Bad Request", string(body))

		resp = rawExchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		body, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.JSONEq(t, `{"status":"ok"}`, string(body))
	})
}

// TestServerAnswersUnparseableRequestsWithProblems is the same from outside,
// against the real program.
func TestServerAnswersUnparseableRequestsWithProblems(t *testing.T) {
	w := newWorld(t)
	for _, tc := range unparseable {
		t.Run(tc.name, func(t *testing.T) {
			requireProblem(t, rawExchange(t, w.proc.addr, tc.request), tc.status, tc.code, tc.detail)
		})
	}
	t.Run("HeadersUnderTheLimit", func(t *testing.T) {
		resp := rawExchange(t, w.proc.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "+
			strings.Repeat("x", maxHeaderBytes-1024)+"\r\nConnection: close\r\n\r\n")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

// TestHeadersTooLargeEndCleanly: a client that has sent all of its
// oversized headers reads the 431 and then the connection's end, not a
// reset after net/http's half-second wait (which a read then reports as
// an error), through every wrapper serve puts on a connection.
func TestHeadersTooLargeEndCleanly(t *testing.T) {
	addr := problemServer(t, healthz)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("x", maxHeaderBytes+8192)+"\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	answer, err := io.ReadAll(conn)
	require.NoError(t, err, "the answer ends in a close, not a reset")
	require.Contains(t, string(answer), "431")
}

// FuzzRawRequest writes arbitrary bytes to a server behind the listener:
// whatever net/http makes of them, every answer it or the handler gives is
// below 500, and every 4xx is a problem with a code.
func FuzzRawRequest(f *testing.F) {
	for _, tc := range unparseable {
		if len(tc.request) < 64<<10 { // not the 1 MiB one: every go test runs the seeds
			f.Add([]byte(tc.request))
		}
	}
	f.Add([]byte("POST /v1/appstore/notifications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"))
	f.Add([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET /healthz HTTP/1.0\r\n\r\n"))
	addr := problemServer(f, healthz)
	f.Fuzz(func(t *testing.T, request []byte) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, _ = conn.Write(request)
		_ = conn.(*net.TCPConn).CloseWrite() // the server sees the request end, and answers what it has
		r := bufio.NewReader(conn)
		for {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				return // no more answers: the connection ended
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Less(t, resp.StatusCode, 500, "%q answered %d: %s", request, resp.StatusCode, body)
			if resp.StatusCode >= 400 {
				require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "%q: %s", request, body)
				var p entitlements.Problem
				require.NoError(t, json.Unmarshal(body, &p), "%q: %s", request, body)
				require.NotEmpty(t, p.Code)
				require.Equal(t, resp.StatusCode, p.Status)
			}
		}
	})
}
