package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// /readyz answers 503 not_ready, byte for byte, when the database does not
// answer.
func TestReadyzNotReady(t *testing.T) {
	_, config := writeConfig(t, newCA(t), "")
	a, err := openApp(context.Background(), config, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.NoError(t, a.close()) // a closed database does not answer a ping
	rec := httptest.NewRecorder()
	a.readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	require.Equal(t, `{"type":"urn:creditsd:problem:not_ready","title":"Service Unavailable","status":503,`+
		`"detail":"the database does not answer, or this binary may not write to it (see the log)","code":"not_ready"}`+"\n",
		rec.Body.String())
}

// /readyz asked by a client that hangs up before the ping answers is not a
// readiness failure: no 503 to count, no warning to log (an audit raised
// 179 "not ready" warnings by closing 300 connections at once).
func TestReadyzClientGone(t *testing.T) {
	_, config := writeConfig(t, newCA(t), "")
	var logged bytes.Buffer
	a, err := openApp(context.Background(), config, func(string) string { return "" }, &logged)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.close()) })
	logged.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	a.readyz(rec, httptest.NewRequest("GET", "/readyz", nil).WithContext(ctx))
	require.Equal(t, entitlements.StatusClientClosedRequest, rec.Code)
	require.Empty(t, logged.String())

	rec = httptest.NewRecorder()
	a.readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, http.StatusOK, rec.Code, "a client that waits is told the truth")
}
