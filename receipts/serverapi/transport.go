package serverapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// responseLimit bounds a 2xx body; a history page (20 notifications)
	// is a few hundred KiB.
	responseLimit = 4 << 20
	errorLimit    = 64 << 10
	// maxRetryAfter is the longest 429 wait done inside one call. Longer
	// ones go back to the caller as an APIError with RetryAfter, so a job
	// can reschedule instead of holding a request open.
	maxRetryAfter = 30 * time.Second
	maxBackoff    = 10 * time.Second
	maxMessage    = 300
)

// call sends one API request and decodes a 2xx JSON answer into out (when
// non-nil), retrying 429s, 5xx and transport errors up to MaxRetries, and
// only while the wait fits before ctx's deadline. All three endpoints are
// safe to repeat: two reads and an idempotent PUT.
func (c *Client) call(ctx context.Context, method, url string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("serverapi: encoding request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		wait, retry, err := c.attempt(ctx, method, url, payload, out, attempt)
		if !retry || attempt >= c.cfg.MaxRetries || !c.fits(ctx, wait) {
			return err
		}
		if serr := c.cfg.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("serverapi: stopped waiting to retry (%v): %w", err, serr)
		}
	}
}

// fits says whether a retry after wait can still begin before ctx's
// deadline. One that cannot is not waited for: the caller (a request with a
// budget under the server's write timeout) gets Apple's answer at once and
// can still say "try again", where sleeping would only end in the
// deadline's error, too late for the answer to be written.
func (c *Client) fits(ctx context.Context, wait time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || wait < deadline.Sub(c.cfg.Now())
}

// attempt makes one request; retry says whether err is worth another try
// after wait.
func (c *Client) attempt(ctx context.Context, method, url string, payload []byte, out any, n int) (wait time.Duration, retry bool, err error) {
	token, err := c.tokens.get()
	if err != nil {
		return 0, false, err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(payload))
	if err != nil {
		return 0, false, fmt.Errorf("serverapi: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, false, fmt.Errorf("serverapi: %s %s: %w", method, req.URL.Path, ctx.Err())
		}
		return c.backoff(n), true, fmt.Errorf("serverapi: %s %s: %w", method, req.URL.Path, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorLimit)) // lets the connection be reused
		resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, false, decode(resp.Body, out)
	}
	e := c.apiError(resp)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		wait = e.RetryAfter
		if wait == 0 {
			wait = c.backoff(n)
		}
		return wait, wait <= maxRetryAfter, e
	case e.Retryable():
		return c.backoff(n), true, e
	}
	return 0, false, e
}

func decode(body io.Reader, out any) error {
	b, err := io.ReadAll(io.LimitReader(body, responseLimit+1))
	if err != nil {
		return fmt.Errorf("serverapi: reading answer: %w", err)
	}
	if len(b) > responseLimit {
		return fmt.Errorf("serverapi: answer is larger than %d bytes", responseLimit)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("serverapi: answer is not the expected JSON: %w", err)
	}
	return nil
}

// apiError reads Apple's {"errorCode", "errorMessage"} when the body has
// it; a body that is not JSON (Apple's 401 is plain text) is ignored.
func (c *Client) apiError(resp *http.Response) *APIError {
	var body struct {
		ErrorCode    int64  `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, errorLimit))
	_ = json.Unmarshal(b, &body)
	e := &APIError{Status: resp.StatusCode, Code: body.ErrorCode, Message: truncate(body.ErrorMessage)}
	if resp.StatusCode == http.StatusUnauthorized {
		e.Message = fmt.Sprintf(unauthorizedHint, c.cfg.BundleID) + appleSaid(e.Message)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())
	}
	return e
}

func appleSaid(msg string) string {
	if msg == "" {
		return ""
	}
	return " (Apple: " + msg + ")"
}

func truncate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxMessage {
		return strings.ToValidUTF8(s[:maxMessage], "") + "…" // never half a rune
	}
	return s
}

// parseRetryAfter reads a 429's Retry-After: 0 when absent, unreadable or
// already past, and at most a day. Apple's App Store Server API sends "a
// UNIX time, in milliseconds" ("Identifying rate limits"), not HTTP's
// delay-seconds; read as seconds, that is 56,000 years, so one 429 put a
// consumption answer off past its deadline. HTTP's two forms (RFC 9110
// 10.2.3: delay-seconds, an HTTP-date) are read too, for a proxy in
// between: an integer of 10¹² or more is milliseconds since the epoch
// (10¹² ms is 2001; 10¹² s is not a wait anyone means).
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	const day = 24 * time.Hour
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n >= epochMillisFrom {
			return min(max(time.UnixMilli(n).Sub(now), 0), day)
		}
		return time.Duration(min(max(n, 0), int64(day/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), day)
	}
	return 0
}

// epochMillisFrom is where a Retry-After integer stops being delay-seconds
// and becomes Apple's UNIX time in milliseconds.
const epochMillisFrom = 1_000_000_000_000

// backoff is RetryBackoff·2ⁿ, capped, with jitter over its upper half so
// that many callers failing together do not retry together.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.RetryBackoff << min(n, 16)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
