package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
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
