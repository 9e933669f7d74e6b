package serverapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/stretchr/testify/require"
)

// answering is a Client whose Production URL is h; it records nothing but
// what h does.
func (w *world) answering(t *testing.T, h http.HandlerFunc) *serverapi.Client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return w.client(t, func(c *serverapi.Config) { c.ProductionURL = srv.URL })
}

// A 2xx that is not Apple's answer is an error, never an empty or unsigned
// transaction handed on as if Apple had sent it.
func TestGetTransactionInfoOddAnswers(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"no signedTransactionInfo": func(rw http.ResponseWriter, _ *http.Request) { _, _ = rw.Write([]byte(`{}`)) },
		"3xx not followed": func(rw http.ResponseWriter, _ *http.Request) {
			rw.WriteHeader(http.StatusMultipleChoices)
			_, _ = rw.Write([]byte(`{"signedTransactionInfo":"a.b.c"}`))
		},
		"answer over the size bound": func(rw http.ResponseWriter, _ *http.Request) {
			_, _ = rw.Write([]byte(`{"signedTransactionInfo":"a.b.c"}` + strings.Repeat(" ", 5<<20)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			signed, err := w.answering(t, h).GetTransactionInfo(t.Context(), receipts.Production, "1")
			require.Error(t, err)
			require.Empty(t, signed)
		})
	}
}

// A 429 without Retry-After still waits (the backoff) before retrying.
func TestRetry429WithoutRetryAfterBacksOff(t *testing.T) {
	w := newWorld(t)
	w.addPurchase(receipts.Production, "1")
	c := w.client(t, nil)
	w.apple.FailNext(http.StatusTooManyRequests, "")
	_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
	require.NoError(t, err)
	require.Len(t, w.sleeps, 1)
	require.Positive(t, w.sleeps[0])
}

// Requests with a body say it is JSON.
func TestRequestBodyContentType(t *testing.T) {
	w := newWorld(t)
	var got string
	c := w.answering(t, func(rw http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Content-Type")
		_, _ = rw.Write([]byte(`{"notificationHistory":[],"hasMore":false}`))
	})
	_, err := c.GetNotificationHistory(t.Context(), receipts.Production, serverapi.NotificationHistoryRequest{StartDate: 1, EndDate: 2}, "")
	require.NoError(t, err)
	require.Equal(t, "application/json", got)
}

// Every endpoint that puts the transaction id in its path checks it first.
func TestSendConsumptionInfoChecksTransactionID(t *testing.T) {
	w := newWorld(t)
	c := w.client(t, nil)
	info := serverapi.ConsumptionInfo{CustomerConsented: true, DeliveryStatus: serverapi.DeliveryDelivered, ConsumptionPercentage: serverapi.Percent(0)}
	for _, id := range []string{"../../v1/notifications/test", strings.Repeat("1", 65)} {
		err := c.SendConsumptionInfo(t.Context(), receipts.Production, id, info)
		require.ErrorIs(t, err, serverapi.ErrInvalidRequest)
		_, err = c.GetTransactionInfo(t.Context(), receipts.Production, id)
		require.ErrorIs(t, err, serverapi.ErrInvalidRequest)
	}
	require.Zero(t, w.apple.Requests())
}

// Apple's errorMessage is cut to a bound, never inside a rune.
func TestAPIErrorMessageTruncatedOnRune(t *testing.T) {
	w := newWorld(t)
	msg := strings.Repeat("a", 299) + "é" + strings.Repeat("b", 50)
	c := w.answering(t, func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusBadRequest)
		_, _ = rw.Write([]byte(`{"errorCode":4000000,"errorMessage":"` + msg + `"}`))
	})
	_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
	var e *serverapi.APIError
	require.True(t, errors.As(err, &e), "%v", err)
	require.True(t, strings.HasPrefix(e.Message, strings.Repeat("a", 299)))
	require.NotContains(t, e.Message, "\xc3")
}

func TestAPIErrorRetryable500(t *testing.T) {
	require.True(t, (&serverapi.APIError{Status: http.StatusInternalServerError}).Retryable())
	require.False(t, (&serverapi.APIError{Status: http.StatusBadRequest}).Retryable())
	require.False(t, (&serverapi.APIError{Status: http.StatusBadRequest, Code: serverapi.CodeAppNotFoundRetryable}).Retryable(),
		"Apple's retryable codes are 404s")
}

// A deliveryStatus that is not one of Apple's is refused before any request.
func TestSendConsumptionInfoUnknownDeliveryStatus(t *testing.T) {
	w := newWorld(t)
	c := w.client(t, nil)
	err := c.SendConsumptionInfo(t.Context(), receipts.Production, "1",
		serverapi.ConsumptionInfo{CustomerConsented: true, DeliveryStatus: "SHIPPED"})
	require.ErrorIs(t, err, serverapi.ErrInvalidRequest)
	require.Zero(t, w.apple.Requests())
}

// Only Apple's TransactionIdNotFoundError says Apple knows no such
// transaction. Every 404 was read so, and a base URL with a wrong path
// made each StoreKit 1 receipt a final 422 and each consumption answer
// rejected for good. A 404 without that code is about this service's
// setup (Setup), and the three Apple calls "try again" are retried.
func TestNotFoundIsTheTransactionsOnly(t *testing.T) {
	notFound := func(body string, asked *int) http.HandlerFunc {
		return func(rw http.ResponseWriter, _ *http.Request) {
			*asked++
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusNotFound)
			_, _ = rw.Write([]byte(body))
		}
	}
	t.Run("TransactionIdNotFound", func(t *testing.T) {
		w, asked := newWorld(t), 0
		c := w.answering(t, notFound(`{"errorCode":4040010,"errorMessage":"Transaction id not found."}`, &asked))
		_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
		var e *serverapi.APIError
		require.ErrorAs(t, err, &e)
		require.ErrorIs(t, err, serverapi.ErrNotFound)
		require.False(t, e.Retryable())
		require.False(t, e.Setup())
		require.Equal(t, 1, asked)
	})
	t.Run("NoErrorCode", func(t *testing.T) {
		w, asked := newWorld(t), 0
		c := w.answering(t, notFound(`404 page not found`, &asked))
		_, err := c.FindTransactionInfo(t.Context(), []string{receipts.Production, receipts.Sandbox}, "1")
		var e *serverapi.APIError
		require.ErrorAs(t, err, &e, "Sandbox knows none, and Production could not be asked")
		require.NotErrorIs(t, err, serverapi.ErrNotFound)
		require.Equal(t, http.StatusNotFound, e.Status)
		require.True(t, e.Setup())
		require.Equal(t, 1, asked)
	})
	for _, code := range []string{"4040002", "4040004", "4040006"} {
		t.Run("Retryable"+code, func(t *testing.T) {
			w, asked := newWorld(t), 0
			c := w.answering(t, notFound(`{"errorCode":`+code+`,"errorMessage":"try again"}`, &asked))
			_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "1")
			var e *serverapi.APIError
			require.ErrorAs(t, err, &e)
			require.NotErrorIs(t, err, serverapi.ErrNotFound)
			require.True(t, e.Retryable())
			require.Equal(t, 4, asked, "the first try and three retries")
		})
	}
}
