package entitlements

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

// stalledApple is a ReceiptLookup whose App Store never answers: it waits
// for the lookup's context to end, as a client sleeping through retries does.
type stalledApple struct{}

func (stalledApple) SignedTransaction(ctx context.Context, _ string) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// appleAnswers is a ReceiptLookup answering from a map: a signed
// transaction, or an error, by transaction id.
type appleAnswers map[string]any

func (a appleAnswers) SignedTransaction(_ context.Context, id string) (string, error) {
	switch v := a[id].(type) {
	case string:
		return v, nil
	case error:
		return "", v
	}
	return "", ErrUnknownTransaction
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
	w := postReceipt(t, h, "alice", fakeappstore.AppReceipt(t, "1"), 5*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"app_store_unavailable"`)
}

// Every purchase of a receipt is fetched before any is claimed: an App
// Store that fails on one is a 503 for the receipt, with nothing claimed
// (the handler has no Store nor Verifier here to claim with), and the app's
// next try claims them all.
func TestPostTransactionReceiptFetchesAllFirst(t *testing.T) {
	h := &Handler{Log: slog.New(slog.DiscardHandler), Receipts: appleAnswers{
		"2": "a signed transaction", "1": errors.New("503 from Apple, after the client's retries"),
	}}
	now := time.Now()
	receipt := fakeappstore.AppReceiptOf(t, fakeappstore.InApp{TransactionID: "1", Purchased: now.Add(-time.Hour)},
		fakeappstore.InApp{TransactionID: "2", Purchased: now})
	w := postReceipt(t, h, "alice", receipt, 5*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"app_store_unavailable"`)
}

// slowApple is a ReceiptLookup that takes d to say it knows no such
// transaction, or gives up when the lookup's context ends.
type slowApple time.Duration

func (d slowApple) SignedTransaction(ctx context.Context, _ string) (string, error) {
	select {
	case <-time.After(time.Duration(d)):
		return "", ErrUnknownTransaction
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// slowReader gives its body after a pause, as a slow upload does.
type slowReader struct {
	pause time.Duration
	body  *strings.Reader
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.pause)
	r.pause = 0
	return r.body.Read(p)
}

// The receipt's time at Apple counts from the request's arrival, as the
// server's write timeout does: a body that took most of it to arrive
// leaves the lookup only the rest. Counted from after the body, the
// answer could come after the server had stopped waiting to write it.
func TestPostTransactionReceiptTimeoutFromArrival(t *testing.T) {
	h := &Handler{Receipts: slowApple(60 * time.Millisecond), ReceiptTimeout: 100 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)}
	body, err := json.Marshal(map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "1")})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/v1/me/transactions",
		&slowReader{pause: 70 * time.Millisecond, body: strings.NewReader(string(body))})
	r = r.WithContext(WithCaller(r.Context(), NewCaller("alice", "")))
	w := httptest.NewRecorder()
	h.PostTransaction(w, r)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
}

// A receipt's purchases are asked for a few at a time: ten, one after
// another, did not fit in the lookup's time where Apple is slow.
func TestPostTransactionReceiptFetchesAFewAtATime(t *testing.T) {
	h := &Handler{Receipts: slowApple(50 * time.Millisecond), ReceiptTimeout: 400 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)}
	var inApps []fakeappstore.InApp
	for i := range 10 {
		inApps = append(inApps, fakeappstore.InApp{TransactionID: string(rune('a' + i)), Purchased: time.Now().Add(-time.Duration(i) * time.Hour)})
	}
	w := postReceipt(t, h, "alice", fakeappstore.AppReceiptOf(t, inApps...), 5*time.Second)
	require.Equal(t, http.StatusUnprocessableEntity, w.Code, "every purchase unknown, in time: %s", w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"unknown_transaction"`)
}

// countingApple is a ReceiptLookup that fails every call, and counts them.
type countingApple struct{ calls atomic.Int32 }

func (a *countingApple) SignedTransaction(context.Context, string) (string, error) {
	a.calls.Add(1)
	time.Sleep(10 * time.Millisecond)
	return "", errors.New("401 from Apple")
}

// Once one purchase's fetch has failed, the receipt is a 503 and nothing
// more is asked of the App Store: asked all at once, a receipt of ten cost
// ten failing calls (each retried by the client) where one told enough.
func TestPostTransactionReceiptStopsAtAFailure(t *testing.T) {
	apple := &countingApple{}
	h := &Handler{Receipts: apple, ReceiptTimeout: time.Second, Log: slog.New(slog.DiscardHandler)}
	var inApps []fakeappstore.InApp
	for i := range 10 {
		inApps = append(inApps, fakeappstore.InApp{TransactionID: string(rune('a' + i)), Purchased: time.Now().Add(-time.Duration(i) * time.Hour)})
	}
	w := postReceipt(t, h, "alice", fakeappstore.AppReceiptOf(t, inApps...), 5*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.LessOrEqual(t, apple.calls.Load(), int32(fetchAtOnce), "those already asked, and no more")
}

// oneBadApple fails one id with its own error; the others wait for the
// lookup to end, as a call cancelled midway does.
type oneBadApple struct{ bad string }

func (a oneBadApple) SignedTransaction(ctx context.Context, id string) (string, error) {
	if id == a.bad {
		return "", errors.New("401 from Apple: bad key")
	}
	<-ctx.Done()
	return "", ctx.Err()
}

// The log names the failure that made the receipt a 503, not the
// cancellation it caused in the other fetches: it said "context canceled"
// of whichever purchase came first in the receipt, and never the 401.
func TestPostTransactionReceiptLogsTheFailure(t *testing.T) {
	var log strings.Builder
	h := &Handler{Receipts: oneBadApple{bad: "c"}, ReceiptTimeout: time.Second,
		Log: slog.New(slog.NewTextHandler(&log, nil))}
	var inApps []fakeappstore.InApp
	for i := range 3 {
		inApps = append(inApps, fakeappstore.InApp{TransactionID: string(rune('a' + i)), Purchased: time.Now().Add(-time.Duration(i) * time.Hour)})
	}
	w := postReceipt(t, h, "alice", fakeappstore.AppReceiptOf(t, inApps...), 5*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Contains(t, log.String(), "transaction c: 401 from Apple: bad key")
}
