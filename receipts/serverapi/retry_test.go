package serverapi_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/stretchr/testify/require"
)

// A 429 waits what Retry-After says (Apple's UNIX time in milliseconds,
// or HTTP's seconds or date), then retries and succeeds.
func TestRetryAfter429(t *testing.T) {
	for name, tc := range map[string]struct {
		header   func() string
		min, max time.Duration
	}{
		"Seconds": {func() string { return "1" }, time.Second, time.Second},
		// Apple's form. It was read as seconds, capped to a day and handed
		// back at once, so the consumption job put its answer off past
		// Apple's deadline.
		"UnixMillis": {func() string { return strconv.FormatInt(time.Now().Add(3*time.Second).UnixMilli(), 10) }, 2 * time.Second, 3 * time.Second},
		// HTTP dates have whole seconds, so the wait is a little under 8 s.
		"HTTPDate": {func() string { return time.Now().Add(8 * time.Second).UTC().Format(http.TimeFormat) }, 6 * time.Second, 8 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.addPurchase(receipts.Production, "1")
			c := w.client(t, nil)
			w.apple.FailNext(http.StatusTooManyRequests, tc.header())
			_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
			require.NoError(t, err)
			require.Len(t, w.sleeps, 1)
			require.GreaterOrEqual(t, w.sleeps[0], tc.min)
			require.LessOrEqual(t, w.sleeps[0], tc.max)
			require.Equal(t, 2, w.apple.Requests())
		})
	}
}

// Past MaxRetries, the 429 comes back with its RetryAfter for the caller.
func TestRetry429Exhausted(t *testing.T) {
	w := newWorld(t)
	w.addPurchase(receipts.Production, "1")
	c := w.client(t, func(c *serverapi.Config) { c.MaxRetries = 2 })
	for range 3 {
		w.apple.FailNext(http.StatusTooManyRequests, "1")
	}
	_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
	var e *serverapi.APIError
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusTooManyRequests, e.Status)
	require.Equal(t, serverapi.CodeRateLimitExceeded, e.Code)
	require.Equal(t, time.Second, e.RetryAfter)
	require.True(t, e.Retryable())
	require.Equal(t, 3, w.apple.Requests(), "1 try + MaxRetries")
}

// A Retry-After too long to wait inside a call is handed back at once.
func TestRetry429TooLong(t *testing.T) {
	w := newWorld(t)
	c := w.client(t, nil)
	w.apple.FailNext(http.StatusTooManyRequests, "3600")
	_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
	var e *serverapi.APIError
	require.ErrorAs(t, err, &e)
	require.Equal(t, time.Hour, e.RetryAfter)
	require.Equal(t, 1, w.apple.Requests())
	require.Empty(t, w.sleeps)
}

// A wait that would end past the context's deadline is not begun: the 429
// comes back at once, so that a request with a budget still has the time
// to answer. (The audit's case: two 429s of 16 s under a 20 s budget slept
// through the budget, and the server's write timeout, before giving up.)
func TestRetryWaitFitsTheDeadline(t *testing.T) {
	var e *serverapi.APIError
	t.Run("RetryAfter", func(t *testing.T) {
		w := newWorld(t)
		w.addPurchase(receipts.Production, "1")
		start := time.Now()
		c := w.client(t, func(c *serverapi.Config) { c.Now = func() time.Time { return start.Add(w.slept()) } })
		w.apple.FailNext(http.StatusTooManyRequests, "16")
		w.apple.FailNext(http.StatusTooManyRequests, "16")
		ctx, cancel := context.WithDeadline(t.Context(), start.Add(20*time.Second))
		defer cancel()
		_, err := c.GetTransactionInfo(ctx, receipts.Production, "1")
		require.ErrorAs(t, err, &e)
		require.Equal(t, http.StatusTooManyRequests, e.Status)
		require.Equal(t, 16*time.Second, e.RetryAfter)
		require.Equal(t, []time.Duration{16 * time.Second}, w.sleeps, "the first fits in 20 s, the second not in the 4 s left")
		require.Equal(t, 2, w.apple.Requests())
	})
	t.Run("Backoff", func(t *testing.T) {
		w := newWorld(t)
		c := w.client(t, func(c *serverapi.Config) { c.RetryBackoff = time.Second })
		w.apple.FailNext(http.StatusInternalServerError, "")
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := c.GetTransactionInfo(ctx, receipts.Production, "1")
		require.ErrorAs(t, err, &e)
		require.Equal(t, http.StatusInternalServerError, e.Status)
		require.Empty(t, w.sleeps, "a backoff of 0.5-1 s does not fit in 0.1 s")
		require.Equal(t, 1, w.apple.Requests())
	})
}

// 5xx are retried with growing, jittered waits; other errors are not.
func TestRetry5xx(t *testing.T) {
	t.Run("ThenSucceeds", func(t *testing.T) {
		w := newWorld(t)
		w.addPurchase(receipts.Production, "1")
		c := w.client(t, func(c *serverapi.Config) { c.RetryBackoff = 100 * time.Millisecond })
		w.apple.FailNext(http.StatusServiceUnavailable, "")
		w.apple.FailNext(http.StatusInternalServerError, "")
		_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
		require.NoError(t, err)
		require.Equal(t, 3, w.apple.Requests())
		require.Len(t, w.sleeps, 2)
		require.InDelta(t, 75*time.Millisecond, w.sleeps[0], float64(25*time.Millisecond)) // 50-100 ms
		require.InDelta(t, 150*time.Millisecond, w.sleeps[1], float64(50*time.Millisecond))
	})
	t.Run("Exhausted", func(t *testing.T) {
		w := newWorld(t)
		c := w.client(t, nil)
		for range 4 {
			w.apple.FailNext(http.StatusBadGateway, "")
		}
		_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
		var e *serverapi.APIError
		require.ErrorAs(t, err, &e)
		require.Equal(t, http.StatusBadGateway, e.Status)
		require.Equal(t, 4, w.apple.Requests())
	})
	t.Run("NotRetried", func(t *testing.T) {
		for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound} {
			w := newWorld(t)
			c := w.client(t, nil)
			w.apple.FailNext(status, "1")
			_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
			require.Error(t, err)
			require.Equal(t, 1, w.apple.Requests(), "status %d", status)
		}
	})
	t.Run("RetriesOff", func(t *testing.T) {
		w := newWorld(t)
		c := w.client(t, func(c *serverapi.Config) { c.MaxRetries = -1 })
		w.apple.FailNext(http.StatusServiceUnavailable, "")
		_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
		require.Error(t, err)
		require.Equal(t, 1, w.apple.Requests())
	})
}

// Transport errors (nothing listening) are retried too.
func TestRetryTransportError(t *testing.T) {
	w := newWorld(t)
	c := w.client(t, func(c *serverapi.Config) { c.ProductionURL = "http://127.0.0.1:1" })
	_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
	require.ErrorContains(t, err, "/inApps/v1/transactions/1")
	require.Len(t, w.sleeps, 3)
}

// Cancelling the context ends a real retry wait promptly.
func TestRetryWaitRespectsContext(t *testing.T) {
	w := newWorld(t)
	cfg := w.apple.ClientConfig(w.key) // the real sleep
	c, err := serverapi.New(cfg)
	require.NoError(t, err)
	w.apple.FailNext(http.StatusTooManyRequests, "20")

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.GetTransactionInfo(ctx, receipts.Production, "1")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "Rate limit exceeded", "the last answer is kept for the log")
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, 1, w.apple.Requests())
}
