package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
