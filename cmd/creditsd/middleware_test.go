package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecoverPanicsLetsAbortsThrough: http.ErrAbortHandler, also wrapped
// (the store raises a transaction's panic again wrapped, with its stack),
// still aborts the response as net/http means it to; any other panic is a
// 500 problem.
func TestRecoverPanicsLetsAbortsThrough(t *testing.T) {
	serve := func(v any) *httptest.ResponseRecorder {
		h := recoverPanics(slog.New(slog.DiscardHandler), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(v) }))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec
	}
	for _, v := range []any{http.ErrAbortHandler, fmt.Errorf("sqlite: a transaction panicked: %w", http.ErrAbortHandler)} {
		require.PanicsWithValue(t, http.ErrAbortHandler, func() { serve(v) })
	}
	rec := serve("a bug")
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Contains(t, rec.Body.String(), `"code":"internal"`)
}

// A panic's answer, byte for byte, and one log line for it: the panic
// with its value, not a second "request failed".
func TestRecoverPanicsAnswer(t *testing.T) {
	var logs strings.Builder
	h := recoverPanics(slog.New(slog.NewTextHandler(&logs, nil)), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("a bug") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	require.Equal(t, `{"type":"urn:creditsd:problem:internal","title":"Internal Server Error","status":500,`+
		`"detail":"the service could not complete the request; it was logged","code":"internal"}`+"\n", rec.Body.String())
	require.Equal(t, 1, strings.Count(logs.String(), "\n"), logs.String())
	require.Contains(t, logs.String(), `msg="handler panicked"`)
	require.Contains(t, logs.String(), `panic="a bug"`)
}
