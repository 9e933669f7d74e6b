package entitlements

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// settledStore is a Store that holds the settled purchases it names, and
// answers every user's state as new: these tests claim nothing.
type settledStore struct {
	Store
	settled map[string]bool
}

func (settledStore) UserState(_ context.Context, userID, token, _ string) (UserState, error) {
	return UserState{UserID: userID, AppAccountToken: token, At: time.Now()}, nil
}

func (s settledStore) SettledPurchases(_ context.Context, _ string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = s.settled[id]
	}
	return out, nil
}

// postReceipt sends POST /v1/me/transactions with an app receipt as user
// and fails the test if the handler takes longer than within. A handler
// with no Store or clock gets a store that holds nothing, and time.Now.
func postReceipt(t *testing.T, h *Handler, user, appReceipt string, within time.Duration) *httptest.ResponseRecorder {
	t.Helper()
	if h.Store == nil {
		h.Store = settledStore{}
	}
	if h.Now == nil {
		h.Now = time.Now
	}
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
		Store: settledStore{}, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
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

// askedApple is a ReceiptLookup that knows no transaction, and records
// which ids it was asked about.
type askedApple struct {
	mu    sync.Mutex
	asked []string
}

func (a *askedApple) SignedTransaction(_ context.Context, id string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, id)
	return "", ErrUnknownTransaction
}

func (a *askedApple) ids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(slices.Values(a.asked))
}

// receiptOf is an app receipt of the purchases ids, the first the newest.
func receiptOf(t *testing.T, ids ...string) string {
	var inApps []fakeappstore.InApp
	for i, id := range ids {
		inApps = append(inApps, fakeappstore.InApp{TransactionID: id, Purchased: time.Now().Add(-time.Duration(i) * time.Hour)})
	}
	return fakeappstore.AppReceiptOf(t, inApps...)
}

// A purchase the caller already holds for good is not asked of Apple
// again: an app that sends its receipt at every launch asked Apple about
// every purchase in it each time. Held, they count as claimed: a receipt
// of them alone is a 200, and beside them a refused purchase is passed
// over, as a claim of theirs would have been.
func TestPostTransactionReceiptSkipsSettledPurchases(t *testing.T) {
	apple := &askedApple{}
	h := &Handler{Receipts: apple, Store: settledStore{settled: map[string]bool{"1": true, "3": true}},
		Log: slog.New(slog.DiscardHandler)}
	w := postReceipt(t, h, "alice", receiptOf(t, "3", "2", "1"), 5*time.Second)
	require.Equal(t, []string{"2"}, apple.ids(), "only the purchase not held is asked")
	require.Equal(t, http.StatusOK, w.Code, "the refusal of 2 is passed over: %s", w.Body.String())

	apple = &askedApple{}
	h.Receipts = apple
	w = postReceipt(t, h, "alice", receiptOf(t, "3", "1"), 5*time.Second)
	require.Empty(t, apple.ids())
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	apple = &askedApple{}
	h.Receipts, h.Store = apple, settledStore{}
	w = postReceipt(t, h, "alice", receiptOf(t, "3", "2", "1"), 5*time.Second)
	require.Equal(t, []string{"1", "2", "3"}, apple.ids())
	require.Equal(t, http.StatusUnprocessableEntity, w.Code, "none held, none known: %s", w.Body.String())
}

// A user's receipts may look up only so many purchases at Apple: a forged
// receipt names ten ids, each up to two calls against the rate limit
// reconcile and the consumption answers share. A receipt asks about as
// many as the budget has left, newest first (the purchase just made comes
// first); with nothing left the answer is 429 with Retry-After, and Apple
// is not asked. Settled purchases cost nothing, and another user has a
// budget of her own.
func TestPostTransactionReceiptBudget(t *testing.T) {
	apple := &askedApple{}
	h := &Handler{Receipts: apple, Store: settledStore{settled: map[string]bool{"9": true}},
		ReceiptBudget: &Budget{Burst: 3, Every: time.Hour}, Log: slog.New(slog.DiscardHandler)}
	w := postReceipt(t, h, "mallory", receiptOf(t, "1", "2"), 5*time.Second)
	require.Equal(t, http.StatusUnprocessableEntity, w.Code, w.Body.String())

	w = postReceipt(t, h, "mallory", receiptOf(t, "3", "4", "9"), 5*time.Second)
	require.Equal(t, http.StatusOK, w.Code, "the one left went to the newest, and a settled one is hers: %s", w.Body.String())
	require.Equal(t, []string{"1", "2", "3"}, apple.ids(), "4 waits for a later receipt")

	w = postReceipt(t, h, "mallory", receiptOf(t, "4", "9"), 5*time.Second)
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"too_many_receipt_lookups"`)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After in seconds")
	require.InDelta(t, time.Hour.Seconds(), retry, 5, "one more purchase is earned in an hour")
	require.Equal(t, []string{"1", "2", "3"}, apple.ids(), "Apple was not asked past the budget")

	w = postReceipt(t, h, "alice", receiptOf(t, "5", "6", "7"), 5*time.Second)
	require.Equal(t, http.StatusUnprocessableEntity, w.Code, "alice's own budget: %s", w.Body.String())
	require.Equal(t, []string{"1", "2", "3", "5", "6", "7"}, apple.ids())
}

// A receipt the budget covers only in part is not answered with the
// refusal of those it asked when none could be claimed: a purchase it left
// out may be the caller's, and the refusal is final for the receipt (the
// app may finish it). It is a 429 then, whose Retry-After is the wait for
// the whole receipt: waiting for one more, the retry spent it on the same
// newest purchase, was refused the rest again, and never got further.
func TestPostTransactionReceiptPartBudgetRefusesNothingFinal(t *testing.T) {
	apple := &askedApple{}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	h := &Handler{Receipts: apple, ReceiptBudget: &Budget{Burst: 3, Every: time.Hour},
		Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	w := postReceipt(t, h, "mallory", receiptOf(t, "1", "2"), 5*time.Second)
	require.Equal(t, http.StatusUnprocessableEntity, w.Code, w.Body.String())

	w = postReceipt(t, h, "mallory", receiptOf(t, "3", "4"), 5*time.Second)
	require.Equal(t, http.StatusTooManyRequests, w.Code, "3 refused, 4 not asked: %s", w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"too_many_receipt_lookups"`)
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.Equal(t, int((2 * time.Hour).Seconds()), retry, "the wait for both")
	require.Equal(t, []string{"1", "2", "3"}, apple.ids())

	now = now.Add(time.Duration(retry) * time.Second)
	w = postReceipt(t, h, "mallory", receiptOf(t, "3", "4"), 5*time.Second)
	require.Equal(t, http.StatusUnprocessableEntity, w.Code, "the retry, when told, asks both: %s", w.Body.String())
	require.Equal(t, []string{"1", "2", "3", "3", "4"}, apple.ids())
}

// Retry-After is the wait rounded up to the second: rounded down, the app
// came back before the budget had a purchase for it, and was refused again.
func TestPostTransactionReceiptBudgetRetryAfterRoundsUp(t *testing.T) {
	h := &Handler{Receipts: &askedApple{}, ReceiptBudget: &Budget{Burst: 1, Every: 1500 * time.Millisecond},
		Log: slog.New(slog.DiscardHandler)}
	postReceipt(t, h, "mallory", receiptOf(t, "1"), 5*time.Second)
	w := postReceipt(t, h, "mallory", receiptOf(t, "2"), 5*time.Second)
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	require.Equal(t, "2", w.Header().Get("Retry-After"))
	require.Contains(t, w.Body.String(), "try again in 2s")
}

// busyApple answers as an App Store that rate-limits with a Retry-After
// longer than the lookup could wait.
type busyApple struct{}

func (busyApple) SignedTransaction(context.Context, string) (string, error) {
	return "", &Error{Kind: KindUnavailable, Code: "app_store_unavailable", Detail: "429 from Apple", RetryAfter: 90 * time.Second}
}

// The 503 of an App Store that asked to be left alone for a while passes
// its wait on to the app as Retry-After.
func TestPostTransactionReceiptUnavailableRetryAfter(t *testing.T) {
	h := &Handler{Receipts: busyApple{}, ReceiptTimeout: time.Second, Log: slog.New(slog.DiscardHandler)}
	w := postReceipt(t, h, "alice", receiptOf(t, "1"), 5*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Equal(t, "90", w.Header().Get("Retry-After"))

	h.Receipts = &countingApple{}
	w = postReceipt(t, h, "alice", receiptOf(t, "1"), 5*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Empty(t, w.Header().Get("Retry-After"), "no wait is made up when Apple named none")
}
