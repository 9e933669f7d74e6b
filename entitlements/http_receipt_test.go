package entitlements

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stalledApple is a ReceiptLookup whose App Store never answers: it waits
// for the lookup's context to end, as a client sleeping through retries does.
type stalledApple struct{}

func (stalledApple) SignedTransactionForReceipt(ctx context.Context, _ string) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// postReceipt sends POST /v1/me/transactions with an app receipt as user
// and fails the test if the handler takes longer than within.
func postReceipt(t *testing.T, h *Handler, user, appReceipt string, within time.Duration) *httptest.ResponseRecorder {
	t.Helper()
	body, err := json.Marshal(map[string]string{"app_receipt": appReceipt})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/v1/me/transactions", strings.NewReader(string(body)))
	r = r.WithContext(WithCaller(r.Context(), NewCaller(user, "")))
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.PostTransaction(w, r)
	}()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("no answer within %s", within)
	}
	return w
}

// An App Store that does not answer within ReceiptTimeout is answered 503
// app_store_unavailable, so that the app tries again, in time for the
// server to write it (its write timeout is cmd/creditsd's writeTimeout).
func TestPostTransactionReceiptTimeout(t *testing.T) {
	h := &Handler{Receipts: stalledApple{}, ReceiptTimeout: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	w := postReceipt(t, h, "alice", "MIIT", 5*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"app_store_unavailable"`)
}
