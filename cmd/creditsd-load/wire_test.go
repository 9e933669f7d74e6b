package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echo answers with the request's method, path, bearer and body, chunked
// when ?chunked is set, and counts the connections it was sent on.
func echoServer(t *testing.T, conns *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
		if r.URL.Query().Has("chunked") {
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
				w.(http.Flusher).Flush()
			}
			return
		}
		if r.URL.Query().Has("close") {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestWireClientConnections counts the connections a run of requests
// takes: one while answers allow keeping it, one each when they do not.
func TestWireClientConnections(t *testing.T) {
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		n                  int
		status             int
		conns              int64
		why                string
	}{
		{"KeptAlive", "POST", "/v1/x", []byte(`{"a":1}`), 50, http.StatusCreated, 1, "one kept-alive connection carries every request"},
		{"Chunked", "GET", "/big?chunked", nil, 5, http.StatusOK, 1, "a chunked body read to its end leaves the connection reusable"},
		{"ConnectionClose", "GET", "/x?close", nil, 3, http.StatusCreated, 3, "a connection the server closes is not reused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int64
			srv := echoServer(t, &conns)
			c, err := newWireClient(srv.URL, 4)
			require.NoError(t, err)
			for range tc.n {
				status, err := send(context.Background(), c, tc.method, tc.path, "tok", tc.body)
				require.NoError(t, err)
				require.Equal(t, tc.status, status)
			}
			require.Equal(t, tc.conns, conns.Load(), tc.why)
		})
	}
}

func TestWireClient(t *testing.T) {
	t.Run("RequestOnTheWire", func(t *testing.T) {
		got := make(chan string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got <- r.Method + " " + r.Host + " " + r.URL.RequestURI() + " " + r.Header.Get("Authorization") + " " +
				r.Header.Get("Content-Type") + " " + string(body)
			w.WriteHeader(http.StatusPaymentRequired)
		}))
		defer srv.Close()
		c, err := newWireClient(srv.URL, 1)
		require.NoError(t, err)
		status, err := send(context.Background(), c, "POST", "/v1/users/u1/spends?x=1", "abc", []byte(`{"k":"v"}`))
		require.NoError(t, err)
		require.Equal(t, http.StatusPaymentRequired, status)
		require.Equal(t, "POST "+strings.TrimPrefix(srv.URL, "http://")+` /v1/users/u1/spends?x=1 Bearer abc application/json {"k":"v"}`, <-got)
	})
	t.Run("ErrDeadline", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		c, err := newWireClient(srv.URL, 1)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = send(ctx, c, "GET", "/slow", "", nil)
		require.Error(t, err)
		require.Less(t, time.Since(start), 5*time.Second)
		require.ErrorIs(t, err, errCutShort, "the load does not count it")
		require.Empty(t, c.idle, "a connection cut short is not kept")
	})
	t.Run("ErrCanceled", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		c, err := newWireClient(srv.URL, 1)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err = send(ctx, c, "GET", "/slow", "", nil)
		require.Error(t, err)
		require.Less(t, time.Since(start), 5*time.Second, "cancelling a context without a deadline ends the request")
	})
	t.Run("ServerClosedIdleConnection", func(t *testing.T) {
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.Config.IdleTimeout = 50 * time.Millisecond
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		defer srv.Close()
		c, err := newWireClient(srv.URL, 1)
		require.NoError(t, err)
		for range 3 {
			status, err := send(context.Background(), c, "GET", "/", "", nil)
			require.NoError(t, err, "a kept connection the server closed is replaced, not a failure")
			require.Equal(t, http.StatusOK, status)
			time.Sleep(200 * time.Millisecond)
		}
		require.EqualValues(t, 3, conns.Load())
	})
	t.Run("PathPrefix", func(t *testing.T) {
		got := make(chan string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.URL.Path }))
		defer srv.Close()
		c, err := newWireClient(srv.URL+"/creditsd/", 1)
		require.NoError(t, err)
		_, err = send(context.Background(), c, "GET", "/v1/me/entitlement", "", nil)
		require.NoError(t, err)
		require.Equal(t, "/creditsd/v1/me/entitlement", <-got)
	})
	t.Run("ErrRefusedIsNotTheRunsEnd", func(t *testing.T) {
		c, err := newWireClient("http://127.0.0.1:1", 1) // nothing listens on port 1
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err = send(ctx, c, "GET", "/", "", nil)
		require.Error(t, err)
		require.NotErrorIs(t, err, errCutShort, "a failure inside the run is counted")
	})
	t.Run("DefaultPorts", func(t *testing.T) {
		for base, addr := range map[string]string{"http://example.test": "example.test:80",
			"https://example.test/x": "example.test:443", "http://127.0.0.1:8080": "127.0.0.1:8080"} {
			c, err := newWireClient(base, 1)
			require.NoError(t, err)
			require.Equal(t, addr, c.addr, base)
			require.Equal(t, base[:5] == "https", c.tls != nil, base)
		}
	})
	t.Run("ErrScheme", func(t *testing.T) {
		_, err := newWireClient("ftp://127.0.0.1:1", 1)
		require.ErrorContains(t, err, "http://")
	})
}

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		status    int
		keep      bool
		err       string
		rest      string // what is left to read after the response
	}{
		{name: "ContentLength", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcNEXT", status: 200, keep: true, rest: "NEXT"},
		{name: "Chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nNEXT",
			status: 200, keep: true, rest: "NEXT"},
		{name: "NoContent", raw: "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nNEXT", status: 204, keep: true, rest: "NEXT"},
		{name: "HTTP10", raw: "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", status: 404, keep: false},
		{name: "Close", raw: "HTTP/1.1 500 x\r\nconnection: Close\r\ncontent-length: 1\r\n\r\nz", status: 500, keep: false},
		{name: "ToEOF", raw: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, keep: false},
		{name: "ErrStatusLine", raw: "SPDY/3 200 OK\r\n\r\n", err: "status line"},
		{name: "ErrStatusCode", raw: "HTTP/1.1 2x0 OK\r\n\r\n", err: "status line"},
		{name: "ErrHeader", raw: "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", status: 200, err: "header"},
		{name: "ErrLength", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", status: 200, err: "Content-Length"},
		{name: "ErrChunkSize", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 200, err: "chunk size"},
		{name: "ErrChunkEnd", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", status: 200, err: "CRLF"},
		{name: "ErrTruncated", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", status: 200, err: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.raw))
			status, keep, err := readResponse(r)
			require.Equal(t, tc.status, status)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.False(t, keep)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.keep, keep)
			rest, _ := io.ReadAll(r)
			require.Equal(t, tc.rest, string(rest))
		})
	}
}
