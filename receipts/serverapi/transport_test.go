package serverapi

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"99999999999", 24 * time.Hour}, // capped, no overflow
		// Apple's form: a UNIX time in milliseconds.
		{strconv.FormatInt(now.Add(2500*time.Millisecond).UnixMilli(), 10), 2500 * time.Millisecond},
		{strconv.FormatInt(now.Add(-time.Second).UnixMilli(), 10), 0},
		{strconv.FormatInt(now.Add(72*time.Hour).UnixMilli(), 10), 24 * time.Hour},
		{"9223372036854775807", 24 * time.Hour},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		require.Equal(t, tc.want, parseRetryAfter(tc.header, now), "Retry-After %q", tc.header)
	}
}

// Backoff doubles from RetryBackoff, stays in its upper half (jitter),
// and is capped.
func TestBackoff(t *testing.T) {
	c := &Client{cfg: Config{RetryBackoff: 100 * time.Millisecond}}
	for n, want := range []time.Duration{100, 200, 400, 800} {
		want *= time.Millisecond
		for range 20 {
			d := c.backoff(n)
			require.GreaterOrEqual(t, d, want/2)
			require.LessOrEqual(t, d, want)
		}
	}
	require.LessOrEqual(t, c.backoff(40), maxBackoff)
	require.GreaterOrEqual(t, c.backoff(40), maxBackoff/2)
}
