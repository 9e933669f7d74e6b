package entitlements

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAllowanceDayInTimeZone(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	require.NoError(t, err)
	p := AllowancePolicy{Location: la, Tiers: map[string]int64{TierFree: 30}}
	// 07:30 UTC on 25 Nov is still 24 Nov in Los Angeles (UTC-8).
	d := p.Day(time.Date(2026, 11, 25, 7, 30, 0, 0, time.UTC))
	require.Equal(t, "2026-11-24", d.Key)
	require.Equal(t, time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), d.End.UTC(), "resets at local midnight")

	// A DST day is 25 hours long, and the boundary is still local midnight.
	d = p.Day(time.Date(2026, 11, 1, 12, 0, 0, 0, la))
	require.Equal(t, 25*time.Hour, d.End.Sub(d.Start))
}

func TestAllowanceLimitChanges(t *testing.T) {
	p := DefaultAllowance()
	p.Changes = []AllowanceChange{
		{Effective: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), Tiers: map[string]int64{TierFree: 10}},
		{Effective: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Tiers: map[string]int64{TierFree: 20, TierPro: 80}},
		{Effective: time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC), Tiers: map[string]int64{TierPro: 50}},
	}
	day := func(s string) Day {
		d, err := time.Parse(time.DateOnly, s)
		require.NoError(t, err)
		return p.Day(d.Add(time.Hour))
	}
	require.Equal(t, int64(30), p.Limit(TierFree, day("2026-12-31")))
	require.Equal(t, int64(20), p.Limit(TierFree, day("2027-01-01")), "from the boundary on its date")
	require.Equal(t, int64(80), p.Limit(TierPro, day("2027-02-01")))
	require.Equal(t, int64(10), p.Limit(TierFree, day("2027-03-01")), "later changes build on earlier ones")
	require.Equal(t, int64(80), p.Limit(TierPro, day("2027-03-01")), "a change keeps the tiers it does not name")
	require.Equal(t, int64(80), p.Limit(TierPro, day("2027-06-01")), "a mid-day change waits for the next boundary")
	require.Equal(t, int64(50), p.Limit(TierPro, day("2027-06-02")))
	require.Equal(t, int64(10), p.Limit("gold", day("2027-06-02")), "an unknown tier gets the free figure")
}
