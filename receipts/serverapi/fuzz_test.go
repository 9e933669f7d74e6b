package serverapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// fuzzStatuses are the statuses an answer's status byte picks from: each
// class, and the ones the client treats apart.
var fuzzStatuses = []int{200, 201, 202, 204, 299, 301, 304, 400, 401, 403, 404, 409, 429, 499, 500, 502, 503, 504, 599, 100, 0, 600, 999}

// scriptedTransport answers every request with the same status, header and
// body, and counts the requests.
type scriptedTransport struct {
	status     int
	retryAfter string
	body       []byte
	requests   int
}

func (s *scriptedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s.requests++
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if s.retryAfter != "" {
		h.Set("Retry-After", s.retryAfter)
	}
	return &http.Response{StatusCode: s.status, Header: h, Body: io.NopCloser(strings.NewReader(string(s.body))),
		ContentLength: -1, Request: req}, nil
}

// FuzzAPIResponse feeds arbitrary App Store Server API answers (status,
// Retry-After, body) to all three endpoints. Nothing may panic; a 2xx is
// either decoded or a plain error; anything else is exactly one *APIError
// carrying the status, a RetryAfter within a day, a valid UTF-8 message of
// bounded length, ErrNotFound iff 404; and retries stay within MaxRetries.
func FuzzAPIResponse(f *testing.F) {
	f.Add(byte(0), "", []byte(`{"signedTransactionInfo":"a.b.c"}`))
	f.Add(byte(0), "", []byte(`{"notificationHistory":[{"signedPayload":"a.b.c","sendAttempts":[{"attemptDate":1,"sendAttemptResult":"SUCCESS"}]}],"hasMore":true,"paginationToken":"t"}`))
	f.Add(byte(0), "", []byte(`{"signedTransactionInfo":null}`))
	f.Add(byte(0), "", []byte(`{"signedTransactionInfo":5}`))
	f.Add(byte(3), "", []byte(``))
	f.Add(byte(7), "", []byte(`{"errorCode":4000006,"errorMessage":"Invalid transaction id."}`))
	f.Add(byte(8), "", []byte(`Unauthenticated`))
	f.Add(byte(10), "", []byte(`{"errorCode":4040010,"errorMessage":"Transaction id not found."}`))
	f.Add(byte(12), "1", []byte(`{"errorCode":4290000,"errorMessage":"Rate limit exceeded."}`))
	f.Add(byte(12), "1767323045000", []byte(`{}`))
	f.Add(byte(12), "Fri, 02 Jan 2026 03:04:05 GMT", []byte(`{}`))
	f.Add(byte(12), "9223372036854775807", []byte(`{}`))
	f.Add(byte(14), "", []byte(`{"errorCode":5000000,"errorMessage":"`+strings.Repeat("é", 200)+`"}`))
	f.Add(byte(14), "", []byte("{\"errorCode\":1e400,\"errorMessage\":\"\xff\xfe\"}"))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	key := testKey(f)
	f.Fuzz(func(t *testing.T, statusByte byte, retryAfter string, body []byte) {
		status := fuzzStatuses[int(statusByte)%len(fuzzStatuses)]
		if status < 100 || status > 999 {
			t.Skip("net/http never returns such a status")
		}
		tr := &scriptedTransport{status: status, retryAfter: retryAfter, body: body}
		cfg := Config{KeyID: "KEY123", IssuerID: "issuer", BundleID: "com.example.credits", PrivateKey: key,
			HTTPClient: &http.Client{Transport: tr}, Now: func() time.Time { return now }, MaxRetries: 2,
			sleep: func(context.Context, time.Duration) error { return nil }}
		c, err := New(cfg)
		require.NoError(t, err)
		ctx := context.Background()
		check := func(what string, err error) {
			t.Helper()
			require.LessOrEqual(t, tr.requests, 3, "%s: %d requests", what, tr.requests)
			tr.requests = 0
			var apiErr *APIError
			isAPI := errors.As(err, &apiErr)
			switch {
			case status >= 200 && status < 300:
				require.False(t, isAPI, "%s: a %d is no APIError: %v", what, status, err)
				return
			case !isAPI:
				t.Fatalf("%s: status %d gave %v, not an *APIError", what, status, err)
			}
			require.Equal(t, status, apiErr.Status, what)
			require.Equal(t, status == http.StatusNotFound && apiErr.Code == CodeTransactionIDNotFound, errors.Is(err, ErrNotFound), what)
			require.GreaterOrEqual(t, apiErr.RetryAfter, time.Duration(0), what)
			require.LessOrEqual(t, apiErr.RetryAfter, 24*time.Hour, what)
			if status != http.StatusTooManyRequests {
				require.Zero(t, apiErr.RetryAfter, what)
			}
			require.True(t, utf8.ValidString(apiErr.Message), "%s: message %q", what, apiErr.Message)
			if status != http.StatusUnauthorized {
				require.LessOrEqual(t, len(apiErr.Message), maxMessage+len("…"), what)
			}
			require.NotEmpty(t, apiErr.Error())
		}

		signed, err := c.GetTransactionInfo(ctx, "Production", "2000000000000001")
		check("GetTransactionInfo", err)
		if err == nil {
			require.NotEmpty(t, signed)
		}

		page, err := c.GetNotificationHistory(ctx, "Sandbox", NotificationHistoryRequest{StartDate: 1, EndDate: 2}, "tok")
		check("GetNotificationHistory", err)
		if err == nil {
			require.NotNil(t, page)
		} else {
			require.Nil(t, page)
		}

		err = c.SendConsumptionInfo(ctx, "Production", "2000000000000001",
			ConsumptionInfo{CustomerConsented: true, DeliveryStatus: DeliveryDelivered, ConsumptionPercentage: Percent(0)})
		check("SendConsumptionInfo", err)
		if status >= 200 && status < 300 && len(body) <= responseLimit {
			require.NoError(t, err, "SendConsumptionInfo ignores a 2xx body")
		}
	})
}

// FuzzRetryAfter: any header, at any now, is a wait from 0 to a day.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", " 120 ", "-5", "99999999999", "1767323045000", "9223372036854775807",
		"-9223372036854775808", "Fri, 02 Jan 2026 03:04:05 GMT", "Monday, 02-Jan-06 15:04:05 MST", "Mon Jan  2 15:04:05 2006", "soon"} {
		f.Add(s, int64(1767323045))
	}
	f.Fuzz(func(t *testing.T, h string, nowSec int64) {
		d := parseRetryAfter(h, time.Unix(nowSec, 0))
		require.GreaterOrEqual(t, d, time.Duration(0), "%q", h)
		require.LessOrEqual(t, d, 24*time.Hour, "%q", h)
	})
}

// FuzzTruncate: Apple's errorMessage is cut to at most maxMessage bytes
// (plus the ellipsis), never mid-rune, and is left alone when short.
func FuzzTruncate(f *testing.F) {
	for _, s := range []string{"", " x ", strings.Repeat("é", 200), strings.Repeat("a", 299) + "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := truncate(s)
		trimmed := strings.TrimSpace(s)
		if len(trimmed) <= maxMessage {
			require.Equal(t, trimmed, got)
			return
		}
		require.LessOrEqual(t, len(got), maxMessage+len("…"))
		if utf8.ValidString(s) {
			require.True(t, utf8.ValidString(got), "%q", got)
			require.True(t, strings.HasPrefix(trimmed, strings.TrimSuffix(got, "…")), "%q", got)
		}
	})
}
