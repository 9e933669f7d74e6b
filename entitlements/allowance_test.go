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

// Where the clocks spring forward at midnight (America/Santiago on 6 Sep
// 2026: 00:00 -04 becomes 01:00 -03), the day begins at the jump. time.Date
// normalises the missing midnight into the day before, and so had given 6
// Sep the key, the counter and the end of 5 Sep: a day's allowance lost.
func TestAllowanceDayWhoseMidnightIsSkipped(t *testing.T) {
	santiago, err := time.LoadLocation("America/Santiago")
	require.NoError(t, err)
	p := AllowancePolicy{Location: santiago, Tiers: map[string]int64{TierFree: 30}}
	jump := time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC) // 00:00 -04 = 01:00 -03

	before := p.Day(time.Date(2026, 9, 5, 23, 30, 0, 0, santiago))
	require.Equal(t, "2026-09-05", before.Key)
	require.Equal(t, jump, before.End.UTC(), "5 Sep ends at the jump, after 23:30")

	day := p.Day(time.Date(2026, 9, 6, 12, 0, 0, 0, santiago))
	require.Equal(t, "2026-09-06", day.Key)
	require.Equal(t, jump, day.Start.UTC())
	require.Equal(t, 23*time.Hour, day.End.Sub(day.Start))
	require.Equal(t, day, p.Day(jump), "the jump's instant is 6 Sep's first")
	require.Equal(t, before, p.Day(jump.Add(-time.Millisecond)))

	next := p.Day(time.Date(2026, 9, 7, 0, 0, 30, 0, santiago))
	require.Equal(t, "2026-09-07", next.Key)
	require.Equal(t, day.End, next.Start)
	for n, want := range []string{"2026-09-07", "2026-09-06", "2026-09-05", "2026-09-04"} {
		require.Equal(t, want, next.KeyBefore(n))
	}
}

func TestAllowanceDayKeysByCalendar(t *testing.T) {
	p := DefaultAllowance()
	d := p.Day(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Equal(t, "2027-01-01", d.Key)
	require.Equal(t, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), d.End)
	require.Equal(t, "2026-12-31", d.KeyBefore(1))
	require.Equal(t, "2026-12-02", d.KeyBefore(30))
	require.Equal(t, "2026-02-28", p.Day(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)).KeyBefore(1))
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

func TestAllowanceBest(t *testing.T) {
	p := AllowancePolicy{Location: time.UTC, Tiers: map[string]int64{TierFree: 30, TierPro: 100, "max": 300, "team": 300}}
	day := p.Day(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	require.Equal(t, TierPro, p.Best([]string{TierPro}, day))
	require.Equal(t, "max", p.Best([]string{TierPro, "max", TierPro}, day))
	require.Equal(t, "max", p.Best([]string{"team", "max"}, day), "equals: the first by name")
	require.Equal(t, TierPro, p.Best([]string{"gone", TierPro}, day), "a tier the policy dropped counts as free")
	p.Changes = []AllowanceChange{{Effective: day.Start, Tiers: map[string]int64{"max": 50}}}
	require.Equal(t, "team", p.Best([]string{"team", "max"}, day), "by the figures of the day")
}

// Where the clocks pass midnight twice (Asia/Gaza on 29 Oct 2021: 01:00
// +03 becomes 00:00 +02, at 22:00 UTC), the day begins at the first
// midnight, 21:00 UTC, when its key does. time.Date may give the second,
// and had given 28 Oct an end an hour after 29 Oct's key began, and 29
// Oct a start after the instants it held.
func TestAllowanceDayWhoseMidnightRepeats(t *testing.T) {
	gaza, err := time.LoadLocation("Asia/Gaza")
	require.NoError(t, err)
	p := AllowancePolicy{Location: gaza, Tiers: map[string]int64{TierFree: 30}}
	first := time.Date(2021, 10, 28, 21, 0, 0, 0, time.UTC)

	before := p.Day(first.Add(-time.Minute))
	require.Equal(t, "2021-10-28", before.Key)
	require.Equal(t, first, before.End.UTC())

	for _, now := range []time.Time{first, first.Add(30 * time.Minute), first.Add(90 * time.Minute)} {
		day := p.Day(now)
		require.Equal(t, "2021-10-29", day.Key, now)
		require.Equal(t, first, day.Start.UTC(), now)
		require.Equal(t, 25*time.Hour, day.End.Sub(day.Start), "the repeated hour is the 29th's")
	}
	// Days without a repeat keep time.Date's midnight.
	require.Equal(t, time.Date(2021, 10, 27, 21, 0, 0, 0, time.UTC), before.Start.UTC())
}
