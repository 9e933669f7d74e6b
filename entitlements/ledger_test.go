package entitlements

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGrantRequestCheckNew: a new grant expires after now and no later than
// the last instant an answer can write in UTC, whatever zone it was sent in.
func TestGrantRequestCheckNew(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(s string) *time.Time {
		x, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return &x
	}
	for _, c := range []struct {
		expires *time.Time
		code    string
	}{
		{nil, ""},
		{at("2026-11-25T12:00:00.001Z"), ""},
		{at("9999-12-31T23:59:59.999Z"), ""},
		{at("9999-12-31T23:59:59.999999999Z"), ""},
		{at("9999-12-31T23:59:59+00:00"), ""},
		{at("2026-11-25T12:00:00Z"), "invalid_expires_at"},
		{at("2020-01-01T00:00:00Z"), "invalid_expires_at"},
		{at("9999-12-31T23:00:00-05:00"), "invalid_expires_at"}, // 10000-01-01T04:00:00Z
		{at("9999-12-31T23:59:59.999-00:01"), "invalid_expires_at"},
	} {
		err := GrantRequest{ExpiresAt: c.expires}.CheckNew(now)
		if c.code == "" {
			require.NoError(t, err, "%v", c.expires)
			continue
		}
		require.Equal(t, c.code, ErrorCode(err), "%v", c.expires)
	}
}
