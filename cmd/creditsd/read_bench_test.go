package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// BenchmarkEntitlementRequest is the app's read, GET /v1/me/entitlement,
// through the router as serve wires it: the middleware, the bearer token,
// the user's state on a read connection and the JSON answer, for users of
// ten lots each on a temp database. It leaves out the socket and
// net/http's reading of the connection and writing of the answer, which
// over HTTP about double a read's CPU (BENCHMARKS.md, session 18).
func BenchmarkEntitlementRequest(b *testing.B) {
	const users, lots = 200, 10
	h, bearers := readBench(b, users, lots)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest("GET", "/v1/me/entitlement", nil)
		req.Header.Set("Authorization", "Bearer "+bearers[i%users])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("read: %d %s", rec.Code, rec.Body)
		}
	}
}

// readBench opens the app on a temp database, grants each of users its
// lots through the admin API and returns the router and each user's token.
func readBench(b *testing.B, users, lots int) (http.Handler, []string) {
	_, config := writeConfig(b, newCA(b), "")
	a, err := openApp(context.Background(), config, func(string) string { return "" }, io.Discard)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, a.close()) })
	h := a.routes()
	admin := "Bearer " + mintHS256(b, e2eSecret, "generation-backend", entitlements.ScopeAdmin, time.Hour)
	bearers := make([]string, users)
	for u := range bearers {
		user := fmt.Sprintf("user-%04d", u)
		for l := range lots {
			body := fmt.Sprintf(`{"idempotency_key":"g%d","credits":%d,"reason":"bench"}`, l, l+1)
			req := httptest.NewRequest("POST", "/v1/users/"+user+"/grants", strings.NewReader(body))
			req.Header.Set("Authorization", admin)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Less(b, rec.Code, 300, rec.Body.String())
		}
		bearers[u] = mintHS256(b, e2eSecret, user, "", time.Hour)
	}
	return h, bearers
}
